"""fairseq-kprune end to end on a tiny converted encoder, and its errors on bad input.

Pipeline: tiny BERT -> converted fairseq checkpoint -> fairseq-train (fine-tune) -> fairseq-kprune
-> fairseq-validate on the pruned checkpoint -> LTP soft stage (fairseq-train --arch ltp_roberta)
restored from it -> fairseq-validate on that.
"""
import json
import os
import re
import shutil
import sys

import pytest
import torch

from tests.common.encoder_fixtures import REPO, tiny_encoder  # noqa: F401  (pytest fixture)
from tests.conftest import run_cli
from user_dir.kprune.checkpoint import KpruneInputError
from user_dir.kprune.cli import get_parser, main

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def finetuned(tiny_encoder, tmp_path_factory):
    """A briefly fine-tuned tiny classifier, trained once per test session.

    pytest-xdist spreads this module's tests over workers; they share one checkpoint through the
    session's common temp folder (under a file lock) instead of each running fairseq-train.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        from filelock import FileLock

        shared = tmp_path_factory.getbasetemp().parent  # this session's folder, common to workers
        save = shared / "kprune_finetuned"
        with FileLock(str(shared / "kprune_finetuned.lock")):
            if not (save / "checkpoint_best.pt").exists():
                run_cli(["fairseq-train", *tiny_encoder.train_args(save, max_update=30)])
        return save / "checkpoint_best.pt"
    save = tmp_path_factory.mktemp("kprune_finetuned")
    run_cli(["fairseq-train", *tiny_encoder.train_args(save, max_update=30)])
    return save / "checkpoint_best.pt"


def _accuracy(output: str, subset: str = "test") -> float:
    match = re.search(rf"valid on '{subset}' subset .*?accuracy ([0-9.]+)", output)
    assert match, output[-3000:]
    return float(match.group(1))


def _model_cfg(state) -> dict:
    """cfg.model of a checkpoint (fairseq-train stores a Namespace for add_args-style models)."""
    section = state["cfg"]["model"]
    return section if isinstance(section, dict) else vars(section)


def _kprune_args(enc, path, save_dir, *extra, data=None):
    return [str(data or enc.data_dir), "--user-dir", str(REPO / "user_dir"), "--path", str(path),
            "--save-dir", str(save_dir), "--cpu", *extra]


def test_prune_then_validate_then_ltp(tiny_encoder, finetuned, tmp_path):
    enc = tiny_encoder
    out = tmp_path / "pruned"
    proc = run_cli(["fairseq-kprune", *_kprune_args(enc, finetuned, out, "--constraint", "0.5",
                                                     "--sublayerwise-tuning")])
    log = proc.stdout
    # one log line per sublayer (2L), and no progress bar: stderr is not a terminal here
    assert len(re.findall(r"\| INFO \| user_dir\.kprune \| layer \d", log)) == 4, log[-3000:]
    assert "kprune: " not in log
    assert re.search(r"layer 1 ffn\s*: kept\s+\d+/64\s+neurons \(pruned\s+\d+\)", log)
    assert "pruning time (the 4-sublayer loop)" in log

    ckpt = out / "checkpoint_pruned.pt"
    state = torch.load(ckpt, weights_only=True)  # plain tensors and containers, no pickled module
    info = json.loads((out / "kprune_log.json").read_text())
    assert info["flops_after"] <= 0.5 * info["flops_before"]
    assert _model_cfg(state)["encoder_layer_heads"] == ",".join(map(str, info["heads_after"]))
    assert _model_cfg(state)["encoder_layer_ffn_dims"] == ",".join(map(str, info["ffn_after"]))
    assert sum(info["heads_after"]) + sum(info["ffn_after"]) < 2 * 4 + 2 * 64  # really smaller
    q = state["model"]["encoder.sentence_encoder.layers.0.self_attn.q_proj.weight"]
    assert q.shape[0] == 8 * info["heads_after"][0]
    assert info["masked_vs_sliced_max_abs_diff"] < 1e-4
    # n of the FLOPs model is our data's own average length (as the data helper counts it)
    from user_dir.common.data_stats import average_length
    assert info["avg_length"] == pytest.approx(average_length(enc.data_dir, "valid"))
    fv = info["fvcore_check"]
    assert abs(fv["fvcore_after"] - fv["analytic_after"]) <= 0.05 * fv["analytic_after"]

    # the stock tool loads and scores it
    acc = _accuracy(run_cli(["fairseq-validate", *enc.validate_args(ckpt)]).stdout)
    assert 0.0 <= acc <= 100.0

    # LTP's soft stage trains from it: structured + token pruning compose
    ltp_dir = tmp_path / "ltp"
    run_cli(["fairseq-train", *enc.task_args(), *enc.model_args(arch="ltp_roberta_minilm"),
             "--prune-mode", "absolute_threshold", "--masking-mode", "soft",
             "--final-token-threshold", "0.01", "--temperature", "1e-3", "--threshold-lr", "1e-3",
             "--criterion", "ltp_sentence_prediction", "--lambda-threshold", "0.1",
             "--restore-file", str(ckpt), "--reset-optimizer", "--reset-dataloader", "--reset-meters",
             "--reset-lr-scheduler", "--optimizer", "ltp_adam", "--lr", "1e-4", "--lr-scheduler", "fixed",
             "--batch-size", "16", "--max-update", "3", "--required-batch-size-multiple", "1",
             "--num-workers", "0", "--no-epoch-checkpoints", "--save-dir", str(ltp_dir), "--cpu",
             "--log-format", "simple"])
    ltp_state = torch.load(ltp_dir / "checkpoint_last.pt", weights_only=True)
    assert _model_cfg(ltp_state)["encoder_layer_heads"] == _model_cfg(state)["encoder_layer_heads"]
    assert "encoder.sentence_encoder.ltp_threshold_delta" in ltp_state["model"]
    out_ltp = run_cli(["fairseq-validate", *enc.validate_args(
        ltp_dir / "checkpoint_last.pt", extra=["--criterion", "ltp_sentence_prediction"])]).stdout
    assert "rel_flops" in out_ltp
    _accuracy(out_ltp)


def test_module_entry_point_and_constraint_error_message():
    proc = run_cli([sys.executable, "-m", "user_dir.kprune", "data", "--path", "x.pt",
                    "--constraint", "1.5"], check=False)
    assert proc.returncode != 0
    assert "argument --constraint: must be in (0, 1)" in proc.stdout


@pytest.mark.parametrize("value", ["0", "1", "-0.2", "1.5", "half"])
def test_constraint_outside_the_open_interval(value, capsys):
    with pytest.raises(SystemExit):
        get_parser().parse_args(["data", "--path", "x.pt", "--constraint", value])
    assert "--constraint" in capsys.readouterr().err


def _run(argv):
    main(get_parser().parse_args(argv))


def _edit_checkpoint(src, dst, edit):
    state = torch.load(src, weights_only=True)
    edit(state)
    torch.save(state, dst)
    return dst


def test_wrong_kinds_of_checkpoint(tiny_encoder, finetuned, tmp_path):
    enc = tiny_encoder
    cases = {}
    not_ckpt = tmp_path / "notes.pt"
    not_ckpt.write_text("not a checkpoint")
    cases[not_ckpt] = "is not a readable fairseq checkpoint"
    cases[enc.checkpoint] = "was trained for task 'masked_lm'"  # pretrained, not fine-tuned

    def translation(state):  # stock roberta_* is accepted (tests/common/test_stock_roberta.py)
        _model_cfg(state)["_name"] = _model_cfg(state)["arch"] = "transformer_iwslt_de_en"
    cases[_edit_checkpoint(finetuned, tmp_path / "mt.pt", translation)] = \
        "holds a 'transformer_iwslt_de_en' model; fairseq-kprune prunes a fine-tuned stock fairseq RoBERTa"

    def ltp(state):
        _model_cfg(state)["_name"] = _model_cfg(state)["arch"] = "ltp_roberta_minilm"
    cases[_edit_checkpoint(finetuned, tmp_path / "ltp.pt", ltp)] = "model with token pruning"

    def headless(state):
        for key in [k for k in state["model"] if k.startswith("classification_heads.")]:
            del state["model"][key]
    cases[_edit_checkpoint(finetuned, tmp_path / "headless.pt", headless)] = "no fine-tuned classification head"
    cases[tmp_path / "missing.pt"] = "no such checkpoint file"

    for path, message in cases.items():
        with pytest.raises(KpruneInputError, match=re.escape(message)) as err:
            _run(_kprune_args(enc, path, tmp_path / "out", "--constraint", "0.5"))
        assert str(err.value).startswith("--path:")
    assert not (tmp_path / "out").exists()


def test_data_without_labels_or_with_other_labels(tiny_encoder, finetuned, tmp_path):
    enc = tiny_encoder
    no_labels = tmp_path / "no-labels"
    shutil.copytree(enc.data_dir / "input0", no_labels / "input0")
    with pytest.raises(KpruneInputError, match=r"^data: .*no-labels has no label/ folder"):
        _run(_kprune_args(enc, finetuned, tmp_path / "out", "--constraint", "0.5", data=no_labels))
    three = tmp_path / "three-labels"
    shutil.copytree(enc.data_dir, three)
    (three / "label" / "dict.txt").write_text("0 10\n1 10\n2 10\n")
    with pytest.raises(KpruneInputError, match=r"^--path: .* predicts 2 classes, but .*three-labels holds "
                                               r"3 classes \(0, 1, 2\)"):
        _run(_kprune_args(enc, finetuned, tmp_path / "out", "--constraint", "0.5", data=three))
    assert not (tmp_path / "out").exists()


def _empty_split(data_dir, split):
    from fairseq.data import indexed_dataset

    for key in ("input0", "label"):
        prefix = str(data_dir / key / split)
        builder = indexed_dataset.make_builder(prefix + ".bin", impl="mmap", vocab_size=100)
        builder.finalize(prefix + ".idx")


def test_empty_or_missing_data(tiny_encoder, finetuned, tmp_path):
    enc = tiny_encoder
    data = tmp_path / "data"
    shutil.copytree(enc.data_dir, data)
    _empty_split(data, "train")  # as fairseq-preprocess leaves an empty text file
    argv = [str(data), "--path", str(finetuned), "--save-dir", str(tmp_path / "out"), "--cpu",
            "--constraint", "0.5"]
    with pytest.raises(KpruneInputError, match=r"^data: the 'train' split in .* is empty \(--train-subset\)"):
        _run(argv)
    with pytest.raises(KpruneInputError, match=r"^data: no 'dev' split .*--train-subset"):
        _run(argv + ["--train-subset", "dev"])
    with pytest.raises(KpruneInputError, match=r"^data: no such directory"):
        _run([str(tmp_path / "nowhere")] + argv[1:])
    with pytest.raises(KpruneInputError, match=r"^data: .* is not a sentence_prediction data directory"):
        _run([str(tmp_path)] + argv[1:])


def test_high_constraint_warns_with_what_is_left(tiny_encoder, finetuned, tmp_path, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="fairseq_cli.kprune"):
        _run(_kprune_args(tiny_encoder, finetuned, tmp_path / "out", "--constraint", "0.9",
                          "--num-tokens", "2000", "--no-progress-bar"))
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("--constraint 0.9: only ") and "attention heads" in m and "FFN neurons are left" in m
               for m in warning), warning
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fairseq_cli.kprune"):
        _run(_kprune_args(tiny_encoder, finetuned, tmp_path / "out2", "--constraint", "0.5",
                          "--num-tokens", "2000", "--no-progress-bar"))
    assert not [r for r in caplog.records if "are left" in r.getMessage()]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_checkpoint_trained_in_half_precision(tiny_encoder, finetuned, tmp_path, dtype):
    """A run under --fp16/--bf16 saves its weights in half precision. Kprune measures in fp32
    whatever the checkpoint holds (its squared-gradient sums and least-squares fits need the range
    and mantissa), so it prunes exactly as it prunes the same weights stored in fp32, and writes an
    fp32 checkpoint."""
    def cast(to):
        def edit(state):
            for key, value in state["model"].items():
                if value.is_floating_point():
                    state["model"][key] = value.to(dtype).to(to)
        return edit

    half = _edit_checkpoint(finetuned, tmp_path / "half.pt", cast(dtype))
    upcast = _edit_checkpoint(finetuned, tmp_path / "upcast.pt", cast(torch.float32))
    results = []
    for path in (half, upcast):
        out = tmp_path / path.stem
        _run(_kprune_args(tiny_encoder, path, out, "--constraint", "0.5", "--num-tokens", "2000",
                          "--sublayerwise-tuning", "--no-progress-bar"))
        pruned = torch.load(out / "checkpoint_pruned.pt", weights_only=True)["model"]
        assert all(v.dtype == torch.float32 for v in pruned.values() if v.is_floating_point())
        results.append(pruned)
    assert results[0].keys() == results[1].keys()
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])  # same units, same fits
