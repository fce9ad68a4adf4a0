"""The Kprune loop: 2L bottom-up steps of knowledge measurement, KPMS and (optionally) KPWT.

For each sublayer ``s = 0 .. 2L-1`` (``2l`` = layer l's attention, ``2l+1`` its FFN):

1. measure predictive and representational knowledge of every undecided unit on the current,
   partly pruned (and partly tuned) model;
2. KPMS picks the units that fit the remaining FLOPs budget and fixes the target sublayer's mask;
   the budget shrinks by the FLOPs kept there;
3. with ``sublayerwise_tuning``, KPWT refits the target's output projection to the teacher
   (always for attention, for an FFN only when some neuron was pruned, as the original does);
4. the batches' hidden states are advanced through the now final sublayer.

Model weights are frozen throughout; only KPWT writes (least-squares) weights. The masks are then
turned into a physically smaller model by :func:`apply_pruning`.
"""
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import List, Optional

import torch
from tqdm import tqdm

from user_dir.kprune.flops import FlopsModel, model_sizes
from user_dir.kprune.knowledge import measure_knowledge
from user_dir.kprune.masks import KpruneMasks
from user_dir.kprune.search import kpms_step
from user_dir.kprune.sublayers import ATTENTION, run_sublayer, sublayer_of
from user_dir.kprune.teacher import Teacher
from user_dir.kprune.weight_tuning import tune_sublayer

logger = logging.getLogger("user_dir.kprune")


@dataclass
class KpruneSettings:
    constraint: float  # fraction of FLOPs to remove, in (0, 1)
    lam_pred: float = 1.0
    lam_rep: float = 2.5e-4
    mu: Optional[float] = None  # None: the model's head_dim
    T: float = 2.0
    sublayerwise_tuning: bool = False
    ridge: float = 0.0
    regression: bool = False
    head_name: str = "sentence_classification_head"

    def __post_init__(self):
        if not 0.0 < self.constraint < 1.0:
            raise ValueError(f"constraint must be in (0, 1), got {self.constraint}")


@dataclass
class StepLog:
    sublayer: int
    layer: int
    kind: str
    units: int
    kept: int
    pruned: int
    kept_flops: float
    budget_left: float
    candidates: int
    seconds: float
    tuning: Optional[dict] = None


@dataclass
class KpruneResult:
    masks: KpruneMasks
    steps: List[StepLog]
    flops_before: float
    flops_after: float
    budget: float
    loop_seconds: float  # the 2L-step loop only (what the paper reports as pruning time)
    teacher_seconds: float  # recording soft labels before the loop
    heads_before: List[int] = field(default_factory=list)
    ffn_before: List[int] = field(default_factory=list)

    @property
    def heads_after(self) -> List[int]:
        return [int(self.masks.head_keep(l).sum()) for l in range(self.masks.num_layers)]

    @property
    def ffn_after(self) -> List[int]:
        return [int(self.masks.neuron_keep(l).sum()) for l in range(self.masks.num_layers)]

    def summary(self) -> dict:
        return {
            "flops_before": self.flops_before,
            "flops_after": self.flops_after,
            "relative_flops": self.flops_after / self.flops_before,
            "budget": self.budget,
            "heads_before": self.heads_before, "heads_after": self.heads_after,
            "ffn_before": self.ffn_before, "ffn_after": self.ffn_after,
            "loop_seconds": self.loop_seconds,
            "teacher_seconds": self.teacher_seconds,
            "steps": [asdict(s) for s in self.steps],
        }


def check_supported(model) -> None:
    """Kprune's targets and hooks assume our post-LN prunable encoder."""
    layers = getattr(model, "layers", None)
    if layers is None or not all(hasattr(l, "attention_block") for l in layers):
        raise TypeError("Kprune needs a prunable_roberta model (user_dir.common.prunable_roberta)")
    if any(l.normalize_before for l in layers):
        raise TypeError("Kprune's teacher targets are the pre-LayerNorm sums of a post-LN encoder; "
                        "this model is pre-LN (encoder_normalize_before)")


def _describe(step: StepLog) -> str:
    unit = "heads" if step.kind == ATTENTION else "neurons"
    text = (f"layer {step.layer} {step.kind:9s}: kept {step.kept:4d}/{step.units:<4d} {unit:7s} "
            f"(pruned {step.pruned:4d}) | kept {step.kept_flops / 1e6:9.3f} MFLOPs | "
            f"budget left {step.budget_left / 1e6:9.3f} MFLOPs | {step.seconds:5.1f} s")
    if step.tuning:
        t = step.tuning
        energy = max(t["target_energy"], 1e-30)
        text += (f" | KPWT rel. error {t['error_before'] / energy:.3e} -> {t['error_after'] / energy:.3e}")
    return text


def kprune(model, batches, flops: FlopsModel, settings: KpruneSettings, progress: bool = False) -> KpruneResult:
    """Run the Kprune search (and KPWT) on ``model`` in place; returns the masks and the log."""
    check_supported(model)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    L = len(model.layers)
    head_dim = model.layers[0].self_attn.head_dim
    mu = float(settings.mu) if settings.mu is not None else float(head_dim)
    heads0, ffn0 = model_sizes(model)
    flops_before = flops.total(heads0, ffn0)
    budget = (1.0 - settings.constraint) * flops_before

    t0 = time.perf_counter()
    teacher = Teacher(model, batches, settings.T, settings.regression, settings.head_name,
                      with_sums=settings.sublayerwise_tuning)
    teacher_seconds = time.perf_counter() - t0
    inputs = list(teacher.first_inputs)  # the student's cached sublayer inputs, per batch
    masks = KpruneMasks(model)
    steps: List[StepLog] = []
    remaining = budget

    start = time.perf_counter()
    with masks.applied(model):
        for s in tqdm(range(2 * L), desc="kprune", unit="sublayer", disable=not progress):
            step_start = time.perf_counter()
            layer_idx, kind = sublayer_of(s)
            layer = model.layers[layer_idx]
            knowledge = measure_knowledge(model, masks, batches, inputs, teacher.targets, s,
                                          settings.T, settings.regression, settings.head_name)
            decision = kpms_step(knowledge, s, L, remaining, flops.head, flops.neuron,
                                 settings.lam_pred, settings.lam_rep, mu)
            if kind == ATTENTION:
                masks.keep_heads(layer_idx, decision.keep)
                columns = masks.heads[layer_idx] > 0
            else:
                masks.keep_neurons(layer_idx, decision.keep)
                columns = masks.neurons[layer_idx] > 0
            remaining -= decision.kept_flops

            tuning = None
            if settings.sublayerwise_tuning:
                sums = teacher.sublayer_sums(s)
                pruned_some = bool((~decision.keep).any())
                # the original tunes every attention sublayer but skips an untouched FFN
                if decision.keep.any() and (kind == ATTENTION or pruned_some):
                    tuning = asdict(tune_sublayer(layer, kind, columns, batches, inputs, sums, settings.ridge))
                del sums
            if s < 2 * L - 1:
                with torch.no_grad():
                    inputs = [run_sublayer(layer, kind, x, b.padding_mask) for x, b in zip(inputs, batches)]

            units = decision.keep.numel()
            kept = int(decision.keep.sum())
            step = StepLog(s, layer_idx, kind, units, kept, units - kept, decision.kept_flops,
                           remaining, decision.candidates, time.perf_counter() - step_start, tuning)
            steps.append(step)
            logger.info(_describe(step))
    loop_seconds = time.perf_counter() - start

    result = KpruneResult(masks, steps, flops_before, 0.0, budget, loop_seconds, teacher_seconds,
                          heads0, ffn0)
    result.flops_after = flops.total(result.heads_after, result.ffn_after)
    return result


def masked_logits(model, masks: KpruneMasks, batch, head_name: str) -> torch.Tensor:
    """Logits of the masked (not yet sliced) model, for the masked-vs-sliced check."""
    with torch.no_grad(), masks.applied(model):
        return model(batch.tokens, features_only=True, classification_head_name=head_name)[0]


def apply_pruning(model, masks: KpruneMasks) -> None:
    """Physically remove the masked heads and neurons; the model config records the new sizes."""
    heads, neurons = masks.kept_indices()
    model.prune_structure(heads, neurons)

