"""Spatial tiles with overlapping context, blended with linear ramps so no seam shows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Overlap around each tile. The network sees 8-pixel shifts at H/4 (32 px at full size), and
# its channel attention pools over the whole tile, so less context shows. Measured with
# denoise-cpu12 (r7) on tests/test_models.py's clip, tiled vs whole-frame max error at 32 px:
# 1.63 codes blending over the whole overlap, 0.64 leaving its outer half out (ramp).
DEFAULT_TILE_PAD = 32


@dataclass(frozen=True)
class Tile:
    y0: int  # extended (with context) region, clipped to the image
    y1: int
    x0: int
    x1: int


def split(size: int, tile: int, pad: int) -> list[tuple[int, int]]:
    """Extended ranges along one axis: cores of about `tile` pixels, plus `pad` each side."""
    if tile <= 0 or tile >= size:
        return [(0, size)]
    n = -(-size // tile)
    edges = [round(k * size / n) for k in range(n + 1)]  # even cores, no sliver at the end
    return [(max(0, a - pad), min(size, b + pad)) for a, b in zip(edges, edges[1:])]


def ramp(a: int, b: int, size: int, pad: int) -> np.ndarray:
    """Weights over [a, b): 1 in the core, 0 for the outer pad/2 pixels at an inner edge,
    and linear between. A tile's output is worst at its edges (measured, denoise-cpu12 r8:
    12 codes 8 px from the edge, 2.4 at 24, 0.6 at 40), so the outer half of the context
    is left out of the blend; the rest of the 2*pad overlap still hides the seam."""
    pos = np.arange(a, b, dtype=np.float32) + 0.5
    w = np.ones(b - a, dtype=np.float32)
    if pad > 0:
        skip = pad // 2
        span = 2 * (pad - skip)
        if a > 0:
            w = np.minimum(w, (pos - a - skip) / span)
        if b < size:
            w = np.minimum(w, (b - pos - skip) / span)
    return np.clip(w, 1e-6, 1.0)


def plan(h: int, w: int, tile: tuple[int, int], pad: int) -> list[Tile]:
    tw, th = tile
    return [Tile(y0, y1, x0, x1) for y0, y1 in split(h, th, pad) for x0, x1 in split(w, tw, pad)]


@dataclass(frozen=True)
class Region:
    """What the network runs on for a tile: rows y0..y1, columns x0..x1 of the frame, which
    may reach past its borders (those pixels replicate the border)."""

    y0: int
    y1: int
    x0: int
    x1: int

    def inside(self, h: int, w: int) -> tuple[slice, slice, tuple[int, int, int, int]]:
        """The part inside an h x w frame, and the (top, bottom, left, right) padding."""
        pads = (max(0, -self.y0), max(0, self.y1 - h), max(0, -self.x0), max(0, self.x1 - w))
        return (slice(max(0, self.y0), min(h, self.y1)),
                slice(max(0, self.x0), min(w, self.x1)), pads)

    @staticmethod
    def pad(a: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
        top, bottom, left, right = pads
        if top or bottom or left or right:
            a = np.pad(a, ((0, 0), (0, 0), (top, bottom), (left, right)), mode="edge")
        return a


def region(t: Tile, h: int, w: int, eh: int, ew: int, margin: int) -> Region:
    """t's region of eh x ew pixels (the largest tile's extent: every tile then has one
    shape), moved inwards where t is smaller and sits at a border, plus `margin` on every
    side (replicated beyond the frame, real context inside it)."""
    y0 = min(t.y0, h - eh)
    x0 = min(t.x0, w - ew)
    return Region(y0 - margin, y0 + eh + margin, x0 - margin, x0 + ew + margin)


def weights(t: Tile, h: int, w: int, pad: int) -> np.ndarray:
    return np.outer(ramp(t.y0, t.y1, h, pad), ramp(t.x0, t.x1, w, pad))


def weight_sum(tiles: list[Tile], h: int, w: int, pad: int) -> np.ndarray:
    """(h, w) float32: the sum of every tile's blend weights (about 1 in the overlaps)."""
    total = np.zeros((h, w), np.float32)
    for t in tiles:
        total[t.y0:t.y1, t.x0:t.x1] += weights(t, h, w, pad)
    return total


def main(argv: list[str] | None = None) -> int:
    """`python -m vsshiftnet.engine.tiles`: how far tiles are from the whole frame.

    Channel attention pools each tile on its own, so tiles are not exact. Whole-frame pooling
    would take at least a second pass over every tiled window (the first recording each
    attention layer's pooled mean; still approximate, as each layer's pool depends on the
    ones before), and per-tile pooling measured no worse in PSNR (models/training/README.md,
    "Tiles and channel attention"), so it is not built. This measures the difference
    instead, on the validation clips, in float32: the largest and mean difference between
    tiled and whole-frame output, and what it does to PSNR against the clean clip.
    """
    import argparse
    import sys

    from ..data.dataset import DataConfig, load_sources, make_val_set
    from ..registry import load_model
    from .restorer import Restorer

    ap = argparse.ArgumentParser(prog="python -m vsshiftnet.engine.tiles",
                                 description=main.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="denoise-cpu")
    ap.add_argument("--crop", type=int, default=256, help="frame side of the clips")
    ap.add_argument("--tiles", default="128,96,64", help="tile sides to try")
    ap.add_argument("--pad", type=int, default=DEFAULT_TILE_PAD)
    args = ap.parse_args(argv)
    net = load_model(args.model)
    items = make_val_set(load_sources(DataConfig()), net.task, frames=6, crop=args.crop,
                         sigmas=(10, 30, 50))

    def psnr(a: np.ndarray, b: np.ndarray) -> float:
        return float(10 * np.log10(1 / np.mean((a - b) ** 2)))

    whole = Restorer(net, device="cpu", fp16=False)
    base = [whole.run(it.degraded, it.sigma or None) for it in items]
    out = sys.stdout
    out.write(f"{args.model}, {len(items)} validation items of {args.crop}x{args.crop}x6, "
              f"float32, tile_pad {args.pad}\n| tile | tiles | max abs diff (0-1) | "
              "mean abs diff | PSNR whole -> tiled (dB) |\n|---|---|---|---|---|\n")
    for side in (int(v) for v in args.tiles.split(",")):
        r = Restorer(net, device="cpu", fp16=False, tile=(side, side), tile_pad=args.pad)
        diffs, dp = [], []
        for it, b in zip(items, base, strict=True):
            t = r.run(it.degraded, it.sigma or None)
            diffs.append(np.abs(t - b))
            dp.append(psnr(t, it.clean) - psnr(b, it.clean))
        n = len(plan(args.crop, args.crop, (side, side), args.pad))
        out.write(f"| {side} | {n} | {max(float(d.max()) for d in diffs):.2e} | "
                  f"{np.mean([d.mean() for d in diffs]):.2e} | {np.mean(dp):+.4f} |\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
