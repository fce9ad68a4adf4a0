"""Paired bootstrap resampling of BLEU (user_dir/bench/bleu_significance.py) on hand-made systems."""
import pytest

from user_dir.bench.bleu_significance import paired_bootstrap

REFS = ["the cat sat on the mat .", "a dog runs in the park .", "he reads a book every day .",
        "we like green tea .", "the train leaves at noon .", "she writes long letters ."] * 6
WORSE = ["the cat sat on a mat .", "a dog runs in park .", "he reads book every day .",
         "we like tea .", "train leaves at noon .", "she writes letters ."] * 6
BETTER = ["the cat sat on the mat .", "the dog runs in the park .", "he reads a book each day .",
          "we like green tea .", "the train leaves at noon .", "she writes long letters ."] * 6


def test_full_sample_bleu_is_sacrebleus_and_a_clear_gain_is_significant():
    from sacrebleu import corpus_bleu

    out = paired_bootstrap(REFS, ("worse", WORSE), [("better", BETTER)], samples=200)
    assert out["worse"]["bleu"] == pytest.approx(corpus_bleu(WORSE, [REFS]).score, abs=1e-4)
    assert out["better"]["bleu"] == pytest.approx(corpus_bleu(BETTER, [REFS]).score, abs=1e-4)
    assert out["worse"]["p_value"] is None and out["better"]["p_value"] < 0.05
    for v in out.values():
        assert v["ci95_half"] > 0 and abs(v["mean"] - v["bleu"]) < 2 * v["ci95_half"]


def test_identical_systems_are_not_different_and_the_seed_fixes_the_result(monkeypatch):
    monkeypatch.setenv("SACREBLEU_SEED", "7")
    first = paired_bootstrap(REFS, ("a", WORSE), [("b", list(WORSE))], samples=100, seed=3)
    assert first["b"]["p_value"] == 1.0 and first["a"]["bleu"] == first["b"]["bleu"]
    assert paired_bootstrap(REFS, ("a", WORSE), [("b", list(WORSE))], samples=100, seed=3) == first
    import os
    assert os.environ["SACREBLEU_SEED"] == "7"  # the caller's setting is put back


def test_one_changed_sentence_in_36_is_not_significant():
    nearly = list(WORSE)
    nearly[0] = REFS[0]
    out = paired_bootstrap(REFS, ("worse", WORSE), [("nearly", nearly)], samples=200)
    assert out["nearly"]["bleu"] > out["worse"]["bleu"] and out["nearly"]["p_value"] > 0.05


def test_bad_input():
    with pytest.raises(ValueError, match="better: 5 hypotheses for 36 references"):
        paired_bootstrap(REFS, ("worse", WORSE), [("better", BETTER[:5])])
    with pytest.raises(ValueError, match="samples must be at least 1"):
        paired_bootstrap(REFS, ("worse", WORSE), [("better", BETTER)], samples=0)
