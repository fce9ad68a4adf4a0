"""Model ``prunable_roberta``: fairseq's RoBERTa with the prunable encoder core.

Parameter names equal stock RoBERTa's, so a stock (or converted BERT) checkpoint restores into it,
and a structurally pruned model is rebuilt by stock tools from two config fields,
``encoder_layer_heads`` and ``encoder_layer_ffn_dims``. LTP and TR-BERT subclass it (their
encoders subclass :class:`PrunableTransformerEncoder`), so token pruning composes with structured
pruning on one model.
"""
import logging
from typing import Sequence

import torch
from fairseq.models import register_model, register_model_architecture
from fairseq.models.roberta.model import (
    RobertaEncoder,
    RobertaModel,
    base_architecture as roberta_base_architecture,
)
from fairseq.modules.transformer_sentence_encoder import init_bert_params
from fairseq.utils import safe_getattr
from omegaconf import OmegaConf

from user_dir.common.prunable_encoder import PrunableTransformerEncoder, format_sizes

logger = logging.getLogger(__name__)

def add_prunable_encoder_args(parser):
    parser.add_argument("--encoder-layer-heads", type=str, metavar="H1,H2,...",
                        help="attention heads kept in each encoder layer (default: all); "
                             "the head size stays encoder_embed_dim / encoder_attention_heads")
    parser.add_argument("--encoder-layer-ffn-dims", type=str, metavar="F1,F2,...",
                        help="FFN neurons kept in each encoder layer (default: all)")
    parser.add_argument("--layernorm-eps", type=float, metavar="EPS",
                        help="LayerNorm epsilon (BERT checkpoints use 1e-12, fairseq 1e-5)")


class PrunableRobertaEncoder(RobertaEncoder):
    sentence_encoder_class = PrunableTransformerEncoder

    def build_encoder(self, args, dictionary, embed_tokens):
        encoder = self.sentence_encoder_class(args, dictionary, embed_tokens)
        encoder.apply(init_bert_params)
        return encoder


@register_model("prunable_roberta")
class PrunableRobertaModel(RobertaModel):
    encoder_class = PrunableRobertaEncoder

    @staticmethod
    def add_args(parser):
        RobertaModel.add_args(parser)
        add_prunable_encoder_args(parser)

    @classmethod
    def build_model(cls, args, task):
        # a class count that disagrees with label/dict.txt fails here, not at the first step; imported
        # here so that `python -m user_dir.common.data_classes` does not import itself twice
        from user_dir.common.data_classes import check_task
        check_task(task)
        if OmegaConf.is_config(args):
            OmegaConf.set_struct(args, False)
        prunable_base_architecture(args)
        if not safe_getattr(args, "max_positions", None):
            args.max_positions = safe_getattr(args, "tokens_per_sample", None) or task.max_positions()
        encoder = cls.encoder_class(args, task.source_dictionary)
        if OmegaConf.is_config(args):
            OmegaConf.set_struct(args, True)
        return cls(args, encoder)

    @property
    def layers(self):
        return self.encoder.sentence_encoder.layers

    def prune_structure(self, keep_heads: Sequence[torch.Tensor], keep_neurons: Sequence[torch.Tensor]):
        """Physically keep the given heads and FFN neurons of every layer (indices per layer).

        The config fields are updated too, so a saved checkpoint rebuilds with the new shapes.
        """
        if len(keep_heads) != len(self.layers) or len(keep_neurons) != len(self.layers):
            raise ValueError("prune_structure needs one index tensor per layer for heads and neurons")
        for layer, heads, neurons in zip(self.layers, keep_heads, keep_neurons):
            layer.prune_heads(heads)
            layer.prune_ffn(neurons)
        self.sync_shape_args()

    def load_state_dict(self, state_dict, strict=True, model_cfg=None, args=None):
        """Load weights; a structurally pruned state dict is adopted when no sizes were configured.

        ``fairseq-train --restore-file pruned.pt`` builds the model from the command line, i.e. at
        the architecture's full sizes. When neither ``--encoder-layer-heads`` nor
        ``--encoder-layer-ffn-dims`` was given and the checkpoint's layers are smaller, the model
        is first cut to the checkpoint's per-layer sizes (the weights are then overwritten by the
        load), and ``args`` record them, so the new run's checkpoints rebuild too. Explicit sizes
        are never overridden: a mismatch then fails as usual.
        """
        self._check_vocabulary(state_dict)
        self._adopt_pruned_sizes(state_dict)
        return super().load_state_dict(state_dict, strict=strict, model_cfg=model_cfg, args=args)

    def _check_vocabulary(self, state_dict):
        """A checkpoint of another dictionary would fail as a bare size mismatch (and fairseq-train
        reports only "please ensure that the architectures match"): say what does not match."""
        key = "encoder.sentence_encoder.embed_tokens.weight"
        theirs = state_dict.get(key)
        ours = self.encoder.sentence_encoder.embed_tokens.weight
        if theirs is not None and theirs.dim() == 2 and theirs.size(0) != ours.size(0):
            raise ValueError(f"the checkpoint's vocabulary has {theirs.size(0)} entries, the dictionary of "
                             f"this run (DATA/input0/dict.txt) has {ours.size(0)}: a checkpoint loads only "
                             "with the dictionary it was trained on")

    def _adopt_pruned_sizes(self, state_dict):
        if safe_getattr(self.args, "encoder_layer_heads", None) or \
                safe_getattr(self.args, "encoder_layer_ffn_dims", None):
            return
        heads, ffn = [], []
        for i, layer in enumerate(self.layers):
            prefix = f"encoder.sentence_encoder.layers.{i}."
            q = state_dict.get(prefix + "self_attn.q_proj.weight")
            fc1 = state_dict.get(prefix + "fc1.weight")
            head_dim = layer.self_attn.head_dim
            if q is None or fc1 is None or q.size(0) % head_dim:
                return  # not a layer of ours: leave the mismatch to the strict load
            if q.size(0) // head_dim > layer.num_heads or fc1.size(0) > layer.ffn_dim:
                return  # larger than the architecture: cannot be a pruned version of it
            heads.append(q.size(0) // head_dim)
            ffn.append(fc1.size(0))
        if (heads, ffn) == self.encoder.sentence_encoder.layer_sizes():
            return
        logger.info(f"adopting the checkpoint's pruned layer sizes: heads {format_sizes(heads)}, "
                    f"FFN {format_sizes(ffn)}")
        self.prune_structure([torch.arange(h) for h in heads], [torch.arange(f) for f in ffn])

    def sync_shape_args(self):
        """Write the current per-layer sizes into ``self.args`` (what checkpoints store)."""
        heads, ffn = self.encoder.sentence_encoder.layer_sizes()
        self.args.encoder_layer_heads = format_sizes(heads)
        self.args.encoder_layer_ffn_dims = format_sizes(ffn)
        return heads, ffn


@register_model_architecture("prunable_roberta", "prunable_roberta")
def prunable_base_architecture(args):
    args.encoder_layer_heads = safe_getattr(args, "encoder_layer_heads", None)
    args.encoder_layer_ffn_dims = safe_getattr(args, "encoder_layer_ffn_dims", None)
    args.layernorm_eps = safe_getattr(args, "layernorm_eps", 1e-5)
    roberta_base_architecture(args)


@register_model_architecture("prunable_roberta", "prunable_roberta_base")
def prunable_roberta_base_architecture(args):
    """The shape of fairseq's ``roberta.base`` (12 layers, 768, 12 heads, FFN 3072)."""
    prunable_base_architecture(args)


def minilm_shape(args):
    """all-MiniLM-L6-v2: a 6-layer BERT, hidden 384, 12 heads of 32, FFN 1536, GELU, post-LN."""
    args.encoder_layers = safe_getattr(args, "encoder_layers", 6)
    args.encoder_embed_dim = safe_getattr(args, "encoder_embed_dim", 384)
    args.encoder_ffn_embed_dim = safe_getattr(args, "encoder_ffn_embed_dim", 1536)
    args.encoder_attention_heads = safe_getattr(args, "encoder_attention_heads", 12)
    args.max_positions = safe_getattr(args, "max_positions", 512)


@register_model_architecture("prunable_roberta", "prunable_roberta_minilm")
def prunable_roberta_minilm_architecture(args):
    minilm_shape(args)
    args.layernorm_eps = safe_getattr(args, "layernorm_eps", 1e-12)  # BERT's, for exact conversion
    prunable_base_architecture(args)


@register_model_architecture("roberta", "roberta_minilm")
def roberta_minilm_architecture(args):
    """The MiniLM shape on fairseq's stock ``roberta`` model (LayerNorm eps fixed at 1e-5 there)."""
    minilm_shape(args)
    roberta_base_architecture(args)
