"""A self-contained training pack: the fetched media as JPEG frames, readable anywhere.

    python -m vsshiftnet.data.pack DIR [--root MEDIA] [--max-mib 40] [--quality 95]

The pack is what travels to a machine that has numpy and Pillow (or OpenCV) but no
ffmpeg, VapourSynth or network (the GPU sprint). It keeps the split by source of the
media cache: every clip keeps its train/val split, and photos go along whole. Frames are
JPEG at quality 95 without chroma subsampling: near-lossless, 40-48 dB PSNR against the
cache on the fetched clips (printed per clip and kept in pack.json), well below the noise
the denoiser is trained to remove and the blur the deblurrer undoes. When everything would not fit
`--max-mib`, every clip keeps the same share of its frames as evenly spaced runs of
`--chunk` consecutive frames; a run boundary becomes a shot boundary, so no training
window spans a gap.

Layout: DIR/pack.json (clips with their shots, photos, sha256 of every file),
DIR/clips/NAME.npz (uint8 `data`: the JPEG files back to back, int64 `offsets`),
DIR/photos/NAME.jpg, and DIR/reference/ (the official -s configurations' reference
fixtures, for the sprint's CUDA fidelity check) when the shared reference folder is found.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

PACK_VERSION = 1
MANIFEST = "pack.json"
#: reference fixtures the sprint's fidelity check reads (configs with full reference outputs)
REFERENCE_CONFIGS = ("denoise_s", "deblur_s")
REFERENCE_FILES = ("manifest.json", "aliases.json", "input.npy", "noise_map.npy",
                   "output_all_frames_fbff0.npy")


class PackError(RuntimeError):
    """A pack that is missing, damaged or unreadable here."""


# --- image codec: Pillow, else OpenCV ------------------------------------------------------
def _encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buf, "JPEG", quality=quality,
                                                      subsampling=0)
    return buf.getvalue()


def decode_image(data: bytes | np.ndarray) -> np.ndarray:
    """JPEG/PNG bytes to uint8 (H, W, 3) RGB with Pillow, or OpenCV where Pillow is absent."""
    raw = bytes(data) if isinstance(data, np.ndarray) else data
    try:
        from PIL import Image
    except ImportError:
        try:
            import cv2
        except ImportError as e:
            raise PackError("reading a pack needs Pillow or OpenCV: pip install pillow") from e
        img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise PackError("an image in the pack could not be decoded") from None
        return np.ascontiguousarray(img[..., ::-1])
    with Image.open(io.BytesIO(raw)) as im:
        return np.asarray(im.convert("RGB"))


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# --- which frames go in ------------------------------------------------------------------
def keep_runs(n: int, ratio: float, chunk: int) -> list[tuple[int, int]]:
    """Evenly spaced [start, end) runs of `chunk` frames covering about `ratio` of n."""
    if ratio >= 1 or n <= chunk:
        return [(0, n)]
    k = max(1, math.ceil(n * ratio / chunk))
    starts = np.linspace(0, n - chunk, k).round().astype(int)
    runs: list[tuple[int, int]] = []
    for s in starts:
        a, b = int(s), int(s) + chunk
        if runs and a <= runs[-1][1]:
            runs[-1] = (runs[-1][0], b)
        else:
            runs.append((a, b))
    return runs


def pack_segments(segments: list[list[int]], runs: list[tuple[int, int]]) -> list[list[int]]:
    """The clip's shots cut to the kept runs, in the pack's own frame numbers."""
    out, base = [], 0
    for a, b in runs:
        for s, e in segments:
            lo, hi = max(a, s), min(b, e)
            if hi > lo:
                out.append([base + lo - a, base + hi - a])
        base += b - a
    return out


# --- writing ------------------------------------------------------------------------------
def find_reference() -> Path | None:
    """The shared reference folder: $VSSHIFTNET_SHARED/reference or ../shared/reference."""
    env = os.environ.get("VSSHIFTNET_SHARED")
    for base in ([Path(env)] if env else []) + [Path(__file__).resolve().parents[3] / "shared"]:
        if (base / "reference").is_dir():
            return base / "reference"
    return None


def write_pack(out: Path, *, root: str | Path | None = None, max_mib: float = 40.0,
               quality: int = 95, chunk: int = 32, reference: Path | None = None) -> dict:
    """Write the media cache at `root` as a pack in `out`; returns the pack manifest."""
    from vsshiftnet.data.fetch import load_manifest, media_root

    src = media_root(root)
    if not (src / "manifest.json").exists():
        raise PackError(f"no media in {src}: run `python -m vsshiftnet.data.fetch` first")
    media = load_manifest(src)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "clips").mkdir(parents=True)
    (tmp / "photos").mkdir()
    files: dict[str, str] = {}
    fixed = 0
    if reference is not None:
        for cfg in REFERENCE_CONFIGS:
            (tmp / "reference" / cfg).mkdir(parents=True)
            for name in REFERENCE_FILES:
                f = reference / cfg / name
                if f.exists():
                    shutil.copyfile(f, tmp / "reference" / cfg / name)
                    fixed += f.stat().st_size
    photos = {}
    for name, meta in sorted(media["photos"].items()):
        img = np.load(src / "photos" / f"{name}.npy")
        data = _encode_jpeg(img, quality)
        (tmp / "photos" / f"{name}.jpg").write_bytes(data)
        fixed += len(data)
        photos[name] = {**meta, "file": f"photos/{name}.jpg"}
    # Encode a sample of each clip to learn its bytes per frame, then keep one common share.
    clips = {name: np.load(src / "clips" / f"{name}.npy", mmap_mode="r")
             for name in sorted(media["clips"])}
    est = {name: np.mean([len(_encode_jpeg(np.asarray(a[i]), quality))
                          for i in np.linspace(0, len(a) - 1, 6).astype(int)]) * len(a)
           for name, a in clips.items()}
    budget = max_mib * 2**20 - fixed - 64 * 1024  # room for pack.json and npz headers
    if budget < 0.1 * max_mib * 2**20:
        raise PackError(f"photos and reference fixtures alone take {fixed / 2**20:.1f} MiB "
                        f"of --max-mib {max_mib}: raise it")
    ratio = min(1.0, 0.97 * budget / max(sum(est.values()), 1.0))
    for _ in range(4):  # the sample's estimate can be off: shrink until the clips fit
        out_clips, size = _write_clips(tmp, clips, media["clips"], ratio, chunk, quality)
        if size <= budget:
            break
        ratio *= 0.98 * budget / size
    for p in sorted(tmp.rglob("*")):
        if p.is_file():
            files[p.relative_to(tmp).as_posix()] = sha256_file(p)
    manifest = {"version": PACK_VERSION, "quality": quality, "chunk": chunk,
                "kept_ratio": round(ratio, 4), "source": str(src), "clips": out_clips,
                "photos": photos, "files": files}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    total = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
    if total > max_mib * 2**20:
        raise PackError(f"pack came out at {total / 2**20:.1f} MiB, over --max-mib {max_mib} "
                        "(each clip keeps at least one run): lower --chunk or raise --max-mib")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    log.info("wrote %s: %.1f MiB, %d clips (%.0f %% of their frames), %d photos", out,
             total / 2**20, len(out_clips), 100 * min(ratio, 1.0), len(photos))
    return manifest


def _write_clips(tmp: Path, clips: dict[str, np.ndarray], metas: dict[str, dict], ratio: float,
                 chunk: int, quality: int) -> tuple[dict[str, dict], int]:
    out, size = {}, 0
    for name, arr in clips.items():
        meta = metas[name]
        runs = keep_runs(len(arr), ratio, chunk)
        blobs = [_encode_jpeg(np.asarray(arr[i]), quality) for a, b in runs for i in range(a, b)]
        offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
        np.savez(tmp / "clips" / f"{name}.npz",
                 data=np.frombuffer(b"".join(blobs), np.uint8), offsets=offsets)
        size += (tmp / "clips" / f"{name}.npz").stat().st_size
        # how near-lossless: PSNR of the packed frames against the cache's
        kept = [i for a, b in runs for i in range(a, b)]
        mse = np.mean([np.mean((decode_image(blob).astype(np.float32)
                                - np.asarray(arr[i], np.float32)) ** 2)
                       for blob, i in zip(blobs, kept, strict=True)])
        psnr = round(float(10 * np.log10(255.0**2 / max(mse, 1e-12))), 2)
        out[name] = {**meta, "file": f"clips/{name}.npz", "frames": len(blobs),
                     "source_runs": [list(r) for r in runs], "psnr_db": psnr,
                     "segments": pack_segments(meta["segments"], runs)}
        log.info("%s: %d of %d frames (%s), %.1f MB, %.1f dB against the cache", name,
                 len(blobs), len(arr), meta["split"], offsets[-1] / 1e6, psnr)
    return out, size


# --- reading ------------------------------------------------------------------------------
def read_manifest(pack: str | Path) -> dict:
    path = Path(pack) / MANIFEST
    if not path.exists():
        raise PackError(f"{pack} is not a training pack (no {MANIFEST}); "
                        "make one with `python -m vsshiftnet.data.pack DIR`")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise PackError(f"{path} is damaged: {e}") from e
    if manifest.get("version") != PACK_VERSION:
        raise PackError(f"{path}: pack version {manifest.get('version')}, this code reads "
                        f"{PACK_VERSION}; write the pack again")
    return manifest


def verify_pack(pack: str | Path) -> dict:
    """Check every file's sha256 against the manifest; returns the manifest."""
    pack = Path(pack)
    manifest = read_manifest(pack)
    for rel, digest in manifest["files"].items():
        f = pack / rel
        if not f.is_file():
            raise PackError(f"pack {pack}: {rel} is missing")
        if sha256_file(f) != digest:
            raise PackError(f"pack {pack}: {rel} fails its checksum (damaged in transfer?)")
    return manifest


def load_clip(pack: Path, meta: dict) -> np.ndarray:
    """All frames of a packed clip as uint8 (N, H, W, 3)."""
    with np.load(pack / meta["file"]) as z:
        data, offsets = z["data"], z["offsets"]
    frames = np.empty((len(offsets) - 1, meta["height"], meta["width"], 3), np.uint8)
    for i in range(len(frames)):
        frames[i] = decode_image(data[offsets[i]:offsets[i + 1]])
    return frames


def load_photo(pack: Path, meta: dict) -> np.ndarray:
    return decode_image((pack / meta["file"]).read_bytes())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsshiftnet.data.pack", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="pack folder to write (replaced when it exists)")
    ap.add_argument("--root", help="media cache (default: the fetch cache)")
    ap.add_argument("--max-mib", type=float, default=40.0)
    ap.add_argument("--quality", type=int, default=95, help="JPEG quality (4:4:4)")
    ap.add_argument("--chunk", type=int, default=32, help="consecutive frames per kept run")
    ap.add_argument("--reference", type=Path, help="shared reference folder to include "
                    "(default: $VSSHIFTNET_SHARED/reference or ../shared/reference if found)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    ref = args.reference or find_reference()
    if ref is None:
        log.warning("no shared reference folder found: the sprint's CUDA fidelity check "
                    "will be skipped (set VSSHIFTNET_SHARED)")
    try:
        write_pack(args.out, root=args.root, max_mib=args.max_mib, quality=args.quality,
                   chunk=args.chunk, reference=ref)
    except PackError as e:
        print(f"vsshiftnet.data.pack: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
