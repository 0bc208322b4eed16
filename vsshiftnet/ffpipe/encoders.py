"""What common encoders accept, checked before any frame is restored.

ffmpeg passes --crf to most encoders unchecked and the encoder clamps it (libx264 turns
crf 60 into 51 without a word), and libx264/libx265 refuse odd sizes in 4:2:0/4:2:2 only
when the first frame arrives; both are refused here, up front. Unknown encoders pass through.
"""

from __future__ import annotations

from .procs import PipelineError

#: encoder -> (lowest, highest) CRF it accepts.
CRF_RANGE: dict[str, tuple[float, float]] = {
    "libx264": (0, 51),
    "libx264rgb": (0, 51),
    "libx265": (0, 51),
    "libsvtav1": (0, 63),
    "libaom-av1": (0, 63),
    "libvpx-vp9": (0, 63),
    "libvpx": (4, 63),
}
#: encoders that need even luma sizes along each subsampled direction.
_EVEN_SIZES = ("libx264", "libx264rgb", "libx265")


def check_crf(codec: str, crf: object) -> None:
    if crf is None or codec not in CRF_RANGE:
        return
    try:
        value = float(crf)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PipelineError(f"--crf {crf!r} is not a number") from None
    lo, hi = CRF_RANGE[codec]
    if not lo <= value <= hi:
        raise PipelineError(f"--crf {value:g} is outside {codec}'s range {lo:g}-{hi:g} (it "
                            f"would be clamped silently); use {lo:g} (best) to {hi:g}")


def odd_size_problem(codec: str, width: int, height: int, ssx: int, ssy: int) -> str | None:
    """Why `codec` cannot encode this size at this subsampling, or None."""
    if codec not in _EVEN_SIZES:
        return None
    if (ssx and width % (1 << ssx)) or (ssy and height % (1 << ssy)):
        return (f"{codec} cannot encode {width}x{height} with subsampled chroma (it needs an "
                f"even size); pass --pix-fmt yuv444p (or the 4:4:4 format of your depth) or "
                "-c:v ffv1")
    return None
