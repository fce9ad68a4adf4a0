"""Criterion ``trbert``: the TR-BERT training stages on fairseq's ``sentence_prediction`` task.

``--trbert-stage``
  * ``init``  fit each policy's probabilities to the rank targets ``1 - rank/n`` of the residual
    scores (length-normalised L1); every token is kept; only the policies train.
  * ``rl``    policy-only REINFORCE: each batch is replicated K times (``--trbert-rollouts``), actions
    are sampled, reward ``-loss - alpha·mean_w kept_w/n``, baseline = mean reward of the example's
    K rollouts; for the first ``--guide-rate`` of the updates rollout 0 takes the expert action.
  * ``joint`` all parameters train: task loss averaged over the rollouts plus the REINFORCE term.
With ``--trbert-kd`` the task loss (and so the reward) is the soft cross-entropy against a frozen
teacher (``--teacher-path``, the fine-tuned model) at temperature 1.

In eval mode (validation, ``fairseq-validate``) the model keeps p >= 0.5 and the criterion logs the
loss, accuracy, ``rel_flops`` (analytic, policies included) and ``kept_l<k>``, the fraction of the
real tokens alive after the reduction before layer k.
"""
import math
import os
from dataclasses import dataclass, field
from typing import Optional

import torch
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.logging import metrics
from fairseq.logging.meters import safe_round
from omegaconf import II

from user_dir.trbert.flops import pass_macs
from user_dir.trbert.policy import action_log_prob, default_score_layer
from user_dir.trbert.rewards import example_task_loss, init_loss, reinforce_loss, rollout_rewards
from user_dir.trbert.rollouts import ReductionControl
from user_dir.trbert.teacher import FrozenTeacher

STAGES = ["init", "rl", "joint"]


@dataclass
class TrbertCriterionConfig(FairseqDataclass):
    trbert_stage: ChoiceEnum(STAGES) = field(
        default="rl", metadata={"help": "init: fit the policies to residual-score ranks; rl: train "
                                        "only the policies with REINFORCE; joint: train everything"})
    trbert_rollouts: int = field(default=8, metadata={"help": "rollouts K per example (rl, joint)"})
    alpha: float = field(default=1.0, metadata={"help": "length-penalty weight in the reward"})
    guide_rate: Optional[float] = field(
        default=None, metadata={"help": "fraction of the first updates (of --max-update) in which "
                                        "rollout 0 imitates the top-K residual-score tokens "
                                        "(default: 0.5 in the rl stage, 0 otherwise)"})
    trbert_scores: Optional[str] = field(
        default=None, metadata={"help": "residual scores: a file from python -m "
                                        "user_dir.trbert.residual_scores, or 'online' (computed "
                                        "from --teacher-path); needed by init and guided rl"})
    trbert_score_layer: Optional[int] = field(
        default=None, metadata={"help": "hidden state h_S of the online scores (default ceil(3N/4): h_9 of 12 layers, h_5 of 6, as the original)"})
    teacher_path: Optional[str] = field(
        default=None, metadata={"help": "fine-tuned checkpoint used frozen, in eval mode, as "
                                        "teacher (--trbert-kd) and for --trbert-scores online"})
    trbert_kd: bool = field(
        default=False, metadata={"help": "task loss and reward use the teacher's soft labels (T=1)"})
    trbert_share_prefix: bool = field(
        default=False, metadata={"help": "run the layers below the first reduction point once per "
                                         "example and repeat their output for the K rollouts (the "
                                         "original repeats the input: the rollouts then differ there "
                                         "only by dropout); saves compute, same expected gradient"})
    classification_head_name: str = field(default="sentence_classification_head",
                                          metadata={"help": "name of the classification head"})
    regression_target: bool = field(default=False, metadata={"help": "regression task: reward -MSE"})
    max_update: int = II("optimization.max_update")


def check_config(cfg: TrbertCriterionConfig) -> float:
    """Raise a clear error for inconsistent options before anything trains; returns the guide rate."""
    stage = str(cfg.trbert_stage)
    if stage not in STAGES:
        raise ValueError(f"--trbert-stage {stage!r} is unknown; allowed: {', '.join(STAGES)}")
    if cfg.trbert_rollouts < 2 and stage != "init":
        raise ValueError(f"--trbert-rollouts must be >= 2 (the baseline is the mean over the "
                         f"rollouts), got {cfg.trbert_rollouts}")
    if not (math.isfinite(cfg.alpha) and cfg.alpha >= 0):
        raise ValueError(f"--alpha must be a finite number >= 0 (the weight of the kept-token penalty "
                         f"in the reward; a negative one rewards keeping tokens), got {cfg.alpha}")
    guide = cfg.guide_rate if cfg.guide_rate is not None else (0.5 if stage == "rl" else 0.0)
    if not 0.0 <= guide <= 1.0:
        raise ValueError(f"--guide-rate must be in [0, 1], got {guide}")
    if cfg.trbert_kd and not cfg.teacher_path:
        raise ValueError("--trbert-kd needs a teacher: pass --teacher-path FINETUNED.pt")
    if cfg.trbert_scores == "online" and not cfg.teacher_path:
        raise ValueError("--trbert-scores online computes scores from the fine-tuned model: "
                         "pass --teacher-path FINETUNED.pt (or a score file)")
    if cfg.teacher_path and not os.path.isfile(cfg.teacher_path):
        raise FileNotFoundError(f"--teacher-path {cfg.teacher_path}: no such checkpoint")
    if cfg.trbert_scores not in (None, "online") and not os.path.isfile(cfg.trbert_scores):
        raise FileNotFoundError(f"--trbert-scores {cfg.trbert_scores}: no such file (allowed: a "
                                f"file from python -m user_dir.trbert.residual_scores, or 'online')")
    needs_scores = stage == "init" or (guide > 0 and stage != "init")
    if needs_scores and not cfg.trbert_scores:
        why = "the init stage" if stage == "init" else f"--guide-rate {guide}"
        raise ValueError(f"{why} needs residual scores: pass --trbert-scores FILE (python -m "
                         f"user_dir.trbert.residual_scores) or --trbert-scores online with "
                         f"--teacher-path" + ("" if stage == "init" else ", or set --guide-rate 0"))
    if guide > 0 and stage != "init" and not cfg.max_update:
        raise ValueError(f"--guide-rate {guide} is a fraction of --max-update: set --max-update")
    return guide


@register_criterion("trbert", dataclass=TrbertCriterionConfig)
class TrbertCriterion(FairseqCriterion):
    def __init__(self, cfg: TrbertCriterionConfig, task):
        super().__init__(task)
        self.guide_rate = check_config(cfg)
        self.cfg = cfg
        self.stage = str(cfg.trbert_stage)
        self.head = cfg.classification_head_name
        self.regression = cfg.regression_target
        self.teacher = FrozenTeacher(cfg.teacher_path, task) if cfg.teacher_path else None
        # imported here, not at module level: the package imports this criterion, and a module that
        # is already imported when ``python -m user_dir.trbert.residual_scores`` runs makes runpy warn
        from user_dir.trbert.residual_scores import ScoreTable
        self.table = (ScoreTable.load(cfg.trbert_scores)
                      if cfg.trbert_scores not in (None, "online") else None)
        self._checked_model = False
        self._checked_frozen = False

    # ---- consistency with the model (the first batch, before any update) ----------------------
    def check_model(self, model):
        if not self._checked_model:
            self.check_model_shape(model)
            self._checked_model = True
        if model.training and not self._checked_frozen:
            frozen = all(not p.requires_grad for n, p in model.named_parameters()
                         if ".policies." not in f".{n}")
            if self.stage in ("init", "rl") and not frozen:
                raise ValueError(f"--trbert-stage {self.stage} trains only the policies, but the "
                                 f"model's encoder is trainable: build it with the same --trbert-stage")
            self._checked_frozen = True

    def check_model_shape(self, model):
        if not hasattr(model, "reduce_layers"):
            raise ValueError("criterion trbert needs a TR-BERT model: --arch trbert_roberta, "
                             "trbert_roberta_base or trbert_roberta_minilm")
        if self.head not in model.classification_heads:
            raise ValueError(f"model has no classification head {self.head!r}")
        if self.table is not None and self.table.reduce_layers != list(model.reduce_layers):
            raise ValueError(f"--trbert-scores were computed for reduction points "
                             f"{self.table.reduce_layers}, the model reduces before "
                             f"{model.reduce_layers} (--trbert-reduce-layers)")

    def forward(self, model, sample, reduce=True):
        self.check_model(model)
        tokens = sample["net_input"]["src_tokens"]
        targets = model.get_targets(sample, None)
        targets = targets.view(tokens.size(0), -1).float() if self.regression else targets.view(-1)
        if not model.training:
            return self.evaluate(model, sample, tokens, targets)
        if self.stage == "init":
            return self.init_step(model, sample, tokens, targets)
        return self.rollout_step(model, sample, tokens, targets)

    def evaluate(self, model, sample, tokens, targets):
        logits, extra = model(tokens, features_only=True, classification_head_name=self.head)
        losses = example_task_loss(logits, targets, self.regression)
        loss = losses.sum()
        log = self.base_log(loss, sample, logits, targets)
        log.update(self.reduction_log(model, extra["trbert"]))
        return loss, tokens.size(0), log

    def init_step(self, model, sample, tokens, targets):
        control = ReductionControl("keep_all")
        logits, _ = model(tokens, features_only=True, classification_head_name=self.head, reduction=control)
        scores = self.scores(model, sample, tokens, targets)
        per_example = sum(init_loss(p.logits, scores[..., w], p.active) for w, p in enumerate(control.points))
        loss = per_example.sum()
        log = self.base_log(loss, sample, logits, targets)
        log.update(self.reduction_log(model, control))
        return loss, tokens.size(0), log

    def rollout_step(self, model, sample, tokens, targets):
        k = self.cfg.trbert_rollouts
        bsz = tokens.size(0)
        share = self.cfg.trbert_share_prefix
        control = ReductionControl("sample", repeat=k if share else 1)
        guided = self.guide_rate > 0 and model.num_updates < self.guide_rate * self.cfg.max_update
        if guided:
            scores = self.scores(model, sample, tokens, targets)
            control.guide_scores = scores.repeat_interleave(k, dim=0)
            control.guide_rows = torch.arange(bsz * k, device=tokens.device) % k == 0
        teacher_logits = None
        if self.cfg.trbert_kd:
            teacher_logits = self.teacher.logits(tokens, self.head).repeat_interleave(k, dim=0)
        logits, _ = model(tokens if share else tokens.repeat_interleave(k, dim=0), features_only=True,
                          classification_head_name=self.head, reduction=control)
        losses = example_task_loss(logits, targets.repeat_interleave(k, dim=0), self.regression, teacher_logits)
        rewards = rollout_rewards(losses.detach(), control.kept_counts(), control.lengths, self.cfg.alpha)
        log_probs = sum(action_log_prob(p.logits, p.keep, p.active) for p in control.points)
        rl_loss, _ = reinforce_loss(rewards.view(bsz, k), log_probs.view(bsz, k))
        task_loss = losses.view(bsz, k).mean(dim=1).sum()
        loss = rl_loss + task_loss if self.stage == "joint" else rl_loss
        log = self.base_log(loss, sample, logits, targets.repeat_interleave(k, dim=0), weight=1.0 / k)
        log.update(self.reduction_log(model, control, weight=1.0 / k))
        log.update(task_loss=task_loss.detach(), rl_loss=rl_loss.detach(),
                   reward=rewards.sum().detach() / k, guided=float(guided) * bsz)
        return loss, bsz, log

    def scores(self, model, sample, tokens, targets):
        if self.table is not None:
            return self.table.lookup(sample["id"], tokens, model.sentence_encoder.padding_idx)
        layers = list(model.reduce_layers)
        score_layer = self.cfg.trbert_score_layer or default_score_layer(len(model.layers), layers)
        teacher = self.teacher.model(tokens.device)
        from user_dir.trbert.residual_scores import compute_scores
        return compute_scores(teacher, tokens, targets, layers, score_layer, self.head, self.regression).detach()

    # ---- logging ------------------------------------------------------------------------------
    def base_log(self, loss, sample, logits, targets, weight: float = 1.0):
        log = {"loss": loss.detach(), "ntokens": sample["ntokens"], "nsentences": targets.size(0) * weight,
               "sample_size": sample["target"].size(0)}
        if not self.regression:
            log["ncorrect"] = (logits.argmax(dim=1) == targets).sum().float() * weight
        return log

    def reduction_log(self, model, control: ReductionControl, weight: float = 1.0):
        reduced, full = pass_macs(model.layers, model.sentence_encoder.policies, control)
        log = {"_flops": reduced.sum().item() * weight, "_flops_full": full.sum().item() * weight,
               "_tokens": control.lengths.sum().item() * weight}
        for point in control.points:
            log[f"_kept_l{point.layer}"] = point.kept.sum().item() * weight
        return log

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        def total(key):
            return sum(log.get(key, 0) for log in logging_outputs)

        sample_size = total("sample_size")
        nsentences = total("nsentences")
        metrics.log_scalar("loss", total("loss") / max(sample_size, 1) / math.log(2), sample_size, round=3)
        for key in ("task_loss", "rl_loss"):
            if any(key in log for log in logging_outputs):
                metrics.log_scalar(key, total(key) / max(sample_size, 1) / math.log(2), sample_size, round=3)
        if any("reward" in log for log in logging_outputs):
            metrics.log_scalar("reward", total("reward") / max(sample_size, 1), sample_size, round=4)
            metrics.log_scalar("guided", total("guided") / max(sample_size, 1), sample_size, round=2)
        if logging_outputs and "ncorrect" in logging_outputs[0]:
            metrics.log_scalar("accuracy", 100.0 * total("ncorrect") / max(nsentences, 1), nsentences, round=2)
        hidden = sorted({k for log in logging_outputs for k in log if k.startswith("_")})
        for key in hidden:
            metrics.log_scalar_sum(key, total(key))
        if "_flops" in hidden:
            metrics.log_derived("rel_flops", lambda m: safe_round(m["_flops"].sum / max(m["_flops_full"].sum, 1), 4))
        for key in hidden:
            if key.startswith("_kept_l"):
                metrics.log_derived(key[1:], lambda m, key=key: safe_round(m[key].sum / max(m["_tokens"].sum, 1), 4))

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
