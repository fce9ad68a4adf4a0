"""McNemar's exact test against hand-computed binomial tails."""
import pytest

from user_dir.bench.paired_accuracy import mcnemar_exact, parse_pair


def test_exact_p_value_by_hand():
    # 10 examples: both right on 2, only A on 7, only B on 1. n = 8 discordant, X ~ Bin(8, 1/2):
    # P(X <= 1) = (C(8,0) + C(8,1)) / 256 = 9 / 256, two-sided p = 18 / 256
    a = [1, 1] + [1] * 7 + [0]
    b = [1, 1] + [0] * 7 + [1]
    r = mcnemar_exact(a, b)
    assert (r["a_only"], r["b_only"], r["a_correct"], r["b_correct"], r["examples"]) == (7, 1, 9, 3, 10)
    assert r["p"] == pytest.approx(18 / 256, abs=1e-15)
    assert r["difference_points"] == pytest.approx(60.0)
    # symmetric in the two models, except for the sign of the difference
    s = mcnemar_exact(b, a)
    assert s["p"] == r["p"] and s["difference_points"] == pytest.approx(-60.0)


def test_balanced_and_identical_predictions_give_p_one():
    # 3 against 3: P(X <= 3) of Bin(6, 1/2) = 42/64 > 1/2, so the doubled tail is capped at 1
    assert mcnemar_exact([1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1])["p"] == 1.0
    r = mcnemar_exact([1, 0, 1], [1, 0, 1])
    assert r["a_only"] == r["b_only"] == 0 and r["p"] == 1.0


def test_one_sided_sweep_of_twelve():
    # A right on 12 examples B gets wrong, never the reverse: p = 2 / 2^12
    r = mcnemar_exact([1] * 12 + [0] * 5, [0] * 12 + [0] * 5)
    assert r["p"] == pytest.approx(2 / 4096, abs=1e-15)


def test_errors():
    with pytest.raises(ValueError, match="differ in length"):
        mcnemar_exact([1, 0], [1])
    with pytest.raises(ValueError, match="among the --model names"):
        parse_pair("a:c", ["a", "b"])
    with pytest.raises(ValueError, match="expected A:B"):
        parse_pair("a", ["a", "b"])
    assert parse_pair("b:a", ["a", "b"]) == ("b", "a")
