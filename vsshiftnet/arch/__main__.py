"""`python -m vsshiftnet.arch --summary`: sizes of the official and CPU configurations."""

from __future__ import annotations

import argparse
import sys

import torch

from .complexity import count_params, macs_per_frame, temporal_reach_sides
from .config import OFFICIAL, PAPER_FIGURES, ShiftNetConfig
from .fold import fold_repconv
from .net import ShiftNet


def summary_rows(configs: dict[str, ShiftNetConfig]) -> list[str]:
    rows = ["| config | params (M), used | used, RepConv folded | paper params (M) "
            "| conv GMACs/frame 256x256 | paper GMACs | temporal reach past / future |",
            "|---|---|---|---|---|---|---|"]
    for name, cfg in configs.items():
        with torch.device("meta"):
            net = ShiftNet(cfg)
        p = count_params(net) / 1e6
        pf = count_params(fold_repconv(net)) / 1e6
        g = macs_per_frame(cfg) / 1e9
        pp, pg = PAPER_FIGURES.get(name, (None, None))
        past, future = temporal_reach_sides(cfg)
        rows.append(f"| {name} | {p:.3f} | {pf:.3f} | {pp or '-'} | {g:.2f} | {pg or '-'} "
                    f"| {past} / {future} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsshiftnet.arch")
    ap.add_argument("--summary", action="store_true", help="print the size table (default)")
    ap.parse_args(argv)
    configs = dict(OFFICIAL)
    from ..registry import list_cards

    for name, card in list_cards().items():
        configs[name] = card.config
    sys.stdout.write("\n".join(summary_rows(configs)) + "\n")
    sys.stdout.write("\nPaper figures are thop MACs of the re-parameterised model; ours "
                     "count conv MACs of the unfolded model (RepConv folding removes ~3%).\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
