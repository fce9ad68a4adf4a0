"""Model ``trbert_roberta``: the prunable RoBERTa with TR-BERT's token-selection policies.

Archs: ``trbert_roberta`` / ``trbert_roberta_base`` (12 layers, reduction before layers 1 and 6)
and ``trbert_roberta_minilm`` (6 layers, reduction before layers 1 and 3). A fine-tuned
``prunable_roberta`` checkpoint restores into it: missing policy weights are filled with fresh ones
(what the first TR-BERT stage starts from, and all that ``--trbert-select attention_topk`` needs).

At inference (eval mode) ``--trbert-select`` chooses how tokens are kept: ``policy`` (p >= 0.5, the
default), or a fixed budget per reduction point (``--trbert-keep-ratios``) ranked by policy
probability (``policy_topk``) or by received attention (``attention_topk``); see
:mod:`user_dir.trbert.selection`.

The training stage (``--trbert-stage``) is a criterion option; the model reads it from the same
command line because it decides which parameters train, and fairseq builds the optimizer from the
parameters that require gradients right after building the model. In the ``init`` and ``rl``
stages only the policies train (dropout stays on, as in the original).
"""
import logging
from typing import Optional

from fairseq.models import register_model, register_model_architecture
from fairseq.utils import safe_getattr

from user_dir.common.prunable_roberta import (
    PrunableRobertaEncoder,
    PrunableRobertaModel,
    minilm_shape,
    prunable_base_architecture,
)
from user_dir.trbert.encoder import TrbertTransformerEncoder
from user_dir.trbert.rollouts import ReductionControl
from user_dir.trbert.selection import SELECT_MODES

logger = logging.getLogger(__name__)

POLICY_ONLY_STAGES = ("init", "rl")


class TrbertRobertaEncoder(PrunableRobertaEncoder):
    sentence_encoder_class = TrbertTransformerEncoder


@register_model("trbert_roberta")
class TrbertRobertaModel(PrunableRobertaModel):
    encoder_class = TrbertRobertaEncoder

    @staticmethod
    def add_args(parser):
        PrunableRobertaModel.add_args(parser)
        parser.add_argument("--trbert-reduce-layers", type=str, metavar="K1,K2",
                            help="0-based layers before which tokens are reduced (default: 1 and "
                                 "N/2, the paper's two points: 1,6 for 12 layers, 1,3 for 6)")
        parser.add_argument("--trbert-policy-dim", type=int, metavar="H",
                            help="hidden size of each policy network (default: 32)")
        parser.add_argument("--trbert-select", choices=SELECT_MODES,
                            help="how tokens are kept at inference (eval mode; training always "
                                 "samples the policies): policy = the policies' p >= 0.5 (default, "
                                 "TR-BERT); policy_topk = per example the round(r*n) active tokens "
                                 "with the highest policy probability; attention_topk = the round(r*n) "
                                 "tokens that received the most attention in the layer before the "
                                 "point (no policy runs). r from --trbert-keep-ratios, n = the "
                                 "example's tokens entering the point except <s> (always kept)")
        parser.add_argument("--trbert-keep-ratios", type=str, metavar="R1,R2",
                            help="kept ratio r in [0, 1] of the active tokens at each reduction "
                                 "point, one per point; required by --trbert-select policy_topk "
                                 "and attention_topk")

    @classmethod
    def build_model(cls, args, task):
        model = super().build_model(args, task)
        model.num_updates = 0
        model.policies_only = safe_getattr(args, "trbert_stage", None) in POLICY_ONLY_STAGES
        if model.policies_only:
            model.train_policies_only()
        return model

    @property
    def sentence_encoder(self) -> TrbertTransformerEncoder:
        return self.encoder.sentence_encoder

    @property
    def reduce_layers(self):
        return self.sentence_encoder.reduce_layers

    def train_policies_only(self):
        """Freeze everything but the policies (encoder, embeddings and classification heads)."""
        for name, param in self.named_parameters():
            param.requires_grad = ".policies." in f".{name}"

    def register_classification_head(self, name, num_classes=None, inner_dim=None, **kwargs):
        super().register_classification_head(name, num_classes, inner_dim, **kwargs)
        # the task registers the head after build_model: freeze it too
        if getattr(self, "policies_only", False):
            self.train_policies_only()

    def set_num_updates(self, num_updates):
        self.num_updates = num_updates
        super().set_num_updates(num_updates)

    def forward(self, src_tokens, features_only=False, return_all_hiddens=False,
                classification_head_name=None, reduction: Optional[ReductionControl] = None, **kwargs):
        """RoBERTa's forward; ``extra["trbert"]`` is the :class:`ReductionControl` of this pass.

        Without ``reduction`` the policies sample in training mode; in eval mode the tokens are kept
        as ``--trbert-select`` says (by default p >= 0.5).
        """
        control = reduction if reduction is not None else ReductionControl.default(self.training)
        self.sentence_encoder.control = control
        try:
            x, extra = super().forward(src_tokens, features_only, return_all_hiddens,
                                       classification_head_name, **kwargs)
        finally:
            self.sentence_encoder.control = None
        extra["trbert"] = control
        return x, extra

    def upgrade_state_dict_named(self, state_dict, name):
        super().upgrade_state_dict_named(state_dict, name)
        # a plain fine-tuned encoder has no policies yet: start them from this model's init
        prefix = (name + "." if name else "") + "encoder.sentence_encoder.policies."
        missing = [k for k in self.sentence_encoder.policies.state_dict() if prefix + k not in state_dict]
        if missing:
            logger.info("checkpoint has no TR-BERT policies; initialising %d policy tensors (fresh: "
                        "train them with the trbert criterion, or select with --trbert-select "
                        "attention_topk, which does not use them)", len(missing))
            for k, v in self.sentence_encoder.policies.state_dict().items():
                state_dict.setdefault(prefix + k, v)


@register_model_architecture("trbert_roberta", "trbert_roberta")
def trbert_base_architecture(args):
    args.trbert_reduce_layers = safe_getattr(args, "trbert_reduce_layers", None)
    args.trbert_policy_dim = safe_getattr(args, "trbert_policy_dim", 32)
    args.trbert_select = safe_getattr(args, "trbert_select", "policy")
    args.trbert_keep_ratios = safe_getattr(args, "trbert_keep_ratios", None)
    prunable_base_architecture(args)


@register_model_architecture("trbert_roberta", "trbert_roberta_base")
def trbert_roberta_base_architecture(args):
    trbert_base_architecture(args)


@register_model_architecture("trbert_roberta", "trbert_roberta_minilm")
def trbert_roberta_minilm_architecture(args):
    minilm_shape(args)
    args.layernorm_eps = safe_getattr(args, "layernorm_eps", 1e-12)
    trbert_base_architecture(args)
