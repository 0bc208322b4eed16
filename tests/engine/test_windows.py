from __future__ import annotations

import pytest

from vsshiftnet.engine import fetch_range, mirror, plan_window


def test_grid_alignment_and_context_at_clip_ends() -> None:
    w = plan_window(5, 10, 4, 2)
    assert w.outputs == range(4, 8) and w.sources == (2, 3, 4, 5, 6, 7, 8, 9)
    assert w.keep == slice(2, 6)
    # a network that looks both ways gets no context beyond the clip's ends: a shorter window
    first = plan_window(1, 10, 4, 2)
    assert first.sources == (0, 1, 2, 3, 4, 5) and first.keep == slice(0, 4)
    last = plan_window(9, 10, 4, 2)
    assert last.outputs == range(8, 10) and last.sources == (6, 7, 8, 9)
    assert last.keep == slice(2, 4)
    assert all(plan_window(n, 10, 4, 2).key == w.key for n in range(4, 8))
    # mirrored on request, the edge frame not repeated
    mirrored = plan_window(1, 10, 4, 2, mirror_ends=True)
    assert mirrored.sources == (2, 1, 0, 1, 2, 3, 4, 5) and mirrored.keep == slice(2, 6)
    assert plan_window(9, 10, 4, 2, mirror_ends=True).sources == (6, 7, 8, 9, 8, 7)
    # one that sees only the past gets its missing past mirrored from the next frames
    past = plan_window(1, 10, 4, 2, pad_after=0)
    assert past.sources == (2, 1, 0, 1, 2, 3) and past.keep == slice(2, 6)
    assert plan_window(1, 10, 4, 2, pad_after=0, mirror_ends=False).sources == (0, 1, 2, 3)


def test_sources_stay_inside_fetch_range() -> None:
    cuts = {3, 11, 12, 17}
    for n in range(20):
        fr = fetch_range(n, 20, 5, 3)
        w = plan_window(n, 20, 5, 3, cuts.__contains__)
        assert n in w.outputs and set(w.sources) <= set(fr)


def test_scene_cut_splits_block_and_reflects() -> None:
    cuts = {6}.__contains__
    before = plan_window(5, 16, 8, 2, cuts)
    after = plan_window(6, 16, 8, 2, cuts)
    assert before.outputs == range(0, 6) and after.outputs == range(6, 8)
    assert max(before.sources) <= 5 and min(after.sources) >= 6
    assert before.key != after.key
    assert after.sources == (6, 7, 8, 9) and after.keep == slice(0, 2)  # nothing from before
    single = plan_window(12, 16, 4, 3, {12, 13}.__contains__)  # a one-frame scene
    assert single.outputs == range(12, 13) and single.sources == (12,)
    past = plan_window(12, 16, 4, 3, {12, 13}.__contains__, pad_after=0)
    assert past.sources == (12, 12, 12, 12) and past.keep == slice(3, 4)


def test_context_after_can_be_shorter() -> None:
    w = plan_window(5, 10, 4, 2, pad_after=0)  # a network that sees only the past
    assert w.outputs == range(4, 8) and w.sources == (2, 3, 4, 5, 6, 7) and w.keep == slice(2, 6)
    last = plan_window(9, 10, 4, 2, pad_after=1)
    assert last.sources == (6, 7, 8, 9) and last.keep == slice(2, 4)
    with pytest.raises(ValueError, match="pad_after"):
        plan_window(5, 10, 4, 2, pad_after=3)


def test_mirror_periodic() -> None:
    assert [mirror(i, 0, 3) for i in range(-4, 7)] == [0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2]


@pytest.mark.parametrize("bad", [dict(length=0), dict(length_pad=-1), dict(num_frames=0)])
def test_bad_parameters(bad: dict) -> None:
    args = dict(n=0, num_frames=5, length=2, length_pad=1) | bad
    with pytest.raises((ValueError, IndexError)):
        plan_window(**args)
