"""Criterion ``srp``: label-smoothed cross-entropy, plus logit distillation when a teacher is attached.

``loss = LS-CE + prob_kd * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))``, summed over target
tokens. The teacher (the ``--pretrained-model`` of an ``--srp`` run, attached by the task) runs in eval
mode without gradients, and padding positions are masked out; the original left the teacher in train
mode (dropout on) and summed the KL over padding as well.
"""
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from fairseq.criterions import register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import (
    LabelSmoothedCrossEntropyCriterion,
    LabelSmoothedCrossEntropyCriterionConfig,
)
from fairseq.logging import metrics


@dataclass
class SRPCriterionConfig(LabelSmoothedCrossEntropyCriterionConfig):
    label_smoothing: float = field(default=0.1, metadata={"help": "epsilon for label smoothing"})
    prob_kd: float = field(default=0.7, metadata={"help": "weight of the logit distillation term"})
    T: float = field(default=10.0, metadata={"help": "distillation temperature"})


@register_criterion("srp", dataclass=SRPCriterionConfig)
class SRPCriterion(LabelSmoothedCrossEntropyCriterion):
    def __init__(self, task, sentence_avg, label_smoothing, ignore_prefix_size=0, report_accuracy=False,
                 prob_kd=0.7, T=10.0):
        super().__init__(task, sentence_avg, label_smoothing, ignore_prefix_size, report_accuracy)
        if prob_kd < 0:
            raise ValueError(f"--prob-kd must be >= 0, got {prob_kd}")
        if T <= 0:
            raise ValueError(f"--T must be > 0, got {T}")
        self.prob_kd = prob_kd
        self.T = T
        # a plain list, not a submodule: the teacher must stay out of the optimizer, the
        # data-parallel wrapper and the checkpoint
        self._teacher = []

    @property
    def teacher(self):
        return self._teacher[0] if self._teacher else None

    def set_teacher(self, teacher):
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        self._teacher = [teacher]

    def forward(self, model, sample, reduce=True):
        net_output = model(**sample["net_input"])
        loss, nll_loss = self.compute_loss(model, net_output, sample, reduce=reduce)
        sample_size = sample["target"].size(0) if self.sentence_avg else sample["ntokens"]
        logging_output = {
            "loss": loss.data,
            "nll_loss": nll_loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": sample["target"].size(0),
            "sample_size": sample_size,
        }
        teacher = self.teacher
        if teacher is not None and self.prob_kd > 0:
            kd = self.kd_loss(teacher, net_output[0], sample, reduce)
            loss = loss + kd
            logging_output["kd_loss"] = kd.data
            logging_output["loss"] = loss.data
        if self.report_accuracy:
            n_correct, total = self.compute_accuracy(model, net_output, sample)
            logging_output["n_correct"] = n_correct.item()
            logging_output["total"] = total.item()
        return loss, sample_size, logging_output

    def kd_loss(self, teacher, student_logits, sample, reduce=True):
        param = next(teacher.parameters())
        if param.device != student_logits.device or param.dtype != student_logits.dtype:
            # the teacher is no submodule, so fairseq's --fp16/--bf16 cast and device move miss it:
            # it runs in the student's precision (half the cost of an fp32 teacher on a GPU)
            teacher.to(device=student_logits.device, dtype=student_logits.dtype)
        teacher.eval()
        with torch.no_grad():
            teacher_logits = teacher(**sample["net_input"])[0]
        t = self.T
        log_p_t = F.log_softmax(teacher_logits.float() / t, dim=-1)
        log_p_s = F.log_softmax(student_logits.float() / t, dim=-1)
        kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)
        kl = kl.masked_fill(sample["target"].eq(self.padding_idx), 0.0)
        kl = self.prob_kd * t * t * kl
        return kl.sum() if reduce else kl.view(-1, 1)

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        super().reduce_metrics(logging_outputs)
        if any("kd_loss" in log for log in logging_outputs):
            kd = sum(log.get("kd_loss", 0) for log in logging_outputs)
            sample_size = sum(log.get("sample_size", 0) for log in logging_outputs)
            metrics.log_scalar("kd_loss", kd / max(sample_size, 1) / math.log(2), sample_size, round=3)
