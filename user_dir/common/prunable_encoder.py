"""fairseq's Transformer encoder with per-layer head/FFN sizes and a per-layer hook for token pruning.

It keeps everything of ``TransformerEncoder`` that matters to checkpoints and tools (embeddings,
positions, ``layernorm_embedding``, ``version``, parameter names) and replaces the layers and the
layer loop. The loop runs batch-first and calls :meth:`forward_layer` once per layer; token-pruning
methods override that one method to drop tokens inside or before a layer (the padding mask that
comes back may be shorter than the one that went in).
"""
from typing import List, Optional, Tuple

import torch
from fairseq.models.transformer import TransformerEncoder

from user_dir.common.prunable_encoder_layer import PrunableEncoderLayer


def _parse_sizes(value, name: str, num_layers: int, default: int, upper: int) -> List[int]:
    if value in (None, ""):
        return [default] * num_layers
    if isinstance(value, str):
        try:
            sizes = [int(v) for v in value.split(",")]
        except ValueError:
            raise ValueError(f"--{name} must be comma-separated integers, got {value!r}") from None
    else:
        sizes = [int(v) for v in value]
    if len(sizes) != num_layers:
        raise ValueError(f"--{name} needs one value per layer ({num_layers}), got {len(sizes)}: {value!r}")
    bad = [s for s in sizes if not 0 <= s <= upper]
    if bad:
        raise ValueError(f"--{name} values must be in [0, {upper}], got {bad}")
    return sizes


def layer_shapes(args) -> Tuple[List[int], List[int]]:
    """Per-layer (heads, FFN neurons) from ``--encoder-layer-heads`` / ``--encoder-layer-ffn-dims``.

    Unset means the uniform architecture. Counts may only shrink from the architecture's sizes:
    the head size is ``encoder_embed_dim / encoder_attention_heads`` of the unpruned model.
    """
    heads = _parse_sizes(getattr(args, "encoder_layer_heads", None), "encoder-layer-heads",
                         args.encoder_layers, args.encoder_attention_heads, args.encoder_attention_heads)
    ffn = _parse_sizes(getattr(args, "encoder_layer_ffn_dims", None), "encoder-layer-ffn-dims",
                       args.encoder_layers, args.encoder_ffn_embed_dim, args.encoder_ffn_embed_dim)
    return heads, ffn


def format_sizes(sizes) -> str:
    return ",".join(str(int(s)) for s in sizes)


class PrunableTransformerEncoder(TransformerEncoder):
    def __init__(self, args, dictionary, embed_tokens):
        if getattr(args, "checkpoint_activations", False):
            raise ValueError("--checkpoint-activations is not supported by the prunable encoder")
        if args.encoder_embed_dim % args.encoder_attention_heads != 0:
            raise ValueError("--encoder-embed-dim must be divisible by --encoder-attention-heads")
        heads, ffn = layer_shapes(args)
        # fairseq's constructor calls build_encoder_layer(cfg) once per layer, in order, without
        # an index: hand out the per-layer shapes from this queue
        self._shape_queue = list(zip(heads, ffn))
        super().__init__(args, dictionary, embed_tokens)
        del self._shape_queue
        eps = getattr(args, "layernorm_eps", 1e-5)
        for norm in (self.layernorm_embedding, self.layer_norm):
            if norm is not None:
                norm.eps = eps
        for idx, layer in enumerate(self.layers):
            layer.layer_idx = idx

    def build_encoder_layer(self, cfg):
        heads, ffn = self._shape_queue.pop(0)
        return PrunableEncoderLayer(
            embed_dim=cfg.encoder.embed_dim,
            num_heads=heads,
            head_dim=cfg.encoder.embed_dim // cfg.encoder.attention_heads,
            ffn_dim=ffn,
            dropout=cfg.dropout,
            attention_dropout=cfg.attention_dropout,
            activation_dropout=cfg.activation_dropout,
            activation_fn=cfg.activation_fn,
            normalize_before=cfg.encoder.normalize_before,
            layernorm_eps=getattr(self.args, "layernorm_eps", 1e-5),
        )

    def layer_sizes(self) -> Tuple[List[int], List[int]]:
        return [l.num_heads for l in self.layers], [l.ffn_dim for l in self.layers]

    def forward_layer(
        self, layer: PrunableEncoderLayer, x: torch.Tensor, padding_mask: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Run one layer on batch-first ``x``; token-pruning subclasses override this."""
        return layer(x, padding_mask if padding_mask.any() else None), padding_mask

    def forward_scriptable(
        self,
        src_tokens,
        src_lengths: Optional[torch.Tensor] = None,
        return_all_hiddens: bool = False,
        token_embeddings: Optional[torch.Tensor] = None,
    ):
        padding_mask = src_tokens.eq(self.padding_idx)
        x, embedding = self.forward_embedding(src_tokens, token_embeddings)
        x = x * (~padding_mask).unsqueeze(-1).type_as(x)
        states = [x.transpose(0, 1)] if return_all_hiddens else []
        for layer in self.layers:
            x, padding_mask = self.forward_layer(layer, x, padding_mask)
            if return_all_hiddens:
                states.append(x.transpose(0, 1))
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        lengths = (~padding_mask).sum(dim=1, dtype=torch.int32).reshape(-1, 1)
        return {
            "encoder_out": [x.transpose(0, 1)],  # T x B x C, as fairseq's encoders return
            "encoder_padding_mask": [padding_mask],  # B x T (T may be shorter than the input)
            "encoder_embedding": [embedding],  # B x T_in x C
            "encoder_states": states,  # T x B x C each; lengths may differ under token pruning
            "fc_results": [],
            "src_tokens": [],
            "src_lengths": [lengths],
        }

    def upgrade_state_dict_named(self, state_dict, name):
        # fairseq's version only renames pre-2019 layer-norm keys, which RoBERTa-era checkpoints
        # never have; our layers have no such legacy names to upgrade
        return state_dict
