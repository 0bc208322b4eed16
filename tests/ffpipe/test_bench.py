"""The ffpipe benchmark's comparison table: each configuration in its own process."""

from __future__ import annotations

import pytest

from vsshiftnet.ffpipe.bench import main


def test_compare_prints_each_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--compare", "--sizes", "64x48", "--frames", "6", "--length", "2",
                 "--preset", "ultrafast"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| 64x48 |")]
    assert [r.split("|")[2].strip() for r in rows] == ["before", "float32", "default"]
    cells = [[c.strip() for c in r.split("|")[3:-1]] for r in rows]
    assert cells[0][3] == "1.00x"  # the ratio's base
    for length, net_fps, pipe_fps, ratio, runs, rss in cells:
        assert length == "2"
        assert float(net_fps) > 0 and float(pipe_fps) > 0 and ratio.endswith("x")
        assert 1.0 <= float(runs) <= 3.0 and float(rss) > 100
    # the old path computes every frame's first stage in each window; today's reuses it
    assert float(cells[2][4]) < float(cells[0][4])


def test_before_keeps_its_fixed_windows_without_length(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--compare", "--sizes", "64x48", "--frames", "4", "--configs", "before",
                 "--preset", "ultrafast"]) == 0
    out = capsys.readouterr().out
    assert "| 64x48 | before | 8 |" in out and "length as planned (before: 8)" in out
