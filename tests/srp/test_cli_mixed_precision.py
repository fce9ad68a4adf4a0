"""An SRP pruning run of stock fairseq-train under fairseq's --bf16 and --fp16 wrappers (fp32 master
copies): it selects, shrinks, slices and fine-tunes with finite losses, and the checkpoint is sliced.

On a CPU fairseq's flat --fp16 master copy cannot be built (it lives on the current CUDA device), so
the CPU run uses --fp16-no-flatten-grads; with ``pytest --device cuda`` it is plain --fp16 (the flat
layout is also covered in-process by test_mixed_precision.py)."""
import math
import re

import pytest
import torch

from tests.conftest import DEVICE, run_cli
from tests.srp.conftest import train_args

FP16 = ["--fp16", "--fp16-init-scale", "4", "--fp16-scale-window", "1000"]


@pytest.mark.integration
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_pruning_run_under_mixed_precision(corpus, base_checkpoint, tmp_path, precision):
    flags = ["--bf16"] if precision == "bf16" else FP16 + (["--fp16-no-flatten-grads"] if DEVICE == "cpu" else [])
    save = tmp_path / precision
    out = run_cli(train_args(corpus, save, "--srp", "--pretrained-model", base_checkpoint,
                             "--compression-rate", 0.5, "--pruning-period", 1, "--weighted-layernorm",
                             "--max-epoch", 2, "--validate-interval", 2, *flags)).stdout
    assert "sliced the selected groups" in out
    if precision == "fp16":
        assert "loss_scale=" in out  # fairseq's fp16 wrapper was in charge
    losses = [float(v) for v in re.findall(r"\| loss (\S+) \|", out)]
    assert len(losses) >= 2 and all(math.isfinite(v) for v in losses), out[-3000:]
    import user_dir  # noqa: F401  (allowlists what fairseq checkpoints hold)

    state = torch.load(save / "checkpoint_last.pt", map_location="cpu")
    assert state["cfg"]["model"]["srp_shapes"]  # the kept sizes of the sliced model
    assert state["model"]["encoder.embed_tokens.weight"].size(1) < 32
    assert all(torch.isfinite(v.float()).all() for v in state["model"].values() if v.is_floating_point())
