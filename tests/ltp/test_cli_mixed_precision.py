"""LTP's soft stage through stock fairseq-train under --fp16 and --bf16 (fairseq's fp32 master copies,
one per tensor): finite losses and learned thresholds. On a CPU fairseq cannot build --fp16's flat
master copy (it lives on the current CUDA device), and ltp_adam's two parameter groups never fit one
flat tensor: --fp16 needs --fp16-no-flatten-grads, which fairseq's own error names."""
import math
import re

import pytest
import torch


pytestmark = pytest.mark.integration
FLAGS = {"fp16": ["--fp16", "--fp16-no-flatten-grads", "--fp16-init-scale", "4", "--fp16-scale-window", "1000"],
         "bf16": ["--bf16"]}


@pytest.mark.parametrize("precision", list(FLAGS))
def test_soft_stage_learns_thresholds_under_mixed_precision(precision, tiny_encoder, tiny_classifier, tmp_path, cli):
    enc = tiny_encoder
    out = cli(["fairseq-train", *enc.task_args(), *enc.model_args("ltp_roberta_minilm"),
               "--masking-mode", "soft", "--criterion", "ltp_sentence_prediction", "--lambda-threshold", "0.5",
               "--optimizer", "ltp_adam", "--lr", "1e-3", "--threshold-lr", "2e-2", "--lr-scheduler", "fixed",
               "--restore-file", tiny_classifier, "--reset-optimizer", "--reset-dataloader", "--reset-meters",
               "--reset-lr-scheduler", "--batch-size", "16", "--max-update", "3", "--required-batch-size-multiple", "1",
               "--num-workers", "0", "--disable-validation", "--no-epoch-checkpoints", "--save-dir", tmp_path,
               "--cpu", "--seed", "1", "--log-format", "simple", "--log-interval", "1", *FLAGS[precision]]).stdout
    losses = [float(v) for v in re.findall(r"\bloss[= ]([-+0-9.eE]+|nan|inf)", out)]
    assert len(losses) >= 3 and all(math.isfinite(v) for v in losses), out[-3000:]
    if precision == "fp16":
        assert "loss_scale" in out  # fairseq's fp16 wrapper was in charge
    delta = torch.load(tmp_path / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model"][
        "encoder.sentence_encoder.ltp_threshold_delta"]
    assert delta[0] == 0 and (delta[1:].float() > 0).all(), delta  # learned, pushed up by the regulariser
