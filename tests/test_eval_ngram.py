"""The Kneser-Ney n-gram baseline: a hand-computed bigram case, normalization, order choice."""

from __future__ import annotations

import math

import numpy as np
import pytest

from musgen.eval.ngram import KneserNey, best_order

BOS, EOS, A, B = 1, 2, 3, 4
V = 5  # PAD, BOS, EOS, A, B


def test_ngram_bigram_nll_matches_hand_computation():
    # Train: BOS A B A B EOS. Targets with their (padded) bigram: (BOS,A) (A,B) (B,A) (A,B) (B,EOS)
    lm = KneserNey([[BOS, A, B, A, B, EOS]], V, BOS, max_order=2,
                   discounts={(1, "cont"): 0.5, (2, "raw"): 0.5})
    # Unigram continuation counts N1+(. w): A <- {BOS, B} = 2, B <- {A} = 1, EOS <- {B} = 1;
    # total 4 over 3 types, so P1(w) = (max(N(w) - .5, 0) + .5 * 3 / 5) / 4.
    p1 = {A: (1.5 + 0.3) / 4, B: (0.5 + 0.3) / 4, EOS: (0.5 + 0.3) / 4, BOS: 0.3 / 4}
    # Bigram: history BOS seen once (1 type); A seen twice (1 type); B seen twice (2 types).
    p_a_bos = (1 - 0.5 + 0.5 * 1 * p1[A]) / 1     # 0.725
    p_b_a = (2 - 0.5 + 0.5 * 1 * p1[B]) / 2       # 0.8
    p_eos_b = (1 - 0.5 + 0.5 * 2 * p1[EOS]) / 2   # 0.35
    assert p_a_bos == pytest.approx(0.725) and p_b_a == pytest.approx(0.8)
    assert p_eos_b == pytest.approx(0.35)
    probs = lm.target_probs([[BOS, A, B, EOS]], order=2)
    np.testing.assert_allclose(probs, [p_a_bos, p_b_a, p_eos_b], rtol=1e-12)
    total, count = lm.nll([[BOS, A, B, EOS]], order=2)
    assert count == 3
    assert total == pytest.approx(-(math.log(0.725) + math.log(0.8) + math.log(0.35)), rel=1e-12)
    # Order 1 scores with the raw unigram counts: A 2, B 2, EOS 1 of 5 targets, 3 types.
    lm1 = KneserNey([[BOS, A, B, A, B, EOS]], V, BOS, max_order=2,
                    discounts={(1, "raw"): 0.5})
    u = lm1.target_probs([[BOS, B, EOS]], order=1)
    np.testing.assert_allclose(u, [(2 - 0.5 + 0.5 * 3 / 5) / 5, (1 - 0.5 + 0.5 * 3 / 5) / 5])


def test_ngram_discounts_from_counts_of_counts():
    # Bigram raw counts: (BOS,A)=2 (A,B)=2; (B,EOS) (A,EOS) (BOS,B) (B,A) once: D = 4/(4+2*2)
    lm = KneserNey([[BOS, A, B, EOS], [BOS, A, EOS], [BOS, B, A, B]], V, BOS, max_order=2)
    counts = dict(zip(lm.raw[2].keys.tolist(), lm.raw[2].counts.tolist()))
    assert counts[BOS * V + A] == 2 and counts[A * V + B] == 2
    assert sorted(counts.values()) == [1, 1, 1, 1, 2, 2]
    assert lm.raw[2].discount == pytest.approx(0.5)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_ngram_distributions_sum_to_one(order):
    rng = np.random.default_rng(order)
    train = [np.concatenate([[BOS], rng.integers(3, 9, size=int(rng.integers(5, 40))), [EOS]])
             for _ in range(30)]
    lm = KneserNey(train, 9, BOS, max_order=5)
    history = [BOS, 3, 4, 5, 3]
    # P(w | history) for every w of the vocabulary: score history + [w] and take the last.
    probs = [lm.target_probs([history + [w]], order)[-1] for w in range(9)]
    assert sum(probs) == pytest.approx(1.0, abs=1e-12)
    assert min(probs) > 0


def test_ngram_best_order_prefers_context_on_a_deterministic_cycle():
    cycle = [3, 4, 5, 3, 6]  # after 3 comes 4 or 6: the token before 3 decides (order 3)
    train = [[BOS] + cycle * 8 + [EOS] for _ in range(5)]
    lm = KneserNey(train, 7, BOS, max_order=5)
    order, scores = best_order(lm, [[BOS] + cycle * 4 + [EOS]])
    assert order >= 3
    assert scores[3] < scores[2] < scores[1]


def test_ngram_rejects_bad_tokens_and_empty_training():
    with pytest.raises(ValueError, match="outside|must lie"):
        KneserNey([[BOS, 9, EOS]], V, BOS)
    with pytest.raises(ValueError, match="no training sequence"):
        KneserNey([[BOS]], V, BOS)
