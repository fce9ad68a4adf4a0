"""The prunable encoder with TR-BERT's policies: tokens are dropped before the reduction layers.

Only :meth:`forward_layer` of the core changes. Before a reduction layer the tokens to keep are
chosen (``<s>`` is always kept): in training by the :class:`ReductionControl` of the current pass
from the policies' probabilities, at inference by the model's ``--trbert-select`` (the policies'
p >= 0.5, or a fixed per-point budget ranked by policy probability or by received attention, see
:mod:`user_dir.trbert.selection`). The kept tokens are gathered per example and re-padded
(``gather_tokens``), so the later layers really run on fewer tokens and no example's selection
depends on its batch mates. Dropped tokens are gone for the rest of the encoder: classification
reads ``<s>`` only.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn

from user_dir.common.prunable_encoder import PrunableTransformerEncoder
from user_dir.common.token_gather import gather_tokens
from user_dir.trbert.policy import TokenPolicy, parse_reduce_layers
from user_dir.trbert.rollouts import PointTrace, ReductionControl
from user_dir.trbert.selection import parse_keep_ratios, parse_select, received_attention, topk_keep


class TrbertTransformerEncoder(PrunableTransformerEncoder):
    def __init__(self, args, dictionary, embed_tokens):
        super().__init__(args, dictionary, embed_tokens)
        self.reduce_layers = parse_reduce_layers(getattr(args, "trbert_reduce_layers", None), len(self.layers))
        self.policies = nn.ModuleList(
            TokenPolicy(args.encoder_embed_dim, getattr(args, "trbert_policy_dim", 32))
            for _ in self.reduce_layers
        )
        self._point_of_layer = {layer: i for i, layer in enumerate(self.reduce_layers)}
        # inference-time selection (eval mode, greedy passes); training always samples the policies
        self.select = parse_select(getattr(args, "trbert_select", None))
        self.keep_ratios = parse_keep_ratios(getattr(args, "trbert_keep_ratios", None), self.reduce_layers,
                                             self.select)
        # set by the model around one forward call; a bare encoder call makes its own
        self.control: Optional[ReductionControl] = None
        self._pass: Optional[ReductionControl] = None
        self._selection = "policy"  # of the current pass
        self._received: Optional[torch.Tensor] = None  # attention_topk: scores for the next point

    def forward_scriptable(self, src_tokens, src_lengths=None, return_all_hiddens=False, token_embeddings=None):
        control = self.control if self.control is not None else ReductionControl.default(self.training)
        control.start(src_tokens.eq(self.padding_idx))
        self._pass = control
        self._selection = self.select if control.mode == "greedy" else "policy"
        try:
            return super().forward_scriptable(src_tokens, src_lengths, return_all_hiddens, token_embeddings)
        finally:
            self._pass = None
            self._received = None

    def forward_layer(self, layer, x: torch.Tensor, padding_mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        point = self._point_of_layer.get(layer.layer_idx)
        if point is not None and self._pass is not None:
            x, padding_mask = self.reduce(point, layer.layer_idx, x, padding_mask)
        if self._selection == "attention_topk" and self._pass is not None \
                and layer.layer_idx + 1 in self._point_of_layer:
            # the layer just before a reduction point: its attention probabilities score the tokens
            pad = padding_mask if padding_mask.any() else None
            h, probs = layer.attention_block(x, pad, need_probs=True)
            self._received = received_attention(probs, pad)
            return layer.ffn_block(h), padding_mask
        return super().forward_layer(layer, x, padding_mask)

    def reduce(self, point: int, layer_idx: int, x: torch.Tensor, padding_mask: torch.Tensor):
        control = self._pass
        received = self._received if self._selection == "attention_topk" else None
        self._received = None
        if point == 0:
            if received is not None:
                x, padding_mask, received = control.repeat_rows(x, padding_mask, received)
            else:
                x, padding_mask = control.repeat_rows(x, padding_mask)
        real = ~padding_mask
        # <s> sits in slot 0 of every example (kept tokens stay in order), and is always kept
        first = torch.zeros_like(real)
        first[:, 0] = True
        active = real & ~first
        if self._selection == "attention_topk":
            logits = None  # no policy runs (and none is paid for in the FLOPs)
            keep = topk_keep(received, active, self.keep_ratios[point])
        else:
            logits = self.policies[point](x)
            if self._selection == "policy_topk":
                keep = topk_keep(logits, active, self.keep_ratios[point])
            else:
                keep = control.decide(logits, active, point)
        keep = keep | (first & real)
        kept = keep.sum(dim=1)
        entering = real.sum(dim=1)
        if bool((kept == entering).all()):
            slot_index = torch.arange(x.size(1), device=x.device).expand(x.size(0), -1)
        else:
            x, padding_mask, slot_index = gather_tokens(x, padding_mask, keep)
        control.record(PointTrace(layer_idx, logits, keep, active, entering, kept, control.positions, received),
                       slot_index)
        return x, padding_mask
