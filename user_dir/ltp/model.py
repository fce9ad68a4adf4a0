"""Model ``ltp_roberta``: the prunable RoBERTa with learned token pruning, and its architectures.

It restores any fine-tuned ``roberta``/``prunable_roberta`` checkpoint of the same shape (the
thresholds, absent there, start at delta = 0) and composes with structured pruning
(``--encoder-layer-heads/--encoder-layer-ffn-dims``).
"""
from fairseq.models import register_model, register_model_architecture
from fairseq.utils import safe_getattr
from omegaconf import OmegaConf

from user_dir.common.prunable_roberta import (
    PrunableRobertaEncoder,
    PrunableRobertaModel,
    minilm_shape,
    prunable_base_architecture,
)
from user_dir.ltp.encoder import LtpTransformerEncoder
from user_dir.ltp.options import LtpOptionError, add_ltp_args, ltp_architecture_defaults


class LtpRobertaEncoder(PrunableRobertaEncoder):
    sentence_encoder_class = LtpTransformerEncoder


@register_model("ltp_roberta")
class LtpRobertaModel(PrunableRobertaModel):
    encoder_class = LtpRobertaEncoder

    @staticmethod
    def add_args(parser):
        PrunableRobertaModel.add_args(parser)
        add_ltp_args(parser)

    @classmethod
    def build_model(cls, args, task):
        if OmegaConf.is_config(args):
            OmegaConf.set_struct(args, False)  # the parent sets it back after adding its defaults
        ltp_base_architecture(args)
        model = super().build_model(args, task)
        _check_optimizer(args, model.ltp_encoder.ltp)
        return model

    @property
    def ltp_encoder(self) -> LtpTransformerEncoder:
        return self.encoder.sentence_encoder


def _check_optimizer(args, ltp):
    """The soft stage needs the thresholds in their own parameter group, which ltp_adam builds.

    fairseq-train hands the model its whole command line, so a wrong --optimizer is caught here,
    before any training; fairseq-validate sees the training run's options and passes.
    """
    optimizer = safe_getattr(args, "optimizer", None)
    if ltp.learns_thresholds and isinstance(optimizer, str) and optimizer != "ltp_adam":
        raise LtpOptionError(
            f"--masking-mode soft learns the LTP thresholds in their own parameter group (own lr, no "
            f"weight decay): use --optimizer ltp_adam (Adam with that group), not {optimizer!r}")


@register_model_architecture("ltp_roberta", "ltp_roberta")
def ltp_base_architecture(args):
    ltp_architecture_defaults(args)
    prunable_base_architecture(args)


@register_model_architecture("ltp_roberta", "ltp_roberta_base")
def ltp_roberta_base_architecture(args):
    """The shape of fairseq's ``roberta.base`` (12 layers, 768, 12 heads, FFN 3072)."""
    ltp_base_architecture(args)


@register_model_architecture("ltp_roberta", "ltp_roberta_minilm")
def ltp_roberta_minilm_architecture(args):
    """all-MiniLM-L6-v2's shape (6 layers, 384, 12 heads, FFN 1536) and BERT's LayerNorm eps."""
    minilm_shape(args)
    args.layernorm_eps = safe_getattr(args, "layernorm_eps", 1e-12)
    ltp_base_architecture(args)
