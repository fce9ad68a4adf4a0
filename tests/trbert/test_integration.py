"""The TR-BERT pipeline through the stock fairseq tools on a tiny converted encoder and tiny data:
fine-tune -> residual scores -> policy-only RL -> joint training with an online teacher -> validate."""
import json

import pytest
import torch

from tests.common.encoder_fixtures import build_tiny_encoder
from user_dir.trbert.report import parse_validate_log

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def enc(tmp_path_factory):
    # 4 layers, so the default reduction points are 1 and 2 and the score layer is h_3
    return build_tiny_encoder(tmp_path_factory.mktemp("trbert_tiny"), layers=4)


def _trbert_args(enc, save_dir, init_from, stage, max_update, extra=()):
    return [
        *enc.task_args(), *enc.model_args("trbert_roberta_minilm"),
        "--criterion", "trbert", "--trbert-stage", stage, "--finetune-from-model", str(init_from),
        "--optimizer", "adam", "--lr", "1e-3", "--lr-scheduler", "fixed", "--batch-size", "16",
        "--max-update", str(max_update), "--required-batch-size-multiple", "1", "--num-workers", "0",
        "--no-epoch-checkpoints", "--save-dir", str(save_dir), "--cpu", "--seed", "1",
        "--log-format", "simple", "--log-interval", "1", *extra,
    ]


def _params(path):
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def test_pipeline_through_fairseq_cli(enc, tmp_path, cli):
    ft = tmp_path / "ft"
    cli(["fairseq-train", *enc.train_args(ft, max_update=12)])
    finetuned = ft / "checkpoint_best.pt"

    scores = tmp_path / "scores.pt"
    cli(["python", "-m", "user_dir.trbert.residual_scores", *enc.task_args(), "--path", finetuned,
         "--valid-subset", "train", "--batch-size", "16", "--scores-out", scores, "--cpu"])
    table = torch.load(scores)
    assert table["reduce_layers"] == [1, 2] and table["score_layer"] == 3
    assert sorted(table["scores"]) == list(range(96))  # every training example, keyed by id

    rl = tmp_path / "rl"
    out = cli(["fairseq-train", *_trbert_args(enc, rl, finetuned, "rl", 4, [
        "--trbert-rollouts", "4", "--alpha", "1.0", "--guide-rate", "0.5", "--trbert-scores", scores])]).stdout
    assert "reward=" in out and "guided=1," in out and "guided=0," in out  # guided: first half
    assert "rel_flops" in out and "kept_l1" in out  # validation at the end of training
    before, after = _params(finetuned), _params(rl / "checkpoint_last.pt")
    trained = {k for k in after if k not in before or not torch.equal(before[k], after[k])}
    assert trained and all(".policies." in k for k in trained)

    joint = tmp_path / "joint"
    cli(["fairseq-train", *_trbert_args(enc, joint, rl / "checkpoint_last.pt", "joint", 3, [
        "--trbert-rollouts", "4", "--alpha", "1.0", "--trbert-kd", "--teacher-path", finetuned])])
    after_joint = _params(joint / "checkpoint_last.pt")
    key = "encoder.sentence_encoder.layers.3.fc1.weight"
    assert not torch.equal(after_joint[key], after[key])  # the encoder trains now

    # fairseq-validate scores with the checkpoint's own criterion (trbert); --criterion only
    # satisfies sentence_prediction's config, which refers to criterion fields
    out = cli(["fairseq-validate", str(enc.data_dir), "--user-dir", "user_dir", "--task", "sentence_prediction",
               "--criterion", "sentence_prediction", "--path", joint / "checkpoint_last.pt", "--valid-subset", "valid,test", "--batch-size", "8", "--required-batch-size-multiple", "1",
               "--num-workers", "0", "--cpu", "--log-format", "simple"]).stdout
    metrics = parse_validate_log(out)
    for split in ("valid", "test"):
        m = metrics[split]
        assert 0 <= m["accuracy"] <= 100
        assert 0 < m["rel_flops"] <= 1.0 + 1e-6 and 0 < m["kept_l2"] <= m["kept_l1"] <= 1

    # the bench's harness (in-process, batch 32 for quality) agrees with fairseq-validate (batch 8)
    result = tmp_path / "measure.json"
    cli(["python", "-m", "user_dir.bench.compare", enc.data_dir, "--model", f"base={finetuned}",
         "--model", f"trbert={joint / 'checkpoint_last.pt'}", "--splits", "test", "--batch-sizes", "1,16",
         "--timing-limit", "1:4,16:4", "--rounds", "1", "--threads", "1", "--out", result])
    models = json.loads(result.read_text())["models"]
    base, trbert = models["base"], models["trbert"]
    assert base["test"]["relative_flops"] == 1.0 and base["b1"]["speedup"]["median"] == 1.0
    assert trbert["test"]["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=0.051)  # logged with 1 decimal
    assert trbert["test"]["relative_flops"] == pytest.approx(metrics["test"]["rel_flops"], abs=1e-3)
    assert trbert["test"]["kept_l1"] == pytest.approx(metrics["test"]["kept_l1"], abs=1e-3)
    assert trbert["b1"]["throughput"]["median"] > 0 and trbert["b16"]["throughput"]["median"] > 0


def test_bad_reduction_layer_fails_before_training(enc, tmp_path, cli):
    proc = cli(["fairseq-train", *_trbert_args(enc, tmp_path / "x", enc.checkpoint, "joint", 1,
                                               ["--trbert-reduce-layers", "1,4"])], check=False)
    assert proc.returncode != 0
    assert "--trbert-reduce-layers 1,4: layer(s) [4] out of range (allowed: distinct integers in 1..3" in proc.stdout
    assert "| epoch 001" not in proc.stdout


def _stage(enc, script, save_dir, **env):
    """argv running scripts/trbert/SCRIPT with the tiny model's shape and small settings."""
    shape = " ".join(enc.model_args()[2:])  # the dimension flags (not --arch)
    base = dict(DATA=enc.data_dir, SAVE_DIR=save_dir, MAX_POSITIONS=enc.shape["positions"], BATCH=16,
                UPDATE_FREQ=1, EPOCHS=1, LR="1e-3", THREADS=1, VALIDATE=0, FINETUNED=enc.checkpoint,
                INIT_FROM=enc.checkpoint, GUIDE_RATE=0, ROLLOUTS=2, EXTRA_ARGS=f"{shape} --cpu --log-interval 1")
    base.update(env)
    return ["env", *[f"{k}={v}" for k, v in base.items()], "bash", f"scripts/trbert/{script}"]


def test_an_interrupted_stage_resumes_from_its_last_checkpoint(enc, tmp_path, cli):
    """A rerun into a folder holding checkpoint_last.pt continues (optimizer, schedule, epoch) instead
    of starting again from INIT_FROM; RESUME=0 starts over."""
    save = tmp_path / "rl"
    first_run = cli(_stage(enc, "rl.sh", save))
    assert "resuming from" not in first_run.stdout and (save / "train_seconds").is_file()
    first = torch.load(save / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    assert first["extra_state"]["train_iterator"]["epoch"] == 2  # fairseq stores the next epoch
    # as if a 2-epoch run had been stopped after its first epoch
    again = cli(_stage(enc, "rl.sh", save, EPOCHS=2))
    assert "trbert-rl: resuming from" in again.stdout and "begin training epoch 2" in again.stdout
    assert "begin training epoch 1" not in again.stdout
    second = torch.load(save / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    assert second["optimizer_history"][-1]["num_updates"] == 2 * first["optimizer_history"][-1]["num_updates"]
    assert "begin training epoch 1" in (save / "train.log").read_text()  # the first sitting's log is kept
    fresh = cli(_stage(enc, "rl.sh", save, RESUME=0))
    assert "resuming from" not in fresh.stdout and "begin training epoch 1" in fresh.stdout
    assert "begin training epoch 2" not in (save / "train.log").read_text()  # a fresh log
