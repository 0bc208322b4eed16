#!/usr/bin/env python3
"""Restore every video of a folder (via ffpipe, the y4m filter, or vspipe + a .vpy),
skipping files already done. Same program as `python -m vsshiftnet.ffpipe.batch`.

    python ffmpeg_filter/batch.py IN_DIR OUT_DIR --sigma 30
    python ffmpeg_filter/batch.py IN_DIR OUT_DIR --via vspipe --vpy examples/denoise.vpy \\
        --sigma 30
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from vsshiftnet.ffpipe.batch import main
except ImportError:  # run from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from vsshiftnet.ffpipe.batch import main

if __name__ == "__main__":
    sys.exit(main())
