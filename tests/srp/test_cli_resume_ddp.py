"""A pruning run interrupted mid-schedule and resumed from checkpoint_last.pt ends like an
uninterrupted one; two data-parallel CPU workers select the same groups and end with the same weights."""
import pytest
import torch

from tests.common.ddp import rank_states, run_ranks
from tests.conftest import run_cli
from tests.srp.conftest import train_args

PRUNE = ["--srp", "--compression-rate", 0.5, "--pruning-stage", 0, "--pruning-period", 3,
         "--decreasing", "sa", "--weighted-layernorm", "--max-epoch", 4]


def _model(path):
    import user_dir  # noqa: F401

    return torch.load(path, map_location="cpu")["model"]


def _assert_same(a, b, atol):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].shape == b[k].shape, k
        if k.endswith(("_kept", "_sel", "srp_progress", "ln_width", ".kept")):
            assert torch.equal(a[k], b[k]), k
        else:
            assert torch.allclose(a[k].float(), b[k].float(), atol=atol, rtol=0), k


@pytest.mark.integration
def test_resume_mid_schedule(corpus, base_checkpoint, tmp_path):
    args = [*PRUNE, "--pretrained-model", base_checkpoint]
    run_cli(train_args(corpus, tmp_path / "whole", *args))
    # 5 updates per epoch, shrinking over updates 0..14: stop at update 7, in the middle of epoch 2
    run_cli(train_args(corpus, tmp_path / "split", *args, "--max-update", 7))
    mid = _model(tmp_path / "split" / "checkpoint_last.pt")
    assert mid["srp_progress"].tolist() == [0, 1, 0]  # interrupted while shrinking
    c = mid["encoder.embedding_c"][mid["encoder.embedding_c_sel"]]
    assert c.numel() > 0 and bool(((c > 0) & (c < 1)).all())
    out = run_cli(train_args(corpus, tmp_path / "split", *args)).stdout
    assert "Loaded checkpoint" in out and "sliced the selected groups" in out
    assert "SRP iteration" not in out  # no second selection: the saved one was continued
    # the schedule went on where it stopped: same c values at the end of epoch 2, same selection
    for name in ("checkpoint2.pt", "checkpoint_last.pt"):
        whole = _model(tmp_path / "whole" / name)
        resumed = _model(tmp_path / "split" / name)
        assert whole.keys() == resumed.keys()
        for k in whole:
            assert whole[k].shape == resumed[k].shape, k
            if k.endswith(("_c", "_kept", "_sel", "srp_progress", "ln_width", ".kept")):
                assert torch.equal(whole[k], resumed[k]), k
    assert resumed["srp_progress"].tolist() == [1, 0, 0]
    # (weights are close but not bit-identical: fairseq's own resume is not, with or without SRP)


@pytest.mark.integration
def test_two_cpu_workers_agree(corpus, base_checkpoint, tmp_path):
    args = train_args(corpus, tmp_path / "ddp", *PRUNE, "--pretrained-model", base_checkpoint,
                      "--srp-score-batches", 2)
    outs = run_ranks(args[1:])
    assert "sliced the selected groups" in outs[0]
    ranks = rank_states(tmp_path / "ddp")
    assert ranks[0]["srp_progress"].tolist() == [1, 0, 0]
    _assert_same(ranks[0], ranks[1], atol=0)
    saved = _model(tmp_path / "ddp" / "checkpoint_last.pt")
    _assert_same(saved, ranks[0], atol=0)
