"""An LTP soft stage killed with SIGKILL in the middle of an epoch leaves its last checkpoint intact,
and the rerun of the same script resumes from it to exactly the thresholds (and weights) of a run
that was never interrupted."""
import pytest
import torch

from tests.common.interrupt import partial_files, sigkill_env

pytestmark = pytest.mark.integration
DELTA = "encoder.sentence_encoder.ltp_threshold_delta"


def _soft(enc, restore, save_dir, **env):
    shape = " ".join(enc.model_args()[2:])  # the dimension flags (not --arch)
    base = dict(DATA=enc.data_dir, SAVE_DIR=save_dir, RESTORE=restore, MAX_POSITIONS=enc.shape["positions"],
                BATCH=16, EPOCHS=1, LR="1e-3", THRESHOLD_LR="2e-3", LAMBDA="0.5", THREADS=1, VALIDATE=0,
                EXTRA_ARGS=f"{shape} --log-interval 1 --save-interval-updates 2 --disable-validation")
    base.update(env)
    return ["env", *[f"{k}={v}" for k, v in base.items()], "bash", "scripts/ltp/soft.sh"]


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def test_killed_mid_epoch_then_resumed_equals_uninterrupted(tiny_encoder, tiny_classifier, tmp_path, cli):
    enc, finetuned = tiny_encoder, tiny_classifier  # 96 training examples: 6 updates of 16
    cli(_soft(enc, finetuned, tmp_path / "whole"))
    whole = _state(tmp_path / "whole" / "checkpoint_last.pt")
    assert whole["optimizer_history"][-1]["num_updates"] == 6

    split = tmp_path / "split"
    kill = sigkill_env("fairseq-train", "fairseq.trainer:Trainer.train_step", 4)  # before update 4
    killed = cli(["env", *[f"{k}={v}" for k, v in kill.items()], *_soft(enc, finetuned, split)], check=False)
    assert killed.returncode != 0
    assert not partial_files(split)
    mid = _state(split / "checkpoint_last.pt")  # the checkpoint of update 2, mid-epoch, intact
    assert mid["optimizer_history"][-1]["num_updates"] == 2
    assert mid["extra_state"]["train_iterator"]["iterations_in_epoch"] == 2

    resumed = cli(_soft(enc, finetuned, split)).stdout
    assert "ltp: resuming from" in resumed
    final = _state(split / "checkpoint_last.pt")
    assert final["optimizer_history"][-1]["num_updates"] == 6
    assert not torch.equal(final["model"][DELTA], mid["model"][DELTA])  # it trained on
    assert torch.allclose(final["model"][DELTA], whole["model"][DELTA], rtol=0, atol=1e-6)
    for key, value in whole["model"].items():
        assert torch.allclose(final["model"][key].float(), value.float(), rtol=0, atol=1e-6), key
