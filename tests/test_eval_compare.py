"""Set comparison (Yang & Lerch 2018): distances, the KDE against scipy's, overlap area and KL
on sets with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import trapezoid
from scipy.stats import gaussian_kde, norm

from musgen.eval import compare as c


def test_intra_and_inter_set_distances():
    np.testing.assert_allclose(c.intra_set_distances([0.0, 1.0, 3.0]), [1, 3, 2])
    np.testing.assert_allclose(c.inter_set_distances([0.0, 1.0], [3.0]), [3, 2])
    # histograms: Euclidean
    np.testing.assert_allclose(c.intra_set_distances([[1, 0], [0, 1]]), [math.sqrt(2)])
    # a piece where the feature is undefined (NaN) is left out
    np.testing.assert_allclose(c.intra_set_distances([0.0, np.nan, 2.0]), [2])


def test_bandwidth_is_scotts_as_scipy():
    x = np.random.default_rng(0).normal(size=300)
    assert c.bandwidth(x) == pytest.approx(math.sqrt(gaussian_kde(x).covariance[0, 0]))
    assert c.bandwidth(np.ones(10)) == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_binned_kde_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.exponential(1.0, 2000), rng.normal(5, 0.3, 500)])
    grid = np.linspace(-2, 10, 2048)
    got, want = c.kde(x, grid), gaussian_kde(x)(grid)
    assert np.abs(got - want).max() < 1e-3 * want.max()
    assert trapezoid(got, grid) == pytest.approx(1.0, abs=1e-4)


def test_overlap_and_kl_of_known_gaussians():
    grid = np.linspace(-8, 9, 4001)
    p, q = norm.pdf(grid, 0, 1), norm.pdf(grid, 1, 1)
    # two unit Gaussians one sigma apart overlap by 2 Phi(-1/2); KL = 1/2
    assert c.overlap_area(p, q, grid) == pytest.approx(2 * norm.cdf(-0.5), abs=1e-4)
    assert c.kl_divergence(p, q, grid) == pytest.approx(0.5, abs=1e-3)
    assert c.overlap_area(p, p, grid) == pytest.approx(1.0, abs=1e-6)
    assert c.kl_divergence(p, p, grid) == pytest.approx(0.0, abs=1e-9)


def test_same_distribution_overlaps_and_far_apart_does_not():
    rng = np.random.default_rng(3)
    ref = rng.normal(0, 1, 300)
    same = c.compare_feature(rng.normal(0, 1, 300), ref)
    assert same["overlap_area"] > 0.9 and same["kl"] < 0.02
    assert same["mean"] == pytest.approx(0.0, abs=0.2)
    assert same["n"] == 300 and same["reference_n"] == 300
    far = c.compare_feature(rng.normal(10, 1, 300), ref)
    assert far["overlap_area"] < 0.01 and far["kl"] > 5
    assert far["inter_set_distance"] == pytest.approx(10, abs=0.5)
    assert far["reference_intra_set_distance"] == pytest.approx(2 / math.sqrt(math.pi), rel=0.1)


def test_sets_without_spread_and_shared_masses():
    # every piece the same value in both sets: identical distances, full overlap, no KL
    flat = c.compare_feature(np.zeros(50), np.zeros(80))
    assert flat["overlap_area"] == pytest.approx(1.0, abs=1e-3)
    assert flat["kl"] == pytest.approx(0.0, abs=1e-3)
    # mostly zero in both sets (a rare event): the shared mass at 0 overlaps
    rng = np.random.default_rng(5)
    a = np.where(rng.random(200) < 0.05, rng.uniform(0, 0.1, 200), 0.0)
    b = np.where(rng.random(200) < 0.05, rng.uniform(0, 0.1, 200), 0.0)
    assert c.compare_feature(a, b)["overlap_area"] > 0.85


def test_histogram_feature_means_are_lists_and_small_sets_give_none():
    out = c.compare_feature([[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.0, 1.0], [1, 0]])
    assert out["mean"] == [0.75, 0.25] and out["reference_mean"] == pytest.approx([1 / 3, 2 / 3])
    single = c.compare_feature([1.0], [1.0, 2.0])
    assert single["overlap_area"] is None and single["kl"] is None and single["mean"] == 1.0


def test_compare_tables_skips_the_set_comparison_of_ended_early():
    from musgen.eval.metrics import FEATURES

    rng = np.random.default_rng(0)
    table = {n: (rng.random(20) if f.size == 1 else rng.random((20, f.size)))
             for n, f in FEATURES.items()}
    out = c.compare_tables(table, table)
    assert set(out) == set(FEATURES)
    assert out["ended_early"]["overlap_area"] is None
    assert out["pitch_range"]["overlap_area"] > 0.95
