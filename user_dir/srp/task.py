"""Task ``srp_translation`` (alias ``SRPtranslation``): translation that runs SRP's phases.

Everything happens in fairseq's task hooks, so stock ``fairseq-train`` drives it:
``build_model`` loads ``--pretrained-model`` (and keeps a frozen copy as the KD teacher with
``--srp``), ``build_criterion`` attaches the teacher, ``get_batch_iterator`` learns the epoch length,
``train_step`` / ``optimizer_step`` hand over to the ``PruningController`` (``phases.py``).
Without ``--pretrained-model`` and ``--srp`` it is plain translation (base training).
"""
import copy
import logging
import os
from dataclasses import dataclass, field
from typing import List, Optional

import torch
import torch.distributed as dist
from fairseq import checkpoint_utils, utils
from fairseq.dataclass import ChoiceEnum
from fairseq.models import ARCH_MODEL_NAME_REGISTRY
from fairseq.tasks import register_task
from fairseq.tasks.translation import TranslationConfig, TranslationTask
from omegaconf import II

from .connectivity import STAGE_KINDS
from .model import SRPModel, set_cfg
from .phases import PruningController
from .schedule import SCHEDULES

logger = logging.getLogger(__name__)

# original sizes of the arch: a pretrained model must agree on them to be pruned by this run
_ARCH_KEYS = ("encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_layers", "encoder_attention_heads",
              "decoder_embed_dim", "decoder_ffn_embed_dim", "decoder_layers", "decoder_attention_heads",
              "share_decoder_input_output_embed")


@dataclass
class SRPTranslationConfig(TranslationConfig):
    srp: bool = field(default=False, metadata={
        "help": "selectively regularized pruning: freeze the selected groups and shrink their "
                "connectivity to 0 over --pruning-period epochs, with logit KD from the "
                "--pretrained-model teacher. Without it, a run with --pretrained-model scores, selects "
                "and slices at once, then fine-tunes (the ablation)"})
    compression_rate: float = field(default=0.2, metadata={
        "help": "fraction of the original parameters kept, in (0, 1]"})
    pruning_stage: int = field(default=0, metadata={
        "help": "0: all group types at once; 1: embedding dims only; 2: FFN neurons, q·k and v·o dims"})
    pruning_period: int = field(default=15, metadata={
        "help": "epochs over which the selected connectivity shrinks to 0 (then: physical slicing)"})
    pruning_iter: int = field(default=1, metadata={
        "help": "pruning iterations within the period: each re-scores, re-selects and slices, keeping "
                "a fraction x**(1/iter) of each group type per iteration"})
    decreasing: ChoiceEnum(list(SCHEDULES)) = field(default="sa", metadata={
        "help": "how the selected connectivity shrinks: s(tep)/e(poch)-wise, a(rithmetic)/g(eometric)"})
    warming_up: int = field(default=0, metadata={
        "help": "epochs of ordinary training before scoring and pruning start"})
    pretrained_model: Optional[str] = field(default=None, metadata={
        "help": "checkpoint to prune (and, with --srp, the distillation teacher); may be an "
                "already pruned srp checkpoint (two-stage pruning)"})
    srp_score_batches: int = field(default=1, metadata={
        "help": "training batches (drawn with a fixed seed) over which -dL/dc is summed"})
    srp_score_max_tokens: int = field(default=4096, metadata={
        "help": "max tokens of a scoring batch"})
    seed: int = II("common.seed")
    update_freq: List[int] = II("optimization.update_freq")
    # what the rest of the command line chose (None where the tool has no such section, e.g. generate)
    optimizer_name: Optional[str] = II("oc.select:optimizer._name,null")
    criterion_name: Optional[str] = II("oc.select:criterion._name,null")


def validate(cfg: SRPTranslationConfig, from_checkpoint=False) -> None:
    """Reject bad SRP options with a message naming the option, before anything is built."""
    def bad(option, value, allowed):
        raise ValueError(f"{option} {value!r} is not valid: allowed values are {allowed}")

    rate = cfg.compression_rate
    if not (isinstance(rate, (int, float)) and 0.0 < rate <= 1.0):
        bad("--compression-rate", rate, "a fraction of parameters kept, 0 < rate <= 1")
    if cfg.pruning_stage not in STAGE_KINDS:
        bad("--pruning-stage", cfg.pruning_stage,
            "0 (all group types), 1 (embedding dims), 2 (FFN neurons, q·k and v·o dims)")
    if str(cfg.decreasing) not in SCHEDULES:
        bad("--decreasing", cfg.decreasing, ", ".join(SCHEDULES))
    if cfg.pruning_iter < 1:
        bad("--pruning-iter", cfg.pruning_iter, "an integer >= 1")
    if cfg.pruning_period < 1:
        bad("--pruning-period", cfg.pruning_period, "a number of epochs >= 1")
    if cfg.srp and cfg.pruning_period < cfg.pruning_iter:
        bad("--pruning-period", cfg.pruning_period,
            f"at least --pruning-iter ({cfg.pruning_iter}) epochs, one per iteration")
    if cfg.warming_up < 0:
        bad("--warming-up", cfg.warming_up, "a number of epochs >= 0")
    if cfg.srp_score_batches < 1:
        bad("--srp-score-batches", cfg.srp_score_batches, "an integer >= 1")
    if cfg.srp_score_max_tokens < 1:
        bad("--srp-score-max-tokens", cfg.srp_score_max_tokens, "an integer >= 1")
    if from_checkpoint:
        return
    if cfg.srp and not cfg.pretrained_model:
        raise ValueError("--srp needs --pretrained-model: the checkpoint to prune, which is also the "
                         "distillation teacher")
    if cfg.pretrained_model and not os.path.isfile(cfg.pretrained_model):
        raise FileNotFoundError(f"--pretrained-model {cfg.pretrained_model}: no such file")
    pruning = bool(cfg.srp or cfg.pretrained_model)
    if pruning and cfg.optimizer_name not in (None, "srp_adam"):
        raise ValueError("SRP pruning needs --optimizer srp_adam (it freezes the selected weights and "
                         f"their Adam moments, and slices its state); got --optimizer {cfg.optimizer_name}")
    if cfg.srp and cfg.criterion_name not in (None, "srp"):
        raise ValueError("--srp distils from the --pretrained-model teacher: it needs --criterion srp "
                         f"(got --criterion {cfg.criterion_name})")


@register_task("srp_translation", dataclass=SRPTranslationConfig)
class SRPTranslationTask(TranslationTask):
    cfg: SRPTranslationConfig

    def __init__(self, cfg: SRPTranslationConfig, src_dict, tgt_dict):
        super().__init__(cfg, src_dict, tgt_dict)
        self.teacher = None
        self.model_cfg = None  # the model config node the trainer checkpoints (gets the new shapes)
        self.train_itr = None
        self.epoch = 1
        self.pruning = bool(cfg.srp or cfg.pretrained_model)
        self.controller = PruningController(cfg, self) if self.pruning else None

    @classmethod
    def setup_task(cls, cfg: SRPTranslationConfig, **kwargs):
        validate(cfg, from_checkpoint=kwargs.get("from_checkpoint", False))
        return super().setup_task(cfg, **kwargs)

    # ---- model, teacher, criterion -------------------------------------------------------------
    def build_model(self, cfg, from_checkpoint=False):
        self.model_cfg = cfg
        state = None
        if self.pruning and not from_checkpoint:
            try:
                state = checkpoint_utils.load_checkpoint_to_cpu(self.cfg.pretrained_model)
            except Exception as e:  # a text file, a truncated download, another framework's file
                raise ValueError(f"--pretrained-model {self.cfg.pretrained_model}: not a readable fairseq "
                                 f"checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
            self._check_pretrained(cfg, state)
            # build the (possibly already pruned) shapes of the pretrained model
            set_cfg(cfg, "srp_shapes", state["cfg"]["model"].get("srp_shapes") or "")
        model = super().build_model(cfg, from_checkpoint)
        if not isinstance(model, SRPModel) and self.pruning:
            raise ValueError(f"SRP pruning needs an srp model (--arch srp_*), got {type(model).__name__}")
        if state is not None:
            model.load_state_dict(state["model"], strict=True, model_cfg=cfg)
            model.reset_pruning_state()
            logger.info(f"SRP: loaded --pretrained-model {self.cfg.pretrained_model} "
                        f"({sum(p.numel() for p in model.parameters()):,} parameters)")
            if self.cfg.srp:
                model.invalidate_gates()
                self.teacher = copy.deepcopy(model)
                self.teacher.eval()
                for p in self.teacher.parameters():
                    p.requires_grad_(False)
        return model

    def _check_pretrained(self, cfg, state):
        option = f"--pretrained-model {self.cfg.pretrained_model}"
        pcfg = state.get("cfg")
        pcfg = pcfg.get("model") if pcfg is not None else None
        if pcfg is None:
            raise ValueError(f"{option}: not a fairseq checkpoint with a model config")
        if not hasattr(pcfg, "get"):  # an add_args-style model (e.g. RoBERTa) stores a Namespace
            pcfg = vars(pcfg)
        arch = pcfg.get("_name") or pcfg.get("arch")
        if ARCH_MODEL_NAME_REGISTRY.get(arch, arch) != "srp":
            raise ValueError(f"{option} is of architecture {arch!r}; SRP prunes srp models (--arch srp_*)")
        mismatch = [f"{k}={pcfg.get(k)} (this run: {getattr(cfg, k, None)})"
                    for k in _ARCH_KEYS if pcfg.get(k) != getattr(cfg, k, None)]
        if mismatch:
            raise ValueError(f"{option} is of another architecture ({arch}): " + ", ".join(mismatch))
        for side, d in (("encoder", self.src_dict), ("decoder", self.tgt_dict)):
            rows = state["model"][f"{side}.embed_tokens.weight"].size(0)
            if rows != len(d):
                raise ValueError(f"{option} has a {side} vocabulary of {rows} entries; the dictionary "
                                 f"of this run has {len(d)}")

    def build_criterion(self, cfg, from_checkpoint=False):
        from .criterion import SRPCriterion

        criterion = super().build_criterion(cfg, from_checkpoint)
        if self.cfg.srp:
            if not isinstance(criterion, SRPCriterion):
                raise ValueError("--srp distils from the --pretrained-model teacher: it needs --criterion srp "
                                 f"(got {getattr(cfg, '_name', type(criterion).__name__)})")
            criterion.set_teacher(self.teacher)
        return criterion

    # ---- data ----------------------------------------------------------------------------------
    def get_batch_iterator(self, dataset, *args, **kwargs):
        itr = super().get_batch_iterator(dataset, *args, **kwargs)
        if dataset is self.datasets.get(self.cfg.train_subset) and not kwargs.get("disable_iterator_cache"):
            self.train_itr = itr
        return itr

    def updates_per_epoch(self) -> int:
        if self.train_itr is None:
            raise RuntimeError("SRP: the training epoch iterator is unknown, cannot lay out the schedule")
        freq = self.cfg.update_freq  # fairseq's per-epoch list; the last value holds afterwards
        freq = int(freq[min(self.epoch, len(freq)) - 1]) if hasattr(freq, "__len__") else int(freq)
        return max(1, -(-len(self.train_itr) // freq))

    def scoring_batches(self, model) -> List[dict]:
        """``--srp-score-batches`` training batches, the same for every run (fixed seed); each
        data-parallel worker takes its own shard and the scores are summed over workers."""
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        rank = dist.get_rank() if world > 1 else 0
        itr = self.get_batch_iterator(
            self.dataset(self.cfg.train_subset),
            max_tokens=self.cfg.srp_score_max_tokens,
            max_positions=utils.resolve_max_positions(self.max_positions(), model.max_positions()),
            ignore_invalid_inputs=True,
            seed=self.cfg.seed,
            num_shards=world,
            shard_id=rank,
            epoch=1,
            disable_iterator_cache=True,
        ).next_epoch_itr(shuffle=True)
        device = next(model.parameters()).device
        batches = []
        for sample in itr:
            if len(batches) == self.cfg.srp_score_batches:
                break
            if sample:
                batches.append(utils.move_to_cuda(sample, device) if device.type == "cuda" else sample)
        return batches

    # ---- hooks ---------------------------------------------------------------------------------
    def begin_epoch(self, epoch, model):
        super().begin_epoch(epoch, model)
        self.epoch = epoch

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        if self.controller is not None:
            self.controller.before_update(_unwrap(model), criterion, optimizer, update_num)
        return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)

    def optimizer_step(self, optimizer, model, update_num):
        super().optimizer_step(optimizer, model, update_num)
        if self.controller is not None:
            self.controller.after_update(_unwrap(model), optimizer, update_num)


def _unwrap(model):
    while hasattr(model, "module") and isinstance(getattr(model, "module"), torch.nn.Module):
        model = model.module
    return model


@register_task("SRPtranslation", dataclass=SRPTranslationConfig)
class SRPTranslationAliasTask(SRPTranslationTask):
    """The original's task name."""
