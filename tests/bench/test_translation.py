"""Translation models on the harness (user_dir/bench/translation.py): BLEU equal to stock
fairseq-generate's for an srp and a stock transformer checkpoint, FLOPs of both kinds, the measurement
and its results rows, and the SRP suite's reporting (scripts/bench/srp.py) on tiny data."""
import json
import re
import sys

import pytest
import torch

from tests.conftest import REPO, USER_DIR, run_cli
from tests.srp.synthetic import make_corpus
from user_dir.bench import results, timing, translation


@pytest.fixture(scope="module")
def bpe_corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("tr-corpus"), bpe=True)


def _train(corpus, save, *model_args):
    return run_cli(["fairseq-train", corpus, "--user-dir", USER_DIR, *model_args, "--share-decoder-input-output-embed",
                    "--adam-betas", "(0.9,0.98)", "--lr", "5e-3", "--max-tokens", 200, "--dropout", 0.0,
                    "--max-epoch", 12, "--cpu", "--save-dir", save, "--no-progress-bar", "--log-interval", 5,
                    "--seed", 1, "--num-workers", 0, "--no-epoch-checkpoints"]).stdout


@pytest.fixture(scope="module")
def checkpoints(bpe_corpus, tmp_path_factory):
    """A tiny srp model and a tiny stock fairseq transformer, briefly trained on the BPE corpus;
    also the srp run's log."""
    root = tmp_path_factory.mktemp("tr-models")
    log = _train(bpe_corpus, root / "srp", "--task", "srp_translation", "--arch", "srp_tiny", "--optimizer", "srp_adam",
                 "--criterion", "srp", "--label-smoothing", 0.1)
    (root / "srp" / "train.log").write_text(log)
    _train(bpe_corpus, root / "transformer", "--task", "translation", "--arch", "transformer",
           "--encoder-layers", 1, "--decoder-layers", 1, "--encoder-embed-dim", 32, "--decoder-embed-dim", 32,
           "--encoder-ffn-embed-dim", 64, "--decoder-ffn-embed-dim", 64, "--encoder-attention-heads", 2,
           "--decoder-attention-heads", 2, "--optimizer", "adam", "--criterion", "label_smoothed_cross_entropy",
           "--label-smoothing", 0.1)
    return {"srp": root / "srp" / "checkpoint_last.pt", "transformer": root / "transformer" / "checkpoint_last.pt"}


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["srp", "transformer"])
def test_bleu_equals_stock_fairseq_generate(bpe_corpus, checkpoints, kind):
    path = checkpoints[kind]
    out = run_cli(["fairseq-generate", bpe_corpus, "--user-dir", USER_DIR, "--path", path, "--gen-subset", "test",
                   "--beam", 5, "--batch-size", 128, "--remove-bpe", "--scoring", "sacrebleu", "--cpu"]).stdout
    stock_score = re.search(r"Generate test with beam=5: (BLEU = .*)$", out, flags=re.M).group(1).strip()
    stock_hyps = {int(i): h for i, h in re.findall(r"^D-(\d+)\t[^\t]*\t(.*)$", out, flags=re.M)}

    tm = translation.load(str(path), str(bpe_corpus))
    samples = translation.batches(tm.task, "test", 128, max_positions=translation.max_positions(tm.task, [tm]))
    vocab = len(tm.task.target_dictionary)
    ours = translation.bleu(tm, samples)
    assert ours["bleu_string"] == stock_score
    assert ours["hypotheses"] == [stock_hyps[k] for k in sorted(stock_hyps)]
    assert ours["sentences"] == 24
    assert ours["bleu"] > 0.5  # the models learnt something: the comparison is not between empty outputs
    # BPE was removed: the corpus writes two-digit words as two subwords
    text = " ".join(ours["hypotheses"])
    assert "@@" not in text and re.search(r"\bz\d\d\b", text), text[:300]
    assert len(tm.task.target_dictionary) == vocab  # scoring added no de-BPE'd words to the shared dictionary


def test_flops_of_srp_and_stock_transformer_agree():
    """The counting reads the same module names in both kinds of model."""
    import numpy as np

    from tests.srp.helpers import build, randomize
    from user_dir.srp.stock_transformer import stock_transformer_like

    model, task = build(share_decoder_input_output_embed=True)
    randomize(model)
    stock = stock_transformer_like(model, task, max_source_positions=64, max_target_positions=64)
    src, tgt = np.array([5, 9, 9, 12]), np.array([4, 8, 11, 12])
    ours = translation.flops(model, src, tgt)
    assert ours == translation.flops(stock, src, tgt) > 0
    from user_dir.srp.counting import flops_per_sentence
    assert ours == sum(flops_per_sentence(model, s, t)["total"] for s, t in zip(src, tgt))


@pytest.mark.integration
def test_measure_rows_and_the_srp_suite_report(bpe_corpus, checkpoints, tmp_path, monkeypatch):
    """A pruned model against its base on the harness (real numbers on tiny models), the results
    rows, and scripts/bench/srp.py's report, paper-size and overhead steps on tiny models."""
    from user_dir.srp import magnitude
    from user_dir.bench.steps import Steps

    pruned = tmp_path / "pruned.pt"
    magnitude.prune_checkpoint(str(checkpoints["srp"]), 0.5, str(pruned), str(bpe_corpus))
    names = {"base": checkpoints["srp"], "srp-0.5": pruned, "magnitude-0.5": pruned}
    models = translation.load_models([f"{k}={v}" for k, v in names.items()], str(bpe_corpus))
    protocol = timing.Protocol(threads=1, rounds=1, min_seconds=0.0)
    task = models["base"].task
    # each batch size gets its own batches (fairseq's iterator cache would hand back the first ones)
    assert [len(translation.batches(task, "test", b)) for b in (128, 1, 8)] == [1, 24, 3]
    measured = translation.measure(models, "test", [1, 32], protocol, {1: 4, 32: 24})
    base = measured["base"]
    assert base["relative_flops"] == 1.0 and base["b1"]["examples_per_pass"] == 4
    assert base["b32"]["examples_per_pass"] == 24
    assert 0.2 < measured["srp-0.5"]["relative_flops"] < 0.8
    assert measured["srp-0.5"]["parameters"] < base["parameters"]
    row = {"model": "x", "family": "method", "series": "s",
           **translation.row_fields(measured, "srp-0.5", "test", [1, 32])}
    results.check_rows([row])
    # forced length: every hypothesis N tokens + eos
    forced = translation.bleu(models["base"], translation.batches(models["base"].task, "test", 8), forced_len=6)
    assert forced["tokens_per_sentence"] == 7

    sys.path.insert(0, str(REPO / "scripts" / "bench"))
    try:
        import common
        import srp as suite
    finally:
        sys.path.pop(0)
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(suite, "RATES", ["0.5"])
    monkeypatch.setattr(suite, "PAPER_ARCH", "srp_tiny")
    monkeypatch.setattr(suite, "PAPER_LIMIT", "1:2,32:8")
    monkeypatch.setattr(suite, "OVERHEAD_LIMIT", "1:2,32:8")
    monkeypatch.setattr(suite, "FORCED_LEN", 5)
    monkeypatch.setattr(suite, "TIMING_ROUNDS", 1)
    (tmp_path / "paper").mkdir()
    (tmp_path / "overhead").mkdir()
    suite.paper_size(tmp_path / "paper", str(bpe_corpus), str(checkpoints["srp"]))
    suite.overhead(tmp_path / "overhead", str(bpe_corpus), str(checkpoints["srp"]))
    paper = json.loads((tmp_path / "paper" / "paper.json").read_text())
    over = json.loads((tmp_path / "overhead" / "overhead.json").read_text())
    assert paper["models"]["pruned"]["relative_flops"] < 0.8 and paper["removed_groups"]["fc"] > 0
    assert over["identical_hypotheses"] == over["sentences"] == 24
    assert over["bleu"]["srp"] == over["bleu"]["transformer"]

    (tmp_path / "sig").mkdir()
    suite.significance(tmp_path / "sig", str(bpe_corpus), [f"{k}={v}" for k, v in names.items()], samples=50)
    sig = json.loads((tmp_path / "sig" / "significance.json").read_text())
    assert sig["sentences"] == 24 and sig["bleu"]["base"] == measured["base"]["test"]["bleu"]
    assert sig["vs_base"]["base"]["bleu"] == pytest.approx(measured["base"]["test"]["bleu"], abs=1e-3)
    assert sig["vs_magnitude"]["0.5"]["srp-0.5"]["p_value"] == 1.0  # the same checkpoint under both names

    curve = suite.learning_curve(checkpoints["srp"].parent / "train.log")
    assert [e["epoch"] for e in curve] == list(range(1, 13))
    assert all(e["train_loss"] is not None and e["valid_loss"] is not None and e["updates"] > 0 for e in curve)
    assert curve[-1]["train_loss"] < curve[0]["train_loss"]

    suite.write(Steps(tmp_path / "steps", REPO, log=lambda _m: None), str(bpe_corpus),
                {"protocol": protocol.as_dict(), "models": measured}, curve, paper, over, sig=sig)
    out = json.loads((tmp_path / "results" / "srp.json").read_text())
    results.check_rows(out["rows"])
    assert [r["family"] for r in out["rows"]] == ["reference", "method", "baseline"]
    assert out["base_learning_curve"] == curve
    md = (tmp_path / "results" / "srp.md").read_text()
    assert "## Targets" in md and "learning curve" in md and (tmp_path / "results" / "srp.png").is_file()
    assert "| SRP vs magnitude, rate 0.5 |" in md and out["significance"] == sig
    assert out["targets"][1]["p_value_vs_base"] == sig["vs_base"]["srp-0.5"]["p_value"]
    assert {t["target"].split(" at ")[0] for t in out["targets"]} >= {"<= 1.0 BLEU drop", "base >= 10 test BLEU"}


def test_cli_times_with_forced_lengths_and_without_bleu(bpe_corpus, checkpoints, tmp_path):
    """What make demo's SRP step runs: both models in one process, every hypothesis forced to the
    same length, no BLEU pass."""
    out = tmp_path / "m.json"
    translation.main([str(bpe_corpus), "--model", f"base={checkpoints['srp']}", "--model",
                      f"again={checkpoints['srp']}", "--batch-sizes", "1,8", "--timing-limit", "1:3,8:8",
                      "--rounds", "1", "--forced-len", "4", "--no-bleu", "--out", str(out)])
    measured = json.loads(out.read_text())
    assert measured["forced_len"] == 4
    assert all("test" not in m for m in measured["models"].values())  # no BLEU pass
    assert measured["models"]["again"]["b1"]["examples_per_pass"] == 3
    with pytest.raises(SystemExit):
        translation.main([str(bpe_corpus), "--model", f"base={checkpoints['srp']}", "--forced-len", "0"])


@pytest.mark.integration
def test_compress_report_on_translation_data(bpe_corpus, checkpoints, tmp_path):
    """fairseq-compress-report recognises translation data and measures SRP-kind models by this
    harness: BLEU, relative FLOPs and speed-ups of a pruned model against its base in one table."""
    from user_dir.srp import magnitude

    pruned = tmp_path / "pruned.pt"
    magnitude.prune_checkpoint(str(checkpoints["srp"]), 0.5, str(pruned), str(bpe_corpus))
    out = run_cli(["fairseq-compress-report", bpe_corpus, "--path", f"base={checkpoints['srp']}",
                   "--path", f"pruned={pruned}", "--subsets", "test", "--batch-sizes", "1,8", "--max-examples", 4,
                   "--rounds", 1, "--forced-len", 5, "--json", tmp_path / "r.json"]).stdout
    head = next(line for line in out.splitlines() if line.startswith("model"))
    assert "BLEU test" in head and "speed-up b8" in head
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert [r["model"] for r in rows] == ["base", "pruned"]
    assert rows[0]["relative_flops"] == 1.0 and 0.2 < rows[1]["relative_flops"] < 0.8
    assert rows[0]["quality"] > 0.5 and rows[1]["parameters"] < rows[0]["parameters"]
    proc = run_cli(["fairseq-compress-report", bpe_corpus, "--path", str(checkpoints["srp"]), "--subsets", "dev"],
                   check=False)
    assert proc.returncode == 2 and "--subsets: no split 'dev'" in proc.stdout
