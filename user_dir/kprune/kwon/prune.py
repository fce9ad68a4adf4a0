"""The three stages of Kwon et al. in order, with their timings.

1. Fisher-based mask search: mask gradients on the sample (``fisher.py``), hierarchical search
   under the FLOPs budget (``search.py``);
2. mask rearrangement with the within-layer Fisher (``rearrange.py``);
3. mask tuning by layer-wise least squares (``rescale.py``), against a teacher that is the search's
   result at the milder constraint ``1 − sqrt(1 − constraint)`` of FLOPs removed (the original's
   two-step schedule; ``full_teacher`` fits the unpruned model instead).

The model's weights are not touched; the result is a set of masks (0 = pruned, otherwise the
tuned value), which ``apply.fold_and_slice`` turns into a smaller model.
"""
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

from user_dir.kprune.flops import FlopsModel, model_sizes
from user_dir.kprune.kwon.fisher import collect_mask_gradients
from user_dir.kprune.kwon.masks import KwonMasks
from user_dir.kprune.kwon.rearrange import LayerRearrangement, rearrange_layers
from user_dir.kprune.kwon.rescale import RescaleResult, rescale_masks
from user_dir.kprune.kwon.search import SearchResult, search_budget
from user_dir.kprune.prune import check_supported

logger = logging.getLogger("user_dir.kprune.kwon")


@dataclass
class KwonSettings:
    constraint: float  # fraction of FLOPs to remove, in (0, 1) (the original: fraction kept)
    rearrange: bool = True
    rescale: bool = True
    damp: float = 1.0  # LSMR damping of the mask-tuning solve
    full_teacher: bool = False  # tune towards the unpruned model instead of the schedule's teacher
    per_batch_fisher: bool = False  # one gradient per mini-batch (the original code) vs per example
    regression: bool = False
    head_name: str = "sentence_classification_head"

    def __post_init__(self):
        if not 0.0 < self.constraint < 1.0:
            raise ValueError(f"constraint must be in (0, 1), got {self.constraint}")
        if self.damp < 0:
            raise ValueError(f"damp must be >= 0, got {self.damp}")


def teacher_constraint(constraint: float) -> float:
    """FLOPs fraction removed by the teacher: the original's ``get_pruning_schedule(kept, 2)[0]``
    keeps ``sqrt(kept)``."""
    return 1.0 - math.sqrt(1.0 - constraint)


@dataclass
class KwonResult:
    masks: KwonMasks
    flops_before: float
    flops_after: float
    budget: float
    num_samples: int  # gradients the Fisher was summed over
    stage_seconds: Dict[str, float]
    search: SearchResult
    teacher_search: Optional[SearchResult] = None
    rearrangement: List[LayerRearrangement] = field(default_factory=list)
    rescale: Optional[RescaleResult] = None
    heads_before: List[int] = field(default_factory=list)
    ffn_before: List[int] = field(default_factory=list)

    @property
    def heads_after(self) -> List[int]:
        return self.masks.counts()[0]

    @property
    def ffn_after(self) -> List[int]:
        return self.masks.counts()[1]

    @property
    def loop_seconds(self) -> float:
        """Pruning time as the original reports it: from the first gradient to the tuned masks."""
        return sum(self.stage_seconds.values())

    def summary(self) -> dict:
        return {
            "method": "kwon",
            "flops_before": self.flops_before,
            "flops_after": self.flops_after,
            "relative_flops": self.flops_after / self.flops_before,
            "budget": self.budget,
            "heads_before": self.heads_before, "heads_after": self.heads_after,
            "ffn_before": self.ffn_before, "ffn_after": self.ffn_after,
            "fisher_samples": self.num_samples,
            "stage_seconds": dict(self.stage_seconds),
            "loop_seconds": self.loop_seconds,
            "search": self.search.summary(),
            "teacher_search": self.teacher_search.summary() if self.teacher_search else None,
            "rearrangement": [asdict(r) for r in self.rearrangement],
            "rescale": self.rescale.summary() if self.rescale else None,
        }


def _timed(seconds: Dict[str, float], stage: str, start: float) -> None:
    seconds[stage] = time.perf_counter() - start
    logger.info(f"kwon {stage}: {seconds[stage]:.2f} s")


def prune_kwon(model, batches, flops: FlopsModel, settings: KwonSettings, progress: bool = False) -> KwonResult:
    """Kwon et al.'s search, rearrangement and mask tuning on ``model`` (weights unchanged).

    ``batches`` are the example sample (with ``target``, the gold labels).
    """
    check_supported(model)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    heads0, ffn0 = model_sizes(model)
    flops_before = flops.total(heads0, ffn0)
    budget = (1.0 - settings.constraint) * flops_before
    seconds: Dict[str, float] = {}
    device = next(model.parameters()).device

    start = time.perf_counter()
    grads = collect_mask_gradients(model, batches, settings.head_name, settings.regression,
                                   per_batch=settings.per_batch_fisher, progress=progress)
    logger.info(f"kwon fisher: mask gradients of {grads.num_samples} "
                f"{'mini-batches' if grads.per_batch else 'examples'}")
    _timed(seconds, "fisher", start)

    start = time.perf_counter()
    head_fisher, neuron_fisher = grads.head_fisher(), grads.neuron_fisher()
    search = search_budget(head_fisher, neuron_fisher, flops.head, flops.neuron, budget)
    logger.info(f"kwon search: keep {search.num_heads}/{sum(heads0)} heads and {search.num_neurons}/"
                f"{sum(ffn0)} neurons ({search.cost / 1e6:.3f} of {budget / 1e6:.3f} MFLOPs budget; "
                f"{search.candidates} head counts tried)")
    teacher_search = None
    if settings.rescale and not settings.full_teacher:
        c_t = teacher_constraint(settings.constraint)
        teacher_search = search_budget(head_fisher, neuron_fisher, flops.head, flops.neuron,
                                       (1.0 - c_t) * flops_before)
        logger.info(f"kwon search: mask-tuning teacher at constraint {c_t:.4f}: {teacher_search.num_heads} "
                    f"heads, {teacher_search.num_neurons} neurons")
    _timed(seconds, "search", start)

    start = time.perf_counter()
    head_keep, neuron_keep = search.head_keep, search.neuron_keep
    rearrangement: List[LayerRearrangement] = []
    if settings.rearrange:
        head_keep, log_h = rearrange_layers(head_keep, grads.heads, "heads")
        neuron_keep, log_n = rearrange_layers(neuron_keep, grads.neurons, "neurons")
        rearrangement = log_h + log_n
        for r in rearrangement:
            logger.info(f"layer {r.layer} {r.kind:7s}: rearranged, {r.kept} kept, {r.swapped} swapped, "
                        f"pruned-set Fisher loss {r.loss_before:.4e} -> {r.loss_after:.4e}")
    num_samples = grads.num_samples
    del grads
    _timed(seconds, "rearrange", start)

    masks = KwonMasks.from_keep(head_keep, neuron_keep, device)
    start = time.perf_counter()
    rescale = None
    if settings.rescale:
        if teacher_search is None:
            teacher = KwonMasks.ones(model)
        else:
            teacher = KwonMasks.from_keep(teacher_search.head_keep, teacher_search.neuron_keep, device)
        rescale = rescale_masks(model, batches, masks, teacher, damp=settings.damp,
                                head_name=settings.head_name, progress=progress)
        for f in rescale.fits:
            energy = max(f.target_energy, 1e-30)
            logger.info(f"layer {f.layer} {f.kind:9s}: tuned {f.units:4d} values in [{f.scale_min:.3f}, "
                        f"{f.scale_max:.3f}] | rel. error {f.error_before / energy:.3e} -> "
                        f"{f.error_after / energy:.3e}" + ("" if f.applied else " | not applied"))
        if rescale.stopped:
            logger.warning(f"kwon rescale stopped early at {rescale.stopped}")
        masks = rescale.masks
    _timed(seconds, "rescale", start)

    heads1, ffn1 = masks.counts()
    return KwonResult(masks, flops_before, flops.total(heads1, ffn1), budget, num_samples, seconds, search,
                      teacher_search, rearrangement, rescale, heads0, ffn0)
