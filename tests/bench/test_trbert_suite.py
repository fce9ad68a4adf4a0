"""The TR-BERT suite's results: dev and test pooled into one accuracy with its Wilson interval, kept
fractions weighted by each split's tokens, the speed-up/drop verdicts and the comparisons with the
two baselines at each alpha."""
import json
import sys

import pytest

from tests.bench.measured import measured as _measured
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts" / "bench"))
import trbert as trbert_suite  # noqa: E402  (scripts/bench/trbert.py)


@pytest.fixture
def written(monkeypatch):
    out = {}
    monkeypatch.setattr(trbert_suite, "ALPHAS", ["0.5", "2.0"])
    # dev has 100 tokens, test 300: pooled kept fractions weigh test three times
    monkeypatch.setattr(trbert_suite, "split_tokens", lambda data: {"valid": 100.0, "test": 300.0})
    monkeypatch.setattr(trbert_suite, "write_results", lambda name, result, md, *a: out.update(
        name=name, result=result, md=md))
    joints = {"0.5": "j05.pt", "2.0": "j20.pt"}
    ratios = {"0.5": [0.6, 0.5], "2.0": [0.3, 0.2]}
    names = trbert_suite.model_table("ft.pt", "init.pt", joints, ratios)
    kept = ((0.6, 0.3), (0.2, 0.1))
    models = {
        "base": _measured(125, 125, 1.0, 1.0),              # 250 / 300
        "trbert-0.5": _measured(124, 123, 0.55, 2.1, kept),  # 247: drop 1.0, 2.1x -> met
        "init-topk-0.5": _measured(120, 118, 0.56, 2.0, kept),
        "attn-topk-0.5": _measured(121, 124, 0.55, 2.0, kept),
        "trbert-2.0": _measured(119, 118, 0.30, 3.0, kept),  # 237: drop 4.33 -> not met
        "init-topk-2.0": _measured(110, 110, 0.31, 3.0, kept),
        "attn-topk-2.0": _measured(112, 111, 0.30, 3.0, kept),
    }
    st = type("St", (), {"summary": lambda self: [{"step": "trbert/x", "seconds": 60.0, "finished": "now"}]})()
    details = {a: {"keep_ratios": r, "splits": ["valid", "test"], "padding_b32": [0.2, 0.25]} for a, r in ratios.items()}
    # the significance step: accuracies as the harness's, and the discordant reviews of each pair
    accuracy = {k: (m["valid"]["accuracy"] + m["test"]["accuracy"]) / 2 for k, m in models.items()}
    pairs = [{"a": "trbert-0.5", "b": "init-topk-0.5", "a_only": 12, "b_only": 3, "p": 0.035},
             {"a": "trbert-0.5", "b": "base", "a_only": 2, "b_only": 5, "p": 0.45}]
    trbert_suite.write(names, {"models": models, "protocol": {"rounds": 5, "threads": 1}}, st, ratios, details, "d",
                       {"accuracy": accuracy, "pairs": pairs})
    out.update(names=names, models=models, st=st, ratios=ratios, details=details, accuracy=accuracy)
    return out


def test_rows_pool_dev_and_test(written):
    assert written["name"] == "trbert"
    rows = {r["model"]: r for r in written["result"]["rows"]}
    base = rows["fine-tuned MiniLM"]
    assert base["family"] == "reference" and base["quality_split"] == "dev+test"
    assert (base["correct"], base["examples"]) == (250, 300)
    assert base["quality"] == pytest.approx(100 * 250 / 300, abs=0.005)
    # Wilson: p = 5/6, n = 300, z = 1.96 -> centre 0.8291, half-width 0.0421
    assert base["quality_ci95"] == pytest.approx([78.70, 87.12], abs=0.01)
    tr = rows["TR-BERT α 0.5"]
    assert tr["quality_valid"] == pytest.approx(124 / 1.5, abs=0.005)
    assert tr["quality_test"] == pytest.approx(123 / 1.5, abs=0.005)
    assert tr["relative_flops"] == pytest.approx(0.55)
    assert tr["kept"] == {"kept_l1": pytest.approx(0.3), "kept_l3": pytest.approx(0.15)}  # (0.6 + 3·0.2)/4
    assert tr["alpha"] == 0.5 and tr["keep_ratios"] == [0.6, 0.5]
    assert rows["attention top-k at α 2.0's ratios"]["family"] == "baseline"
    assert tr["padding_b32"] == [0.2, 0.25] and "padding_b32" not in rows["init policy top-k at α 0.5's ratios"]
    assert "| 0.20 0.25 |" in written["md"]


def test_verdicts_and_comparisons(written):
    targets = written["result"]["targets"]
    verdicts = {v["alpha"]: v for v in targets["speedup_ge_2x_b1_b16_with_le_1.5pt_drop"]}
    assert verdicts["0.5"]["drop"] == pytest.approx(1.0, abs=0.01)
    assert verdicts["0.5"]["met_b1"] is True and verdicts["0.5"]["met_b16"] is True
    assert verdicts["2.0"]["drop"] == pytest.approx(4.33, abs=0.01) and verdicts["2.0"]["met_b1"] is False
    comps = {(c["alpha"], c["baseline"]): c for c in targets["vs_baselines_same_ratio"]}
    init = comps[("0.5", "init policy top-k at α 0.5's ratios")]
    assert init["difference"] == pytest.approx((247 - 238) / 3, abs=0.01)
    assert (init["trbert_flops"], init["baseline_flops"]) == (pytest.approx(0.55), pytest.approx(0.56))
    assert len(comps) == 4
    assert (init["p_mcnemar"], init["only_trbert_right"], init["only_other_right"]) == (0.035, 12, 3)
    assert "p_mcnemar" not in comps[("0.5", "attention top-k at α 0.5's ratios")]  # no such pair given
    assert verdicts["0.5"]["p_mcnemar"] == 0.45 and "| 0.5 | +1.00 | **met** | **met** | 2 / 5 | 0.45 |" in written["md"]
    assert "| +3.00 | 12 / 3 | 0.035 |" in written["md"]
    assert "| 2.0 | +4.33 | **not met** | **not met** |" in written["md"] and json.dumps(written["result"])


def test_baseline_specs_carry_the_alphas_ratios():
    names = trbert_suite.model_table("ft.pt", "init.pt", {"1.0": "j.pt"}, {"1.0": [0.41, 0.3]})
    specs = {n[0]: n[5] for n in names}
    assert specs["init-topk-1.0"] == "init-topk-1.0=init.pt:trbert_select=policy_topk,trbert_keep_ratios='0.4100,0.3000'"
    assert specs["attn-topk-1.0"].startswith("attn-topk-1.0=ft.pt:arch=trbert_roberta_minilm,trbert_select=attention_topk")
    assert [n[2] for n in names] == ["reference", "method", "baseline", "baseline"]


def test_significance_must_score_as_the_harness(written):
    """The same models on the same reviews: a different accuracy in the significance step means the
    two steps did not measure the same thing, and nothing is written."""
    accuracy = dict(written["accuracy"], **{"trbert-2.0": written["accuracy"]["trbert-2.0"] + 1.0})
    with pytest.raises(RuntimeError, match="trbert-2.0 scores"):
        trbert_suite.write(written["names"], {"models": written["models"], "protocol": {"rounds": 5, "threads": 1}},
                           written["st"], written["ratios"], written["details"], "d",
                           {"accuracy": accuracy, "pairs": []})
