#!/usr/bin/env python3
"""Shift-Net as a y4m pipe filter: y4m on stdin, restored y4m on stdout.

    ffmpeg -i in.mkv -f yuv4mpegpipe -strict -1 - \\
      | python ffmpeg_filter/shiftnet_y4m.py --sigma 30 \\
      | ffmpeg -i - -i in.mkv -map 0:v -map 1:a? -c:a copy out.mkv

The same program as `python -m vsshiftnet.ffpipe.filter`; see --help and README.md here.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from vsshiftnet.ffpipe.filter import main
except ImportError:  # run from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from vsshiftnet.ffpipe.filter import main

if __name__ == "__main__":
    sys.exit(main())
