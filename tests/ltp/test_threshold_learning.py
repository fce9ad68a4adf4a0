"""Soft stage: the regulariser's gradient reaches the thresholds, which ltp_adam trains in their own
group (own lr, no weight decay), in fp32 and under fairseq's bf16/fp16 wrappers. Hard stage: the
thresholds never move."""
from itertools import chain
from types import SimpleNamespace

import pytest
import torch
from fairseq import options
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.optim import build_optimizer
from fairseq.optim.fp16_optimizer import FP16Optimizer, MemoryEfficientFP16Optimizer

from tests.common.prunable_factory import build, random_batch, tiny_dictionary
from user_dir.ltp.criterion import LtpSentencePredictionCriterion

LR, THRESHOLD_LR, WEIGHT_DECAY = 1e-3, 5e-3, 0.1


def _cfg(*extra):
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [
        "unused-data", "--task", "sentence_prediction", "--num-classes", "3", "--arch", "ltp_roberta",
        "--criterion", "ltp_sentence_prediction", "--lambda-threshold", "10",
        "--optimizer", "ltp_adam", "--lr", str(LR), "--weight-decay", str(WEIGHT_DECAY),
        "--threshold-lr", str(THRESHOLD_LR), "--cpu", *extra])
    return convert_namespace_to_omegaconf(args)


def _setup(masking_mode, *extra):
    cfg = _cfg("--masking-mode", masking_mode, *extra)
    d = tiny_dictionary()
    torch.manual_seed(0)
    model = build("ltp_roberta", d, encoder_layers=4, masking_mode=masking_mode,
                  threshold_lr=THRESHOLD_LR, dropout=0.0, attention_dropout=0.0)
    label_dict = tiny_dictionary(3)
    criterion = LtpSentencePredictionCriterion(cfg.criterion, SimpleNamespace(label_dictionary=label_dict))
    tokens = random_batch(d, [12, 7, 10, 5], seed=1)
    sample = {"net_input": {"src_tokens": tokens, "src_lengths": tokens.ne(d.pad()).sum(1)},
              "target": torch.tensor([0, 2, 1, 0]), "ntokens": int(tokens.ne(d.pad()).sum())}
    return cfg, model.train(), criterion, sample


def _trainable(model, criterion):
    return [p for p in chain(model.parameters(), criterion.parameters()) if p.requires_grad]


def _step(optimizer, model, criterion, sample):
    """One update as fairseq's trainer makes it: a loss-scale overflow skips the step."""
    loss, sample_size, _ = criterion(model, sample)
    assert torch.isfinite(loss), loss
    optimizer.zero_grad()
    optimizer.backward(loss)
    optimizer.multiply_grads(1.0 / sample_size)
    try:
        optimizer.clip_grad_norm(0.0)  # also where fp16's dynamic loss scaler detects overflows
    except OverflowError:
        return False
    optimizer.step()
    return True


def test_soft_regulariser_gradient_reaches_the_thresholds():
    _, model, criterion, sample = _setup("soft")
    loss, _, log = criterion(model, sample)
    assert log["ltp_reg"] > 0
    loss.backward()
    grad = model.ltp_encoder.ltp_threshold_delta.grad
    assert grad[0] == 0  # layer 0 never prunes
    # raising a threshold lowers every soft mask, so with a large lambda the loss falls as it rises
    assert (grad[1:] < 0).all(), grad


def test_ltp_adam_puts_the_thresholds_in_their_own_group():
    cfg, model, criterion, sample = _setup("soft")
    optimizer = build_optimizer(cfg.optimizer, _trainable(model, criterion))
    groups = {g["name"]: g for g in optimizer.param_groups}
    delta = model.ltp_encoder.ltp_threshold_delta
    assert [p is delta for p in groups["ltp_threshold"]["params"]] == [True]
    assert groups["ltp_threshold"]["lr"] == pytest.approx(THRESHOLD_LR)
    assert groups["ltp_threshold"]["weight_decay"] == 0.0
    assert groups["default"]["weight_decay"] == WEIGHT_DECAY and groups["default"]["lr"] == LR
    optimizer.set_lr(LR / 4)  # what an lr scheduler does: both groups follow in proportion
    assert groups["ltp_threshold"]["lr"] == pytest.approx(THRESHOLD_LR / 4)
    assert optimizer.get_lr() == pytest.approx(LR / 4)


def _fp32_step_and_delta(masking_mode):
    cfg, model, criterion, sample = _setup(masking_mode)
    optimizer = build_optimizer(cfg.optimizer, _trainable(model, criterion))
    before = model.ltp_encoder.ltp_threshold_delta.detach().clone()
    _step(optimizer, model, criterion, sample)
    return before, model.ltp_encoder.ltp_threshold_delta.detach().clone()


def test_soft_stage_moves_the_thresholds_up_by_about_the_threshold_lr():
    before, after = _fp32_step_and_delta("soft")
    moved = after - before
    assert moved[0] == 0
    # Adam's first step is lr * sign(grad); the gradient points down, so thresholds rise
    assert torch.allclose(moved[1:], torch.full((3,), THRESHOLD_LR), rtol=1e-3)


def test_hard_stage_keeps_the_thresholds_fixed():
    cfg, model, criterion, sample = _setup("hard")
    learned = torch.tensor([0.0, 0.001, 0.002, -0.001])  # as loaded from a soft-stage checkpoint
    with torch.no_grad():
        model.ltp_encoder.ltp_threshold_delta.copy_(learned)
    delta = model.ltp_encoder.ltp_threshold_delta
    assert not delta.requires_grad
    params = _trainable(model, criterion)
    assert all(p is not delta for p in params)
    optimizer = build_optimizer(cfg.optimizer, params)
    weight = model.layers[1].fc1.weight.detach().clone()
    _step(optimizer, model, criterion, sample)
    assert torch.equal(delta.detach(), learned)
    assert not torch.equal(weight, model.layers[1].fc1.weight)  # the weights did train


@pytest.mark.parametrize("precision", ["bf16", "fp16-no-flatten-grads", "memory-efficient-fp16",
                                       "memory-efficient-bf16"])
@pytest.mark.parametrize("masking_mode", ["soft", "hard"])
def test_thresholds_under_mixed_precision(precision, masking_mode):
    flags = ["--fp16", "--fp16-no-flatten-grads"] if precision == "fp16-no-flatten-grads" else [f"--{precision}"]
    cfg, model, criterion, sample = _setup(masking_mode, *flags)
    dtype = torch.float16 if "fp16" in precision else torch.bfloat16
    model = model.to(dtype)  # as fairseq's trainer does before it builds the optimizer
    params = _trainable(model, criterion)
    if not precision.startswith("memory-efficient"):
        optimizer = FP16Optimizer.build_optimizer(cfg, params)  # fp32 master copies, one per tensor
    else:
        optimizer = MemoryEfficientFP16Optimizer.build_optimizer(cfg, params)
    delta = model.ltp_encoder.ltp_threshold_delta
    before = delta.detach().float().clone()
    weight = model.layers[1].fc1.weight.detach().clone()
    steps = 0
    for _ in range(20):
        steps += _step(optimizer, model, criterion, sample)
        if steps == 3:
            break
    assert steps == 3
    moved = delta.detach().float() - before
    assert not torch.equal(weight, model.layers[1].fc1.weight)
    if masking_mode == "hard":
        assert torch.equal(moved, torch.zeros_like(moved))
    else:
        groups = {g["name"]: g for g in optimizer.optimizer.param_groups}
        assert groups["ltp_threshold"]["weight_decay"] == 0.0
        assert moved[0] == 0
        # three Adam steps upwards, each about THRESHOLD_LR: more than three steps at the model's
        # lr could move them, so the group's own lr was used
        assert (moved[1:] > 3 * LR).all() and (moved[1:] < 4.5 * THRESHOLD_LR).all(), moved


def test_flattened_fp16_parameters_are_refused_with_the_fix(monkeypatch):
    cfg, model, criterion, _ = _setup("soft", "--fp16")
    # plain --fp16 flattens every parameter into one fp32 tensor (on the current CUDA device)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    with pytest.raises(RuntimeError, match="--fp16-no-flatten-grads"):
        FP16Optimizer.build_optimizer(cfg, _trainable(model.half(), criterion))
