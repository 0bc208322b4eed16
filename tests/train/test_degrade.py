"""Degradation statistics: noise level, blur kernels, trajectories."""

from __future__ import annotations

import numpy as np
import pytest

from vsshiftnet.data.degrade import (
    BlurConfig,
    NoiseConfig,
    add_noise,
    apply_kernel,
    plan_blur,
    sample_sigma,
    smooth_path,
    splat_kernel,
    yuv420_noise,
)


def test_sigma_power_skews_draws_low_and_power_one_is_the_plain_draw() -> None:
    plain, skewed = NoiseConfig(), NoiseConfig(sigma_power=1.5)
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert [sample_sigma(plain, a) for _ in range(5)] == [
        float(x) for x in b.uniform(plain.sigma_min, plain.sigma_max, 5)]
    rng = np.random.default_rng(4)
    draws = np.array([sample_sigma(skewed, rng) for _ in range(20000)])
    assert draws.min() >= 0.0 and draws.max() <= 55.0
    # P(sigma < 10) = (10 / 55) ** (1 / 1.5) = 0.32 against 0.18 for the plain draw
    assert abs((draws < 10).mean() - (10 / 55) ** (1 / 1.5)) < 0.015


@pytest.mark.parametrize("sigma", [5.0, 25.0, 50.0])
def test_noise_std_matches_sigma(sigma: float) -> None:
    clean = np.full((4, 64, 64, 3), 0.5, np.float32)
    noisy, nmap = add_noise(clean, sigma, np.random.default_rng(0))
    assert abs((noisy - clean).std() * 255 / sigma - 1) < 0.02
    assert abs((noisy - clean).mean()) < 0.01 * sigma / 255 + 1e-3
    assert nmap.shape == (4, 64, 64, 1)
    np.testing.assert_allclose(nmap, sigma / 255, rtol=1e-6)


def test_clipped_noise_is_8bit() -> None:
    clean = np.random.default_rng(1).random((2, 16, 16, 3)).astype(np.float32)
    noisy, _ = add_noise(clean, 30, np.random.default_rng(0), clip=True)
    assert noisy.min() >= 0 and noisy.max() <= 1
    np.testing.assert_allclose(noisy * 255, np.rint(noisy * 255), atol=1e-3)


def test_signal_dependent_map_is_per_pixel_std() -> None:
    clean = np.linspace(0, 1, 64 * 64 * 3, dtype=np.float32).reshape(1, 64, 64, 3)
    _, nmap = add_noise(clean, 10, np.random.default_rng(0), signal_dependent=0.01)
    expect = np.sqrt((10 / 255) ** 2 + 0.01 * clean).mean(-1, keepdims=True)
    np.testing.assert_allclose(nmap, expect, rtol=1e-5)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize(("ratio", "matrix"), [(0.5, "709"), (1.0, "601"), (2.0, "709")])
def test_yuv420_noise_has_the_rgb_sigma_and_is_correlated(ratio: float, matrix: str) -> None:
    n = yuv420_noise((4, 96, 96, 3), 25.0, np.random.default_rng(0), chroma_ratio=ratio,
                     matrix=matrix)
    assert n.shape == (4, 96, 96, 3) and n.dtype == np.float32
    inner = n[:, 2:-2, 2:-2]  # edge replication leaves the outer chroma rows stronger
    rms = float(np.sqrt((inner.std(axis=(0, 1, 2)) ** 2).mean()) * 255)
    assert abs(rms / 25.0 - 1) < 0.03
    # luma is shared by R, G and B; chroma is shared by neighbouring pixels
    assert max(abs(_corr(n[..., i], n[..., j])) for i, j in ((0, 1), (0, 2), (1, 2))) > 0.15
    assert _corr(n[:, :, :-1, 2], n[:, :, 1:, 2]) > 0.1
    plain = add_noise(np.zeros((4, 96, 96, 3), np.float32), 25.0, np.random.default_rng(0))[0]
    assert abs(_corr(plain[..., 0], plain[..., 1])) < 0.03
    assert abs(_corr(plain[:, :, :-1, 2], plain[:, :, 1:, 2])) < 0.03


def test_yuv420_noise_odd_sizes_and_map() -> None:
    assert yuv420_noise((2, 9, 7, 3), 10.0, np.random.default_rng(0)).shape == (2, 9, 7, 3)
    clean = np.full((2, 9, 7, 3), 0.5, np.float32)
    noisy, nmap = add_noise(clean, 30.0, np.random.default_rng(0), clip=True,
                            yuv420=(1.0, "709"))
    np.testing.assert_allclose(nmap, 30.0 / 255, rtol=1e-6)
    np.testing.assert_allclose(noisy * 255, np.rint(noisy * 255), atol=1e-3)
    assert not np.array_equal(noisy, clean)


def test_blur_kernels_sum_to_one_and_fit() -> None:
    cfg = BlurConfig(max_length=12.0, still_prob=0.0)
    for seed in range(10):
        plan = plan_blur(5, cfg, np.random.default_rng(seed), pan=seed % 2 == 1)
        for k in plan.kernels:
            assert k.shape == (2 * plan.radius + 1,) * 2
            assert abs(k.sum() - 1) < 1e-9 and k.min() >= 0
        assert plan.length <= 12.0
        assert plan.radius <= int(np.ceil(12.0)) + 2 or seed % 2 == 1


def test_still_plan_is_identity() -> None:
    plan = plan_blur(3, BlurConfig(still_prob=1.0), np.random.default_rng(0), pan=False)
    img = np.random.default_rng(0).random((20, 20, 3)).astype(np.float32)
    r = plan.radius
    out = apply_kernel(img, plan.kernels[0], r, r, r, 20 - 2 * r, 20 - 2 * r)
    np.testing.assert_allclose(out, img[r:20 - r, r:20 - r], atol=1e-6)


def test_trajectory_is_smooth() -> None:
    path = smooth_path(200, np.random.default_rng(0))
    step = np.linalg.norm(np.diff(path, axis=0), axis=1)
    assert abs(step.sum() - 1) < 1e-9  # unit length
    turn = np.linalg.norm(np.diff(path, 2, axis=0), axis=1)
    assert turn.max() < 0.25 * step.max()  # no kinks: direction changes slowly


def test_splat_kernel_mean_offset() -> None:
    offs = np.array([[0.0, -2.5], [0.0, 0.0], [0.0, 2.5]])
    k, r = splat_kernel(offs)
    ys, xs = np.mgrid[-r:r + 1, -r:r + 1]
    assert abs((k * xs).sum()) < 1e-9 and abs((k * ys).sum()) < 1e-9
    assert abs(k.sum() - 1) < 1e-12
