"""The plugin benchmark: fps after the first window, whatever window length the plan picks."""

from __future__ import annotations

import json

import pytest

from vsshiftnet.vs.bench import main


def test_short_clip_with_planned_window(capsys: pytest.CaptureFixture[str]) -> None:
    # 2-frame windows: the first window ends long before the default length (8) would
    assert main(["--size", "96x64", "--frames", "6", "--length", "2", "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["fps"] > 0 and r["net_fps"] >= 0.99 * r["fps"]  # the network is part of it
    assert 1.0 <= r["runs_per_frame"] <= 3.0 and r["rss_mb"] > 100
    with pytest.raises(SystemExit, match="no frames after the first window"):
        main(["--size", "96x64", "--frames", "2", "--length", "2", "--json"])
