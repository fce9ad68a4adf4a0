"""Is one system's BLEU really above another's? Paired bootstrap resampling (Koehn, 2004).

Test sets of a thousand sentences put differences of a few tenths of a BLEU point inside the
noise. sacreBLEU's own paired bootstrap test (``sacrebleu.significance.PairedTest``, test type ``bs``:
the behaviour of Moses' ``bootstrap-hypothesis-difference-significance.pl``) resamples the sentences
with replacement, the same resampled sets for both systems, and reports per system the mean BLEU
over the resamples with the half-width of its 95 % interval, and for each system against the
baseline the p-value of the null hypothesis that the two are equally good (two-sided: the share
of resamples whose difference is at least as far from its mean as the observed one).

A system whose hypotheses equal the baseline's gets p = 1 (sacreBLEU's statistic is degenerate
there: every resampled difference is 0, and its strict comparison returns the smallest p-value).

The BLEU is sacreBLEU's default (13a tokenisation, mixed case), as fairseq-generate ``--scoring
sacrebleu`` computes it, so the full-sample scores equal the bench's.
"""
from typing import Dict, List, Sequence, Tuple

DEFAULT_SAMPLES = 1000
DEFAULT_SEED = 12345  # sacreBLEU's own default seed


def paired_bootstrap(references: Sequence[str], baseline: Tuple[str, Sequence[str]],
                     systems: List[Tuple[str, Sequence[str]]], samples: int = DEFAULT_SAMPLES,
                     seed: int = DEFAULT_SEED) -> Dict[str, dict]:
    """``{name: {"bleu", "mean", "ci95_half", "p_value"}}`` for the baseline and each system
    (``p_value`` is None for the baseline). Hypotheses and references are de-BPE'd strings in the
    same order."""
    import os

    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    n = len(references)
    for name, hyps in [baseline, *systems]:
        if len(hyps) != n:
            raise ValueError(f"{name}: {len(hyps)} hypotheses for {n} references")
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    previous = os.environ.get("SACREBLEU_SEED")
    os.environ["SACREBLEU_SEED"] = str(seed)  # PairedTest reads its seed from the environment
    try:
        test = PairedTest([baseline, *systems], {"BLEU": BLEU()}, [list(references)], test_type="bs",
                          n_samples=samples)
        _, scores = test()
    finally:
        if previous is None:
            os.environ.pop("SACREBLEU_SEED", None)
        else:
            os.environ["SACREBLEU_SEED"] = previous
    same = {name for name, hyps in systems if list(hyps) == list(baseline[1])}
    out = {}
    for name, result in zip(scores["System"], scores["BLEU"]):
        p = None if result.p_value is None else 1.0 if name in same else round(float(result.p_value), 4)
        out[name] = {"bleu": round(float(result.score), 4), "mean": round(float(result.mean), 4),
                     "ci95_half": round(float(result.ci), 4), "p_value": p}
    return out
