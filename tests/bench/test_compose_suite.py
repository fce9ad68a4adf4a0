"""The compose suite's verdicts: the FLOPs-reduction and speed targets, the matched-FLOPs Kprune
constraint and the comparison with a single method's curve (interpolated, or said to be outside it);
the Kprune -> TR-BERT results pool dev and test as the TR-BERT suite does."""
import json
import sys

import pytest

from tests.bench.measured import measured as _measured
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts" / "bench"))
import compose as compose_suite  # noqa: E402  (scripts/bench/compose.py)


def _row(series, flops, quality, family="baseline", **speed):
    return {"model": f"{series} {flops}", "family": family, "series": series, "relative_flops": flops,
            "quality": quality, "quality_split": "test", **speed}


def test_matched_constraint_removes_the_rest_and_is_capped():
    assert compose_suite.matched_constraint(0.2837) == "0.72"
    assert compose_suite.matched_constraint(0.01) == "0.95"


def test_reduction_and_speed_targets():
    base = _row("fine-tuned", 1.0, 85.0, "reference")
    comp = _row("composed", 0.25, 84.0, "method", speedup_b1=3.0, speedup_b32=3.5)
    first, b1, b32 = compose_suite.reduction_targets(base, comp, (1, 32))
    assert (first["reduction"], first["drop"], first["met"]) == (4.0, 1.0, True)
    assert (b1["needed"], b1["met"]) == (3.2, False)  # 0.8 x 4
    assert b32["met"] is True
    worse = compose_suite.reduction_targets(base, dict(comp, quality=83.0), (1,))[0]
    assert worse["met"] is False  # 2 points > 1.5


def test_curve_targets_interpolate_or_say_outside():
    rows = [_row("LTP alone (tokens)", 0.4, 80.0), _row("LTP alone (tokens)", 0.6, 84.0),
            _row("LTP alone (padded)", 0.7, 84.0), _row("LTP alone (padded)", 0.9, 85.0)]
    comp = _row("composed", 0.5, 82.5, "method")
    tokens, padded = sorted(compose_suite.curve_targets(comp, rows, "LTP alone"), key=lambda t: t["target"],
                            reverse=True)
    assert tokens["alone_interpolated"] == pytest.approx(82.0) and tokens["met"] is True
    assert padded["alone_interpolated"] is None and padded["met"] is None
    assert compose_suite.curve_targets(dict(comp, quality=81.0), rows, "LTP alone (tokens)")[0]["met"] is False


def test_trbert_chain_rows_pool_dev_and_test(monkeypatch):
    written = {}
    monkeypatch.setattr(compose_suite.trbert_suite, "split_tokens", lambda data: {"valid": 1.0, "test": 1.0})
    monkeypatch.setattr(compose_suite, "write_results", lambda name, result, md, *a: written.update(
        name=name, result=result, md=md))
    names = [("base", "fine-tuned MiniLM", "reference", "fine-tuned", "b.pt"),
             ("kprune50", "Kprune 50 %", "method", "Kprune 50 % (first step)", "k.pt"),
             ("composed", "Kprune 50 % → TR-BERT α 1.0", "method", "Kprune 50 % → TR-BERT", "c.pt"),
             ("kprune-matched", "Kprune alone 80 %", "baseline", "Kprune alone", "m.pt"),
             ("trbert-0.5", "TR-BERT alone α 0.5", "baseline", "TR-BERT alone", "t1.pt"),
             ("trbert-2.0", "TR-BERT alone α 2.0", "baseline", "TR-BERT alone", "t2.pt")]
    models = {"base": _measured(135, 129, 1.0, 1.0), "kprune50": _measured(132, 126, 0.5, 1.8),
              "composed": _measured(130, 125, 0.2, 4.0), "kprune-matched": _measured(120, 114, 0.2, 4.2),
              "trbert-0.5": _measured(134, 128, 0.45, 2.0), "trbert-2.0": _measured(126, 120, 0.15, 5.0)}
    st = type("St", (), {"summary": lambda self: [{"step": "compose/x", "seconds": 60.0, "finished": "now"}]})()
    compose_suite.write_trbert(names, {"models": models, "protocol": {"rounds": 5, "threads": 1}}, st, "0.80", "d")
    assert written["name"] == "compose-trbert"
    rows = written["result"]["rows"]
    base, comp = rows[0], rows[2]
    assert base["quality"] == pytest.approx(100 * 264 / 300) and base["quality_split"] == "dev+test"
    assert comp["relative_flops"] == pytest.approx(0.2) and comp["examples"] == 300
    targets = {t["target"]: t for t in written["result"]["targets"]}
    assert targets["ahead of Kprune alone at matched FLOPs"]["met"] is True  # 255 vs 234 right
    alone = targets["ahead of TR-BERT alone at matched FLOPs"]
    # rows hold accuracies rounded to 2 decimals: 82.00 at 0.15, 87.33 at 0.45, composed at 0.20
    assert alone["alone_interpolated"] == pytest.approx(82.0 + (87.33 - 82.0) * 0.05 / 0.30)
    assert "Kprune 50 % then TR-BERT" in written["md"] and json.dumps(written["result"])
