"""Criterion ``ltp_sentence_prediction``: fairseq's sentence_prediction plus LTP's threshold regulariser.

Soft stage: loss = task loss + lambda * sum_{l>=1} mean_{b,j} m_l[b, j] (per sentence; fairseq sums
the task loss over the batch and divides gradients by the number of sentences, so the regulariser
is added times that number). Whenever the model pruned hard (evaluation, hard stage, top-k) the
criterion also logs the relative encoder FLOPs and the kept-token ratio per layer, aggregated over
the whole validation set from per-example counts.
"""
import math
from dataclasses import dataclass, field

from fairseq.criterions import register_criterion
from fairseq.criterions.sentence_prediction import SentencePredictionConfig, SentencePredictionCriterion
from fairseq.dataclass import ChoiceEnum
from fairseq.logging import metrics

from user_dir.ltp.stats import REG_NORMS


@dataclass
class LtpSentencePredictionConfig(SentencePredictionConfig):
    lambda_threshold: float = field(
        default=0.1,
        metadata={"help": "soft stage: weight of the threshold regulariser (the mean soft mask, "
                          "summed over layers); larger prunes more. >= 0; useful range 0.01 .. 0.2"},
    )
    ltp_reg_norm: ChoiceEnum(REG_NORMS) = field(
        default="tokens",
        metadata={"help": "mean of the soft masks over the real tokens (tokens) or over "
                          "--ltp-score-length padded positions, as the original's fixed padding to 128 "
                          "did (padded: also pushes thresholds up through the padding's masks)"},
    )


def _ltp_encoder(model):
    encoder = getattr(getattr(model, "encoder", None), "sentence_encoder", None)
    if encoder is None or not hasattr(encoder, "last_stats") or not hasattr(encoder, "ltp"):
        raise ValueError("--criterion ltp_sentence_prediction needs an LTP model: use --arch "
                         "ltp_roberta_minilm, ltp_roberta_base or ltp_roberta")
    return encoder


@register_criterion("ltp_sentence_prediction", dataclass=LtpSentencePredictionConfig)
class LtpSentencePredictionCriterion(SentencePredictionCriterion):
    def __init__(self, cfg: LtpSentencePredictionConfig, task):
        super().__init__(cfg, task)
        if not (math.isfinite(cfg.lambda_threshold) and cfg.lambda_threshold >= 0):
            raise ValueError(f"--lambda-threshold must be a finite number >= 0, got {cfg.lambda_threshold}")
        if cfg.ltp_reg_norm not in REG_NORMS:
            raise ValueError(f"--ltp-reg-norm must be one of {', '.join(REG_NORMS)}; got {cfg.ltp_reg_norm!r}")
        self.lambda_threshold = cfg.lambda_threshold
        self.reg_norm = str(cfg.ltp_reg_norm)

    def forward(self, model, sample, reduce=True):
        encoder = _ltp_encoder(model)
        loss, sample_size, logging_output = super().forward(model, sample, reduce)
        stats = encoder.last_stats
        reg = stats.regularizer(self.reg_norm)
        if reg is not None:
            if self.lambda_threshold > 0:
                loss = loss + self.lambda_threshold * sample_size * reg.to(loss.dtype)
            logging_output["loss"] = loss.data
            logging_output["ltp_reg"] = float(reg.detach()) * sample_size
        if stats.hard or not model.training:
            spent, full = stats.macs(encoder.layer_dims())
            logging_output["ltp_macs"] = spent
            logging_output["ltp_macs_full"] = full
            logging_output["ltp_tokens"] = float(stats.n0.sum())
            for idx, kept in enumerate(stats.kept_tokens()):
                logging_output[f"ltp_kept_{idx}"] = kept
        thresholds = stats.thresholds.detach()
        if encoder.ltp.prune_mode == "absolute_threshold":
            # weighted by the batch so that summing over workers and batches gives a mean
            for idx in range(1, thresholds.numel()):
                logging_output[f"ltp_thr_{idx}"] = float(thresholds[idx]) * sample_size
        return loss, sample_size, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        SentencePredictionCriterion.reduce_metrics(logging_outputs)
        total = lambda key: sum(log.get(key, 0) for log in logging_outputs)  # noqa: E731
        sample_size = total("sample_size")
        if sample_size and any("ltp_reg" in log for log in logging_outputs):
            metrics.log_scalar("ltp_reg", total("ltp_reg") / sample_size, sample_size, round=4)
        full = total("ltp_macs_full")
        if full:
            # logged as value x weight so that fairseq's averaging meters give sum / sum exactly
            metrics.log_scalar("rel_flops", total("ltp_macs") / full, full, round=4)
            tokens = total("ltp_tokens")
            idx = 0
            while any(f"ltp_kept_{idx}" in log for log in logging_outputs):
                metrics.log_scalar(f"keep_l{idx}", total(f"ltp_kept_{idx}") / tokens, tokens, round=4)
                idx += 1
        idx = 1
        while sample_size and any(f"ltp_thr_{idx}" in log for log in logging_outputs):
            metrics.log_scalar(f"thr_l{idx}", total(f"ltp_thr_{idx}") / sample_size, sample_size, round=5)
            idx += 1
