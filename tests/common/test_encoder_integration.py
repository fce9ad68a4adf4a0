"""End to end with the stock fairseq tools on tiny data: a tiny random BERT written by the test is
converted, fine-tuned with fairseq-train --task sentence_prediction and scored by fairseq-validate;
and the same through scripts/models/finetune-baseline.sh."""
import json
import re

import pytest
import torch

import user_dir  # noqa: F401  (allowlists what fairseq checkpoints pickle)

from tests.common.encoder_fixtures import REPO, tiny_encoder  # noqa: F401


def accuracy(output, subset):
    m = re.search(rf"valid on '{subset}' subset .*?accuracy ([0-9.]+)", output)
    assert m, output[-3000:]
    return float(m.group(1))


@pytest.mark.integration
def test_convert_train_validate(tiny_encoder, tmp_path, cli):  # noqa: F811
    # the converter's command line on the fixture's BERT
    cli(["python", REPO / "scripts/models/convert_bert_to_fairseq.py", "--bert-dir", tiny_encoder.bert_dir,
         "--out-dir", tmp_path / "model"])
    assert (tmp_path / "model/dict.txt").read_text() == (tiny_encoder.model_dir / "dict.txt").read_text()
    save = tmp_path / "ckpt"
    out = cli(["fairseq-train", *tiny_encoder.train_args(save, max_update=6, restore=tmp_path / "model/model.pt")])
    assert "Loaded checkpoint" in out.stdout and "num_updates=6" in out.stdout.replace(" ", "")
    assert (save / "checkpoint_best.pt").is_file()
    out = cli(["fairseq-validate", *tiny_encoder.validate_args(save / "checkpoint_best.pt", subset="valid,test",
                                                              batch_size=10)])
    assert 0.0 <= accuracy(out.stdout, "test") <= 100.0
    assert 0.0 <= accuracy(out.stdout, "valid") <= 100.0
    # every example is scored, including the last partial batch (32 = 3 x 10 + 2)
    assert re.search(r"valid on 'test' subset .*\| bsz 32\b", out.stdout), out.stdout[-2000:]


@pytest.mark.integration
def test_finetune_baseline_script(tiny_encoder, tmp_path, cli):  # noqa: F811
    s = tiny_encoder.shape
    dims = (f"--encoder-layers {s['layers']} --encoder-embed-dim {s['dim']} --encoder-ffn-embed-dim "
            f"{s['ffn']} --encoder-attention-heads {s['heads']} --cpu --log-interval 1")
    out = cli(["env", f"DATA={tiny_encoder.data_dir}", f"SAVE_DIR={tmp_path / 'ft'}",
               f"RESTORE={tiny_encoder.checkpoint}", "LR=1e-3", "BATCH=32", "EPOCHS=2", "THREADS=1",
               f"MAX_POSITIONS={s['positions']}", f"EXTRA_ARGS={dims}",
               "bash", REPO / "scripts/models/finetune-baseline.sh"])
    result = json.loads((tmp_path / "ft/result.json").read_text())
    assert set(result) == {"dev_accuracy", "test_accuracy", "dev_loss", "test_loss", "train_seconds"}
    assert result["test_accuracy"] is not None and result["dev_accuracy"] is not None
    # 96 examples / batch 32 = 3 updates per epoch, 2 epochs, 6% warm-up
    assert "6 updates (2 epochs)" in out.stdout


@pytest.mark.integration
def test_finetune_baseline_resumes_from_checkpoint_last(tiny_encoder, tmp_path, cli):  # noqa: F811
    s = tiny_encoder.shape
    dims = (f"--encoder-layers {s['layers']} --encoder-embed-dim {s['dim']} --encoder-ffn-embed-dim "
            f"{s['ffn']} --encoder-attention-heads {s['heads']} --cpu --log-interval 1")
    env = ["env", f"DATA={tiny_encoder.data_dir}", f"SAVE_DIR={tmp_path / 'ft'}",
           f"RESTORE={tiny_encoder.checkpoint}", "LR=1e-3", "BATCH=32", "THREADS=1",
           f"MAX_POSITIONS={s['positions']}", f"EXTRA_ARGS={dims}"]
    first = cli([*env, "EPOCHS=1", "bash", REPO / "scripts/models/finetune-baseline.sh"])
    assert "resuming" not in first.stdout
    # a longer run in the same folder continues from the first one's last checkpoint
    second = cli([*env, "EPOCHS=2", "bash", REPO / "scripts/models/finetune-baseline.sh"])
    assert f"resuming from {tmp_path / 'ft'}/checkpoint_last.pt" in second.stdout
    state = torch.load(tmp_path / "ft/checkpoint_last.pt", weights_only=True)
    # 96 examples / batch 32: 3 updates in epoch 1 (first run) + 3 in epoch 2 (second run)
    assert state["optimizer_history"][-1]["num_updates"] == 6
    assert state["extra_state"]["train_iterator"]["epoch"] == 3  # fairseq records the next epoch
    train_log = (tmp_path / "ft/train.log").read_text()
    assert "epoch 001" in train_log and "epoch 002" in train_log  # appended, not overwritten
