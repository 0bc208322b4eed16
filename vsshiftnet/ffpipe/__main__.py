"""python -m vsshiftnet.ffpipe IN OUT [--sigma N | --task deblur] [options]"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

from .cli import build_parser, job_from_args
from .distributed import ray_options, run_one
from .pipeline import Interrupted, PipelineError, install_sigterm, run
from .probe import ProbeError
from .procs import one_line as _one_line
from .y4m import Y4MError

log = logging.getLogger("vsshiftnet.ffpipe")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="ffpipe: %(levelname)s: %(message)s", stream=sys.stderr)
    previous = install_sigterm()
    try:
        job = job_from_args(args)
        ray = ray_options(args)
        if ray is not None and job.resume:
            raise ValueError("--ray keeps its own resume manifest in the work folder: drop "
                             "--resume (rerun the same command to continue)")
        if ray is not None:
            run_one(job, ray)
        else:
            run(job)
    except (KeyboardInterrupt, Interrupted):
        sys.stderr.write("ffpipe: error: interrupted; nothing written\n")
        return 130
    except (PipelineError, ProbeError, Y4MError, ValueError, OSError) as e:
        sys.stderr.write(f"ffpipe: error: {_one_line(e)}\n")
        return 1
    except Exception as e:  # the user gets one line; -v shows the trace
        log.debug("unexpected failure", exc_info=True)
        sys.stderr.write(f"ffpipe: error: {type(e).__name__}: {_one_line(e)}\n")
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    log.info("wrote %s", Path(args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
