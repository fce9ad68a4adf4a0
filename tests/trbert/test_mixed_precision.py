"""TR-BERT's RL and joint stages under fairseq's fp16/bf16 wrappers, in-process: a few updates with
finite losses, the policies learn (their weights change), the RL stage leaves the encoder exactly as
it was, the joint stage trains it too."""
import math
from itertools import chain

import pytest
import torch
from fairseq import options
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.optim.fp16_optimizer import FP16Optimizer, MemoryEfficientFP16Optimizer

from tests.trbert.helpers import fake_task, random_batch, sample_for, tiny_dictionary, tiny_trbert
from user_dir.trbert.criterion import TrbertCriterion, TrbertCriterionConfig

PRECISIONS = {  # name: (flags, model dtype, wrapper)
    "fp16-flat": (["--fp16"], torch.float16, FP16Optimizer),
    "bf16": (["--bf16"], torch.bfloat16, FP16Optimizer),
    "memory-efficient-fp16": (["--memory-efficient-fp16"], torch.float16, MemoryEfficientFP16Optimizer),
}
UPDATES = 3


def _cfg(flags):
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [
        "unused-data", "--task", "sentence_prediction", "--num-classes", "3", "--arch", "trbert_roberta",
        "--criterion", "trbert", "--optimizer", "adam", "--lr", "1e-2",
        "--fp16-init-scale", "4", "--fp16-scale-window", "1000", "--cpu", *flags])
    return convert_namespace_to_omegaconf(args)


def _update(optimizer, model, criterion, sample):
    """One update as fairseq's trainer makes it; None when the fp16 loss scaler overflowed."""
    optimizer.zero_grad()
    loss, sample_size, _ = criterion(model, sample)
    optimizer.backward(loss)
    optimizer.multiply_grads(1.0 / sample_size)
    try:
        optimizer.clip_grad_norm(0.0)
    except OverflowError:
        return None
    optimizer.step()
    return float(loss)


@pytest.mark.parametrize("stage", ["rl", "joint"])
@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_policies_learn_under_mixed_precision(precision, stage, monkeypatch, device):
    flags, dtype, wrapper = PRECISIONS[precision]
    if precision == "fp16-flat" and device.type == "cpu":
        # fairseq puts the flat fp32 master copy on torch.cuda.current_device(); on a CPU the
        # parameters' device index is None, which is what its copy loops then look up
        monkeypatch.setattr(torch.cuda, "current_device", lambda: None)
    d = tiny_dictionary()
    model = tiny_trbert(d, trbert_stage=stage, dropout=0.0, attention_dropout=0.0)
    criterion = TrbertCriterion(TrbertCriterionConfig(trbert_stage=stage, trbert_rollouts=4, alpha=1.0,
                                                      guide_rate=0.0, max_update=100), fake_task(d))
    tokens = random_batch(d, [20, 14, 9, 12], seed=1).to(device)
    sample = sample_for(tokens, torch.tensor([0, 2, 1, 1], device=device), dictionary=d)
    model = model.to(device=device, dtype=dtype).train()  # as fairseq's trainer does before it builds the optimizer
    params = [p for p in chain(model.parameters(), criterion.parameters()) if p.requires_grad]
    optimizer = wrapper.build_optimizer(_cfg(flags), params)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}

    torch.manual_seed(0)
    losses = []
    for _ in range(4 * UPDATES):
        loss = _update(optimizer, model, criterion, sample)
        if loss is not None:
            assert math.isfinite(loss)
            losses.append(loss)
        if len(losses) == UPDATES:
            break
    assert len(losses) == UPDATES, "too many fp16 overflows"
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    policies = {n for n in before if ".policies." in f".{n}"}
    assert policies and policies <= changed, f"policy weights that did not learn: {policies - changed}"
    encoder = changed - policies
    if stage == "rl":
        assert not encoder, f"the RL stage trained encoder weights: {sorted(encoder)[:3]}"
    else:
        assert any("layers.1." in n for n in encoder) and any("classification_heads" in n for n in encoder)
