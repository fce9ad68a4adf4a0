"""TR-BERT's RL stage through stock fairseq-train under --fp16 and --bf16 (fairseq's fp32 master
copies): finite losses, the policies learn, the encoder stays as it was. On a CPU --fp16 uses
--fp16-no-flatten-grads (fairseq builds its flat master copy on the current CUDA device); with
``pytest --device cuda`` it is plain --fp16."""
import math
import re

import pytest
import torch

from tests.conftest import DEVICE

pytestmark = pytest.mark.integration
FP16 = ["--fp16", "--fp16-init-scale", "4", "--fp16-scale-window", "1000"]


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_rl_stage_learns_policies_under_mixed_precision(precision, tiny_encoder, tiny_classifier, tmp_path, cli):
    enc = tiny_encoder
    flags = ["--bf16"] if precision == "bf16" else FP16 + (["--fp16-no-flatten-grads"] if DEVICE == "cpu" else [])
    # stock fairseq-train that also dumps the model state at the start (the policies' initialisation)
    out = cli(["python", "tests/common/ddp_worker.py", *enc.task_args(), *enc.model_args("trbert_roberta_minilm"), "--criterion", "trbert",
               "--trbert-stage", "rl", "--trbert-rollouts", "2", "--guide-rate", "0", "--optimizer", "adam",
               "--lr", "1e-2", "--lr-scheduler", "fixed", "--restore-file", tiny_classifier, "--reset-optimizer",
               "--reset-dataloader", "--reset-meters", "--reset-lr-scheduler", "--batch-size", "16",
               "--max-update", "3", "--required-batch-size-multiple", "1", "--num-workers", "0",
               "--disable-validation", "--no-epoch-checkpoints", "--save-dir", tmp_path, "--cpu", "--seed", "1",
               "--log-format", "simple", "--log-interval", "1", *flags]).stdout
    losses = [float(v) for v in re.findall(r"\bloss[= ]([-+0-9.eE]+|nan|inf)", out)]
    assert len(losses) >= 3 and all(math.isfinite(v) for v in losses), out[-3000:]
    start, end = torch.load(tmp_path / "model_rank0_start.pt"), torch.load(tmp_path / "model_rank0.pt")
    policies = [k for k in end if ".policies." in k]
    assert policies and all(not torch.equal(end[k], start[k]) for k in policies)  # learned
    assert all(torch.equal(end[k], start[k]) for k in end if k not in policies)  # the encoder is frozen
