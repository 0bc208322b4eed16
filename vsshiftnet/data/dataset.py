"""Training clips: T consecutive frames, random crops and flips, synthetic degradations.

Sampling is a pure function of (seed, step): `TrainSampler.batch(step)` draws from
`np.random.default_rng([seed, step])`, so a resumed run sees exactly the batches an
uninterrupted run would, without storing any data-loader state.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vsshiftnet.data.degrade import (
    BlurConfig,
    DegradeConfig,
    add_noise,
    blur_clip,
    plan_blur,
    quantize8,
    sample_sigma,
    smooth_path,
)
from vsshiftnet.data.fetch import load_manifest, media_root
from vsshiftnet.data.pack import load_clip as load_packed_clip
from vsshiftnet.data.pack import load_photo as load_packed_photo
from vsshiftnet.data.pack import read_manifest as read_pack_manifest
from vsshiftnet.data.video import VIDEO_EXTS, decode, find_cuts, segments

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataConfig:
    frames: int = 5  # T, frames per training clip
    crop: int = 96  # square crop side, pixels
    batch: int = 4
    photo_prob: float = 0.2  # share of clips made from still photos by a smooth camera pan
    max_pan: float = 4.0  # photos: max pan per frame, pixels (denoise; deblur uses blur.max_pan)
    # video crops: draw this many positions and keep the one with the most gradient energy
    # (1 = uniform, as before). The eval's crops are the busiest of their clips, and its
    # errors sit in texture; more of it in training spends the steps where the errors are.
    detail_crops: int = 1
    flips: bool = True  # horizontal/vertical flips and transposes
    reverse: bool = True  # time reversal
    root: str | None = None  # media cache (default: see vsshiftnet.data.fetch.media_root)
    pack: str | None = None  # a training pack (vsshiftnet.data.pack) instead of the cache
    dirs: tuple[str, ...] = ()  # folders of the user's own videos; replace the media clips
    dir_scale: int = 1  # downscale factor for the user's videos
    val_frames: int = 6
    val_crop: int = 128
    val_sigmas: tuple[float, ...] = (15.0, 30.0, 50.0)
    val_windows: int = 1  # windows per val clip
    val_seed: int = 1234
    val_clips: tuple[str, ...] = ()  # restrict validation to these clips (default: all val)
    # Pin the training sources; the trainer records them at the start of a run so that a
    # resume after more media was fetched sees the same data (bit-exact continuation).
    train_clips: tuple[str, ...] = ()
    photos: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: dict | None) -> DataConfig:
        d = dict(d or {})
        for k in ("dirs", "val_sigmas", "val_clips", "train_clips", "photos"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


@dataclass
class ClipSource:
    name: str
    frames: np.ndarray  # uint8 (N, H, W, 3), usually memory-mapped
    segments: list[tuple[int, int]]  # shots, [start, end)
    split: str = "train"

    def windows(self, t: int) -> int:
        return sum(max(0, b - a - t + 1) for a, b in self.segments)

    def window_start(self, k: int, t: int) -> int:
        """Start frame of the k-th window of t frames that stays inside one shot."""
        for a, b in self.segments:
            n = max(0, b - a - t + 1)
            if k < n:
                return a + k
            k -= n
        raise IndexError(k)


@dataclass
class PhotoSource:
    name: str
    image: np.ndarray  # uint8 (H, W, 3)


@dataclass
class Sources:
    train: list[ClipSource] = field(default_factory=list)
    val: list[ClipSource] = field(default_factory=list)
    photos: list[PhotoSource] = field(default_factory=list)


def _user_clip(path: Path, scale: int, cache: Path) -> ClipSource:
    """Decode a user's video once into the cache (keyed by path, size and mtime)."""
    st = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{scale}".encode())
    npy = cache / f"{path.stem}-{key.hexdigest()[:12]}.npy"
    if not npy.exists():
        log.info("decoding %s", path)
        cache.mkdir(parents=True, exist_ok=True)
        arr = decode(path, scale=scale)
        tmp = npy.with_suffix(".tmp.npy")
        np.save(tmp, arr)
        os.replace(tmp, npy)
    frames = np.load(npy, mmap_mode="r")
    return ClipSource(path.name, frames, segments(len(frames), find_cuts(frames)))


def load_sources(cfg: DataConfig) -> Sources:
    """Media clips split by the manifest (whole clips only), photos, or the user's videos."""
    root = Path(cfg.pack) if cfg.pack else media_root(cfg.root)
    src = Sources()
    manifest = None
    if cfg.pack:
        manifest = read_pack_manifest(root)
    elif (root / "manifest.json").exists():
        manifest = load_manifest(root)
    if manifest:
        for name, meta in sorted(manifest["clips"].items()):
            if meta["split"] == "val":
                wanted = not cfg.val_clips or name in cfg.val_clips
            else:
                wanted = not cfg.dirs and (not cfg.train_clips or name in cfg.train_clips)
            if not wanted:
                continue
            arr = (load_packed_clip(root, meta) if cfg.pack
                   else np.load(root / "clips" / f"{name}.npy", mmap_mode="r"))
            c = ClipSource(name, arr, [tuple(s) for s in meta["segments"]], meta["split"])
            (src.val if c.split == "val" else src.train).append(c)
        for name, meta in sorted(manifest["photos"].items()):
            if cfg.photos and name not in cfg.photos:
                continue
            img = (load_packed_photo(root, meta) if cfg.pack
                   else np.load(root / "photos" / f"{name}.npy"))
            src.photos.append(PhotoSource(name, img))
    if cfg.dirs:
        files = sorted(p for d in cfg.dirs for p in Path(d).expanduser().rglob("*")
                       if p.suffix.lower() in VIDEO_EXTS)
        if not files:
            raise FileNotFoundError(f"no video files ({', '.join(VIDEO_EXTS)}) in {cfg.dirs}")
        clips = [_user_clip(p, cfg.dir_scale, root / "user") for p in files]
        if not src.val:  # no fetched media: hold out the last whole video for validation
            if len(clips) < 2:
                raise ValueError("need two or more videos (one is held out for validation) "
                                 "or the fetched media's validation clips")
            clips[-1].split = "val"
            src.val.append(clips.pop())
        src.train.extend(clips)
    if cfg.train_clips:
        missing = set(cfg.train_clips) - {c.name for c in src.train}
        if missing:
            raise FileNotFoundError(f"training clips {sorted(missing)} not found in {root}")
        src.train = [c for c in src.train if c.name in cfg.train_clips]
    if cfg.photos:
        missing = set(cfg.photos) - {p.name for p in src.photos}
        if missing:
            raise FileNotFoundError(f"photos {sorted(missing)} not found in {root}")
        src.photos = [p for p in src.photos if p.name in cfg.photos]
    if not src.train and not src.photos:
        raise FileNotFoundError(f"no training media in {root}: run "
                                "`python -m vsshiftnet.data.fetch` or pass --data DIR")
    overlap = {c.name for c in src.train} & {c.name for c in src.val}
    if overlap:
        raise ValueError(f"clips in both train and val: {sorted(overlap)}")
    return src


def _augment(arrays: list[np.ndarray], rng: np.random.Generator, cfg: DataConfig) -> list:
    """The same flip/transpose/time reversal on every (T, H, W, C) array of a sample."""
    if cfg.flips:
        if rng.random() < 0.5:
            arrays = [a[:, :, ::-1] for a in arrays]
        if rng.random() < 0.5:
            arrays = [a[:, ::-1] for a in arrays]
        if rng.random() < 0.5:
            arrays = [a.transpose(0, 2, 1, 3) for a in arrays]
    if cfg.reverse and rng.random() < 0.5:
        arrays = [a[::-1] for a in arrays]
    return [np.ascontiguousarray(a) for a in arrays]


def _to_float(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) / np.float32(255.0)


class TrainSampler:
    """Draws degraded training clips from Sources."""

    def __init__(self, sources: Sources, data: DataConfig, degrade: DegradeConfig,
                 seed: int) -> None:
        self.src, self.cfg, self.deg, self.seed = sources, data, degrade, seed
        t = data.frames
        self.clips = [c for c in sources.train if c.windows(t) > 0]
        # sqrt of the window count: long static clips (vtest) must not drown the others
        w = np.sqrt([c.windows(t) for c in self.clips]) if self.clips else np.zeros(0)
        self.clip_p = w / w.sum() if len(w) else w
        if not self.clips and not sources.photos:
            raise ValueError(f"no training clip has {t} frames in one shot")

    # --- one sample ---------------------------------------------------------------------
    def _video_region(self, rng: np.random.Generator, margin: int) -> np.ndarray:
        """A float (T, crop + 2 margin, ...) region of T consecutive frames of one shot."""
        t, s = self.cfg.frames, self.cfg.crop + 2 * margin
        if not any(min(c.frames.shape[1:3]) >= s for c in self.clips):
            raise ValueError(f"no training clip is {s} pixels wide; lower crop or blur")
        while True:
            clip = self.clips[rng.choice(len(self.clips), p=self.clip_p)]
            n, h, w = clip.frames.shape[:3]
            if h >= s and w >= s:
                break
        start = clip.window_start(int(rng.integers(clip.windows(t))), t)
        y, x = int(rng.integers(h - s + 1)), int(rng.integers(w - s + 1))
        if self.cfg.detail_crops > 1:  # extra draws only when asked: older runs reproduce
            cands = [(y, x)] + [(int(rng.integers(h - s + 1)), int(rng.integers(w - s + 1)))
                                for _ in range(self.cfg.detail_crops - 1)]
            y, x = max(cands, key=lambda p: _detail(clip.frames[start, p[0]:p[0] + s,
                                                                p[1]:p[1] + s]))
        return _to_float(clip.frames[start:start + t, y:y + s, x:x + s])

    def _photo(self, rng: np.random.Generator, need: int) -> np.ndarray:
        ok = [p for p in self.src.photos if min(p.image.shape[:2]) >= need]
        if not ok:
            raise ValueError(f"no photo is {need} pixels wide; lower crop or blur")
        return ok[int(rng.integers(len(ok)))].image

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(clean, degraded, noise_map) as float32 (T, H, W, 3), (T, H, W, 3), (T, H, W, 1)."""
        cfg, t, c = self.cfg, self.cfg.frames, self.cfg.crop
        use_photo = bool(self.src.photos) and (not self.clips or rng.random() < cfg.photo_prob)
        if self.deg.task == "denoise":
            if use_photo:
                path = smooth_path(t, rng) * rng.uniform(0, 2) * t
                path += np.arange(t)[:, None] * rng.uniform(-1, 1, 2) * cfg.max_pan
                cen = np.round(path).astype(np.int64)
                cen -= cen.min(0)
                span = cen.max(0)
                img = self._photo(rng, c + int(span.max()) + 1)
                h, w = img.shape[:2]
                y = int(rng.integers(h - c - span[0] + 1))
                x = int(rng.integers(w - c - span[1] + 1))
                clean = _to_float(np.stack([img[y + a:y + a + c, x + b:x + b + c]
                                            for a, b in cen]))
            else:
                clean = self._video_region(rng, 0)
            clean = _augment([clean], rng, cfg)[0]
            n = self.deg.noise
            sigma = sample_sigma(n, rng)
            sd = (rng.uniform(0, n.signal_dependent_max)
                  if rng.random() < n.signal_dependent_prob else 0.0)
            yuv = None  # no extra draws unless asked for, so that older runs reproduce
            if n.yuv420_prob > 0 and rng.random() < n.yuv420_prob:
                yuv = (float(rng.uniform(n.chroma_ratio_min, n.chroma_ratio_max)),
                       "709" if rng.random() < 0.5 else "601")
                sd = 0.0
            noisy, nmap = add_noise(clean, sigma, rng, clip=rng.random() < n.clip_prob,
                                    signal_dependent=sd, yuv420=yuv)
            return clean, noisy, nmap
        b = self.deg.blur
        plan = plan_blur(t, b, rng, pan=use_photo)
        r = plan.radius
        if use_photo:
            span = plan.centers.max(0)
            img = _to_float(self._photo(rng, c + 2 * r + int(span.max()) + 1))
            h, w = img.shape[:2]
            y = int(rng.integers(r, h - r - c - span[0] + 1))
            x = int(rng.integers(r, w - r - c - span[1] + 1))
            reg = img[y - r:y + c + span[0] + r, x - r:x + c + span[1] + r]
            sharp, blurred = blur_clip([reg] * t, plan, b, r, r, c, c)
        else:
            reg = self._video_region(rng, r)
            sharp, blurred = blur_clip(list(reg), plan, b, r, r, c, c)
        sharp, blurred = _augment([sharp, blurred], rng, cfg)
        noisy, _ = add_noise(blurred, rng.uniform(0, b.sigma_max), rng)
        return sharp, quantize8(noisy), np.zeros((*sharp.shape[:-1], 1), np.float32)

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A batch as float32 (B, T, C, H, W) arrays: clean, degraded, noise map."""
        rng = np.random.default_rng([self.seed, step])
        items = [self.sample(rng) for _ in range(self.cfg.batch)]
        out = [np.stack([it[i] for it in items]).transpose(0, 1, 4, 2, 3) for i in range(3)]
        return tuple(np.ascontiguousarray(a) for a in out)  # type: ignore[return-value]


# --- fixed validation set ---------------------------------------------------------------
@dataclass
class ValItem:
    name: str  # e.g. "bikes@120" or "bikes@120/s30"
    clean: np.ndarray  # float32 (T, 3, H, W)
    degraded: np.ndarray  # float32 (T, 3, H, W), 8-bit quantised like a decoded video
    sigma: float  # 0-255; the noise map value (0 for deblur)


def val_windows(clip: ClipSource, t: int, count: int) -> list[int]:
    """Start frames of `count` windows spread evenly over the clip's shots."""
    n = clip.windows(t)
    if n == 0:
        return []
    return sorted({clip.window_start(int(k), t)
                   for k in np.linspace(0, n - 1, count + 2)[1:-1].round()})


def _detail(frame: np.ndarray) -> float:
    """Mean absolute luma gradient of an (H, W, 3) frame: how much texture it holds."""
    g = frame.astype(np.float32).mean(-1)
    return float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())


def _busiest_crop(frame: np.ndarray, ch: int, cw: int, margin: int) -> tuple[int, int]:
    """Top-left of the ch x cw crop (on a coarse grid) with the most gradient energy.

    Centre crops of hand-held footage are often smooth background; the busiest crop is a
    deterministic choice that actually tests restoration of detail.
    """
    h, w = frame.shape[:2]
    g = frame.astype(np.float32).mean(-1)
    energy = np.abs(np.diff(g, axis=0))[:, :-1] + np.abs(np.diff(g, axis=1))[:-1]
    best, pos = -1.0, (margin, margin)
    for y in np.linspace(margin, h - ch - margin, 5).astype(int):
        for x in np.linspace(margin, w - cw - margin, 5).astype(int):
            e = float(energy[y:y + ch - 1, x:x + cw - 1].mean())
            if e > best:
                best, pos = e, (int(y), int(x))
    return pos


def make_val_set(sources: Sources, task: str, *, frames: int, crop: int,
                 sigmas: tuple[float, ...], windows: int = 1, seed: int = 1234,
                 blur: BlurConfig | None = None, noise: str = "rgb") -> list[ValItem]:
    """Fixed crops of whole val clips with seeded degradations (same every call).

    Noise is clipped and rounded to 8 bit, as in a decoded video; noise="yuv420" draws it
    in BT.709 4:2:0 Y'CbCr with equal luma and chroma strength (see yuv420_noise). Deblur
    uses one shake path per window, 60-100 % of the training maximum length, plus noise
    of sigma 1.
    """
    if noise not in ("rgb", "yuv420"):
        raise ValueError(f"make_val_set: noise must be 'rgb' or 'yuv420', got {noise!r}")
    yuv = (1.0, "709") if noise == "yuv420" else None
    items: list[ValItem] = []
    b = blur or BlurConfig()
    for ci, clip in enumerate(sources.val):
        n, h, w = clip.frames.shape[:3]
        for start in val_windows(clip, frames, windows):
            rng = np.random.default_rng([seed, ci, start])
            r = 0
            if task == "deblur":
                b_val = BlurConfig(**{**b.__dict__, "still_prob": 0.0})
                for _ in range(50):
                    plan = plan_blur(frames, b_val, rng, pan=False)
                    if plan.length >= 0.6 * b.max_length:
                        break
                r = plan.radius
            ch, cw = min(crop, h - 2 * r) // 8 * 8, min(crop, w - 2 * r) // 8 * 8
            if ch < 16 or cw < 16:
                continue
            y, x = _busiest_crop(clip.frames[start], ch, cw, r)
            if task == "denoise":
                clean = _to_float(clip.frames[start:start + frames, y:y + ch, x:x + cw])
                for s in sigmas:
                    rs = np.random.default_rng([seed, ci, start, int(round(s * 100))])
                    noisy, _ = add_noise(clean, s, rs, clip=True, yuv420=yuv)
                    items.append(ValItem(f"{clip.name}@{start}/s{s:g}",
                                         clean.transpose(0, 3, 1, 2).copy(),
                                         noisy.transpose(0, 3, 1, 2).copy(), float(s)))
            else:
                reg = _to_float(clip.frames[start:start + frames, y - r:y + ch + r,
                                            x - r:x + cw + r])
                sharp, blurred = blur_clip(list(reg), plan, b, r, r, ch, cw)
                noisy, _ = add_noise(blurred, 1.0, rng, clip=True)
                items.append(ValItem(f"{clip.name}@{start}", sharp.transpose(0, 3, 1, 2).copy(),
                                     noisy.transpose(0, 3, 1, 2).copy(), 0.0))
    return items
