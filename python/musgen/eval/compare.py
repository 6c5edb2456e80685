"""Comparing two sets of pieces feature by feature (Yang & Lerch 2018, as in MGEval), kept apart
from the features themselves (``metrics``).

For one feature with per-piece values ``g_1..g_n`` (generated) and ``r_1..r_m`` (reference):

* intra-set distances: ``|r_i - r_j|`` for i < j (Euclidean norm for histograms), and the same
  inside the generated set;
* inter-set distances: ``|g_i - r_j|`` for every pair;
* a Gaussian KDE (Scott's bandwidth as ``scipy.stats.gaussian_kde`` sets it, evaluated binned) of the
  reference's intra-set distances and of the inter-set distances, on one common grid;
* overlap area ``OA = integral of min(p_intra_ref, p_inter)`` (1: the generated pieces are as
  far from the reference as reference pieces are from each other) and
  ``KL(p_intra_ref || p_inter)`` in nats (0 for identical distributions).

Yang & Lerch, "On the evaluation of generative models in music", Neural Computing and
Applications 32 (2020), first published 2018; MGEval's ``overlap_area`` and ``kl_dist``. Three
departures, all for stability: MGEval evaluates the two densities of its KL on two different
grids and integrates the overlap between the samples' extremes only; here both densities share
one grid that also covers their tails. And both densities share one bandwidth (Scott's rule on
the pooled distances): with a bandwidth each, a mass both sets share (say most distances 0, for
a feature that is mostly 0) is smoothed to two different widths and seems not to overlap. Pieces where a feature is undefined (NaN) are left out of
that feature. When a set of distances has no spread (every distance equal, e.g. all zero),
scipy's KDE is singular; its density is then a Gaussian of a small fixed width
(``DEGENERATE_WIDTH`` of the grid's span) around that value.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pairwise_distances", "intra_set_distances", "inter_set_distances", "kde", "bandwidth",
           "overlap_area", "kl_divergence", "compare_feature", "compare_tables",
           "MAX_DISTANCES", "GRID_POINTS"]

#: Distances fed to one KDE at most (a seeded random subset beyond it; 300 pieces give 45 000
#: intra-set distances, POP909's 909 give 400 000).
MAX_DISTANCES = 200_000
#: Points of the common grid.
GRID_POINTS = 2048
#: Width, as a share of the grid span, of the density of a set of equal distances.
DEGENERATE_WIDTH = 0.01


def _rows(values) -> np.ndarray:
    """[n] or [n, d] -> float64 [n, d] without the rows holding a NaN."""
    a = np.asarray(values, np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"feature values: expected shape [n] or [n, d], got {list(a.shape)}")
    return a[~np.isnan(a).any(axis=1)]


def pairwise_distances(a, b) -> np.ndarray:
    """float64 [len(a), len(b)]: Euclidean distances between the rows of ``a`` and ``b``."""
    from scipy.spatial.distance import cdist

    return cdist(_rows(a), _rows(b))


def intra_set_distances(values) -> np.ndarray:
    """float64 [n (n - 1) / 2]: distances between every two pieces of one set (i < j)."""
    from scipy.spatial.distance import pdist

    return pdist(_rows(values))


def inter_set_distances(values, reference) -> np.ndarray:
    """float64 [n m]: distances from every piece of one set to every piece of the other."""
    return pairwise_distances(values, reference).reshape(-1)


def _subsample(x: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if x.size <= limit:
        return x
    return np.random.default_rng(seed).choice(x, size=limit, replace=False)


def bandwidth(samples: np.ndarray) -> float:
    """Scott's rule bandwidth ``std x n^(-1/5)`` (std with ddof 1), the one
    ``scipy.stats.gaussian_kde`` uses for 1-D samples (its ``covariance`` is this squared);
    0 for fewer than two samples or samples without spread."""
    samples = np.asarray(samples, np.float64)
    if samples.size < 2 or np.ptp(samples) <= 1e-12 * max(1.0, float(np.abs(samples).max())):
        return 0.0
    return float(np.std(samples, ddof=1) * samples.size ** (-1 / 5))


def kde(samples: np.ndarray, grid: np.ndarray, width: float | None = None) -> np.ndarray:
    """Gaussian KDE density of ``samples`` on the evenly spaced ``grid``.

    The bandwidth is ``width``, else scipy's (Scott's rule, :func:`bandwidth`); the density is evaluated by
    linear binning onto the grid and a Gaussian filter (the FFT-free form of statsmodels' and
    KDEpy's binned KDE), so its cost is O(samples + grid) instead of samples x grid, and it
    differs from the exact sum of Gaussians by less than 1e-3 of the peak for bandwidths of a
    grid step or more. Samples without spread get a Gaussian of ``DEGENERATE_WIDTH`` of the grid
    span around their value.
    """
    from scipy.ndimage import gaussian_filter1d

    samples = np.asarray(samples, np.float64)
    step = float(grid[1] - grid[0])
    span = float(grid[-1] - grid[0])
    width = bandwidth(samples) if width is None else float(width)
    if width <= 0.0:
        width = DEGENERATE_WIDTH * span
    pos = (samples - grid[0]) / step
    left = np.clip(np.floor(pos).astype(np.int64), 0, grid.size - 2)
    frac = np.clip(pos - left, 0.0, 1.0)
    counts = np.bincount(left, weights=1.0 - frac, minlength=grid.size)
    counts += np.bincount(left + 1, weights=frac, minlength=grid.size)
    density = gaussian_filter1d(counts, width / step, mode="constant", truncate=6.0)
    return density / (samples.size * step)


def _grid(a: np.ndarray, b: np.ndarray, points: int) -> np.ndarray:
    """An even grid covering both samples and their KDE tails (4 bandwidths beyond)."""
    both = np.concatenate([a, b])
    lo, hi = float(both.min()), float(both.max())
    span = max(hi - lo, 1e-3)
    pad = max(4.0 * max(bandwidth(a), bandwidth(b)), 6 * DEGENERATE_WIDTH * span)
    return np.linspace(lo - pad, hi + pad, points)


def overlap_area(p: np.ndarray, q: np.ndarray, grid: np.ndarray) -> float:
    """``integral of min(p, q)`` over the grid (trapezoid rule), in [0, 1] for densities."""
    from scipy.integrate import trapezoid

    return float(np.clip(trapezoid(np.minimum(p, q), grid), 0.0, 1.0))


def kl_divergence(p: np.ndarray, q: np.ndarray, grid: np.ndarray) -> float:
    """``KL(p || q) = integral of p log(p / q)`` in nats, both normalized on the grid; q is
    floored at 1e-12 of its peak so that a tail without mass gives a large finite value."""
    dx = np.gradient(grid)
    p = np.maximum(p, 0) * dx
    q = np.maximum(q, 1e-12 * max(float(q.max()), 1e-300)) * dx
    p, q = p / p.sum(), q / q.sum()
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / q[nz])))


def _mean(values: np.ndarray):
    rows = _rows(values)
    if not len(rows):
        return None
    m = rows.mean(axis=0)
    return float(m[0]) if np.ndim(values) == 1 else m.tolist()


def _std(values: np.ndarray):
    rows = _rows(values)
    if not len(rows):
        return None
    s = rows.std(axis=0)
    return float(s[0]) if np.ndim(values) == 1 else s.tolist()


def compare_feature(values, reference, *, seed: int = 0, max_distances: int = MAX_DISTANCES,
                    grid_points: int = GRID_POINTS, densities: bool = False) -> dict:
    """One feature of two sets -> its means and spreads, overlap area and KL (see module note).

    Returns a dict with ``mean``, ``reference_mean`` (floats, or lists for histograms),
    ``std``, ``reference_std``, ``overlap_area``, ``kl``, ``intra_set_distance`` (mean distance
    inside the generated set), ``reference_intra_set_distance``, ``inter_set_distance``, ``n``
    and ``reference_n`` (pieces where the feature is defined). Overlap and KL are None when
    either set has fewer than two such pieces. With ``densities``, also ``grid``,
    ``reference_intra_density`` and ``inter_density`` (arrays, for plots).
    """
    g, r = _rows(values), _rows(reference)
    out = {"mean": _mean(values), "reference_mean": _mean(reference), "std": _std(values),
           "reference_std": _std(reference), "n": int(len(g)), "reference_n": int(len(r)),
           "overlap_area": None, "kl": None, "intra_set_distance": None,
           "reference_intra_set_distance": None, "inter_set_distance": None}
    if len(g) < 2 or len(r) < 2:
        return out
    intra_g = intra_set_distances(g)
    intra_r = _subsample(intra_set_distances(r), max_distances, seed)
    inter = _subsample(inter_set_distances(g, r), max_distances, seed + 1)
    grid = _grid(intra_r, inter, grid_points)
    width = bandwidth(np.concatenate([intra_r, inter]))
    p_intra, p_inter = kde(intra_r, grid, width), kde(inter, grid, width)
    out.update({"overlap_area": overlap_area(p_intra, p_inter, grid),
                "kl": kl_divergence(p_intra, p_inter, grid),
                "intra_set_distance": float(intra_g.mean()),
                "reference_intra_set_distance": float(intra_r.mean()),
                "inter_set_distance": float(inter.mean())})
    if densities:
        out.update({"grid": grid, "reference_intra_density": p_intra, "inter_density": p_inter})
    return out


def compare_tables(table: dict, reference: dict, features=None, *, seed: int = 0) -> dict:
    """:func:`compare_feature` for every feature of two feature tables (``metrics.
    feature_table``) -> {name: result}. Features marked ``compare=False`` (ended_early) give
    their means only."""
    from .metrics import FEATURES

    names = list(features) if features is not None else list(FEATURES)
    out = {}
    for name in names:
        feature = FEATURES.get(name)
        if feature is not None and not feature.compare:
            out[name] = {"mean": _mean(table[name]),
                         "reference_mean": _mean(reference[name]),
                         "n": int(len(_rows(table[name]))), "overlap_area": None, "kl": None}
            continue
        out[name] = compare_feature(table[name], reference[name], seed=seed)
    return out
