"""The bench's export suite turns the parity reports, the onnxruntime timing and the PyTorch
measurement into results rows: speed-ups from onnxruntime, quality and FLOPs from the bench's
counting, the 0.9x-of-the-FLOPs-reduction target per batch size."""
import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts" / "bench"))
import export as export_suite  # noqa: E402  (scripts/bench/export.py)


def _timed(median, lo=None, hi=None):
    spread = {"median": median, "min": lo or median, "max": hi or median}
    return {"throughput": {"median": 100 * median}, "speedup": spread, "speedup_cpu": spread}


def _torch(quality, flops, b1, b32):
    return {"path": "x.pt", "parameters": 1000, "test": {"quality": quality, "relative_flops": flops},
            "b1": _timed(b1), "b32": _timed(b32)}


def test_rows_take_speed_from_onnxruntime_and_quality_from_the_bench():
    chosen = [("base", "fine-tuned", "reference", "b.pt"), ("kp", "Kprune 50 %", "method", "k.pt"),
              ("ltp", "LTP", "method", "l.pt")]
    ort = {"exports": {"base": {"method_chain": "", "b1": _timed(1.0), "b32": _timed(1.0)},
                       "kp": {"method_chain": "kprune 0.5", "relative_flops": 0.5,
                              "b1": _timed(1.7, 1.6, 1.8), "b32": _timed(1.85)},
                       "ltp": {"method_chain": "ltp", "b1": _timed(1.1), "b32": _timed(1.5)}}}
    measured = {"models": {"base": _torch(85.0, 1.0, 1.0, 1.0), "kp": _torch(84.0, 0.5, 1.6, 1.7),
                           "ltp": _torch(84.5, 0.7, 1.05, 1.4)}}
    parity = {k: {"max_abs_diff": 6e-6, "examples": 1056, "argmax_agreement": 1.0, "passed": True}
              for k in ("base", "kp", "ltp")}
    rows = export_suite.rows_of(chosen, ort, measured, parity)
    kp, ltp = rows[1], rows[2]
    assert (kp["quality"], kp["relative_flops"]) == (84.0, 0.5)
    assert (kp["speedup_b1"], kp["speedup_b1_min"], kp["speedup_b1_max"]) == (1.7, 1.6, 1.8)
    assert kp["pytorch_speedup_b1"] == 1.6 and kp["target_b1"] == 1.8
    assert kp["met_b1"] is False and kp["met_b32"] is True  # 1.70 < 0.9 / 0.5 <= 1.85
    assert ltp["target_b32"] == pytest.approx(0.9 / 0.7, abs=1e-3) and ltp["met_b32"] is True
    assert rows[0]["series"] == "reference" and kp["series"] == ltp["series"] == "ONNX export"
    from user_dir.bench import results
    results.check_rows(rows)


def test_translation_rows_take_bleu_from_fairseq_and_onnxruntime():
    chosen = [("srp-base", "base", "reference", "b.pt"), ("srp-0.5", "SRP 0.5", "method", "s.pt")]
    ort = {"exports": {"srp-base": {"method_chain": "", "b1": _timed(1.0), "b32": _timed(1.0)},
                       "srp-0.5": {"method_chain": "srp", "b1": _timed(1.5), "b32": _timed(1.9)}}}

    def model(bleu, flops, b1, b32):
        return {"parameters": 10, "relative_flops": flops, "flops_per_sentence": 5.0,
                "test": {"bleu": bleu, "tokens_per_sentence": 9.0}, "b1": _timed(b1), "b32": _timed(b32)}
    measured = {"models": {"srp-base": model(30.0, 1.0, 1.0, 1.0), "srp-0.5": model(29.5, 0.5, 1.4, 1.7)}}
    parity = {k: {"bleu_onnxruntime": b, "identical_hypotheses": 1.0, "max_abs_diff": 5e-6, "examples": 1000,
                  "passed": True} for k, b in (("srp-base", 30.0), ("srp-0.5", 29.5))}
    rows = export_suite.translation_rows(chosen, ort, measured, parity)
    srp = rows[1]
    assert (srp["quality"], srp["bleu_onnxruntime"], srp["relative_flops"]) == (29.5, 29.5, 0.5)
    assert srp["speedup_b32"] == 1.9 and srp["pytorch_speedup_b32"] == 1.7
    assert srp["met_b32"] is True and srp["met_b1"] is False  # target 0.9 / 0.5 = 1.8
    table = "\n".join(export_suite._translation_markdown(rows))
    assert "| SRP 0.5 | 29.50 | 29.50 | 100.0 % | 0.500 | 1.50x | 1.90x | 1.40x | 1.70x |" in table


def test_translation_rows_with_forced_lengths():
    chosen = [("srp-base", "base", "reference", "b.pt"), ("srp-0.5", "SRP 0.5", "method", "s.pt")]
    ort = {"exports": {k: {"method_chain": "", "b1": _timed(1.0), "b32": _timed(1.0)} for k in ("srp-base", "srp-0.5")}}
    measured = {"models": {k: {"parameters": 10, "relative_flops": f, "flops_per_sentence": 5.0,
                               "test": {"bleu": 30.0, "tokens_per_sentence": 9.0}, "b1": _timed(1.0), "b32": _timed(1.0)}
                           for k, f in (("srp-base", 1.0), ("srp-0.5", 0.5))}}
    parity = {k: {"bleu_onnxruntime": 30.0, "identical_hypotheses": 1.0, "max_abs_diff": 5e-6, "examples": 1000,
                  "passed": True} for k in ("srp-base", "srp-0.5")}
    ort_forced = {"forced_len": 20, "exports": {"srp-base": {"b1": _timed(1.0), "b32": _timed(1.0)},
                                                "srp-0.5": {"b1": _timed(1.6), "b32": _timed(2.1)}}}
    torch_forced = {"models": {"srp-base": {"b1": _timed(1.0), "b32": _timed(1.0)},
                               "srp-0.5": {"b1": _timed(1.3), "b32": _timed(1.8)}}}
    rows = export_suite.translation_rows(chosen, ort, measured, parity, (ort_forced, torch_forced))
    srp = rows[1]
    assert (srp["forced_speedup_b1"], srp["forced_speedup_b32"]) == (1.6, 2.1)
    assert (srp["pytorch_forced_speedup_b1"], srp["pytorch_forced_speedup_b32"]) == (1.3, 1.8)
    assert srp["forced_len"] == 20 and srp["speedup_b1"] == 1.0  # the targets keep the free-decoding figures
    table = "\n".join(export_suite._translation_markdown(rows))
    assert "forced to 20 tokens" in table and "| ORT forced b1 | ORT forced b32 | PyTorch forced b1 |" in table
    assert "| 1.00x | 1.00x | 1.00x | 1.00x | 1.60x | 2.10x | 1.30x | 1.80x |" in table
