"""A TR-BERT RL stage killed with SIGKILL in the middle of an epoch leaves its last checkpoint intact,
and the rerun of the same script resumes from it to exactly the policies (and weights) of a run that
was never interrupted: the rollouts' sampling is seeded by the update number, the data position and
the optimizer come from the checkpoint."""
import pytest
import torch

from tests.common.interrupt import partial_files, sigkill_env

pytestmark = pytest.mark.integration


def _rl(enc, clf, save_dir):
    shape = " ".join(enc.model_args()[2:])  # the dimension flags (not --arch)
    env = dict(DATA=enc.data_dir, SAVE_DIR=save_dir, MAX_POSITIONS=enc.shape["positions"], BATCH=16,
               UPDATE_FREQ=1, EPOCHS=1, LR="1e-3", THREADS=1, VALIDATE=0, FINETUNED=clf,
               INIT_FROM=clf, GUIDE_RATE=0, ROLLOUTS=2, SAVE_INTERVAL_UPDATES=2,
               EXTRA_ARGS=f"{shape} --cpu --log-interval 1")
    return ["env", *[f"{k}={v}" for k, v in env.items()], "bash", "scripts/trbert/rl.sh"]


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def test_killed_mid_epoch_then_resumed_equals_uninterrupted(tiny_encoder, tiny_classifier, tmp_path, cli):
    enc, clf = tiny_encoder, tiny_classifier  # 96 training examples: 6 updates of 16
    cli(_rl(enc, clf, tmp_path / "whole"))
    whole = _state(tmp_path / "whole" / "checkpoint_last.pt")
    assert whole["optimizer_history"][-1]["num_updates"] == 6

    split = tmp_path / "split"
    kill = sigkill_env("fairseq-train", "fairseq.trainer:Trainer.train_step", 4)  # before update 4
    killed = cli(["env", *[f"{k}={v}" for k, v in kill.items()], *_rl(enc, clf, split)], check=False)
    assert killed.returncode != 0
    assert not partial_files(split)
    mid = _state(split / "checkpoint_last.pt")  # the checkpoint of update 2, mid-epoch, intact
    assert mid["optimizer_history"][-1]["num_updates"] == 2
    assert mid["extra_state"]["train_iterator"]["iterations_in_epoch"] == 2

    resumed = cli(_rl(enc, clf, split)).stdout
    assert "trbert-rl: resuming from" in resumed
    final = _state(split / "checkpoint_last.pt")
    assert final["optimizer_history"][-1]["num_updates"] == 6
    policies = [k for k in whole["model"] if ".policies." in k]
    assert policies and any(not torch.equal(final["model"][k], mid["model"][k]) for k in policies)
    for key, value in whole["model"].items():
        assert torch.allclose(final["model"][key].float(), value.float(), rtol=0, atol=1e-6), key
