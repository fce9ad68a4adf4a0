"""The prunable encoder with TR-BERT's policies: tokens are dropped before the reduction layers.

Only :meth:`forward_layer` of the core changes. Before a reduction layer the policy scores every
token, the :class:`ReductionControl` of the current pass picks the actions (``<s>`` is always
kept), and the kept tokens are gathered per example and re-padded (``gather_tokens``), so the
later layers really run on fewer tokens and no example's selection depends on its batch mates.
Dropped tokens are gone for the rest of the encoder: classification reads ``<s>`` only.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn

from user_dir.common.prunable_encoder import PrunableTransformerEncoder
from user_dir.common.token_gather import gather_tokens
from user_dir.trbert.policy import TokenPolicy, parse_reduce_layers
from user_dir.trbert.rollouts import PointTrace, ReductionControl


class TrbertTransformerEncoder(PrunableTransformerEncoder):
    def __init__(self, args, dictionary, embed_tokens):
        super().__init__(args, dictionary, embed_tokens)
        self.reduce_layers = parse_reduce_layers(getattr(args, "trbert_reduce_layers", None), len(self.layers))
        self.policies = nn.ModuleList(
            TokenPolicy(args.encoder_embed_dim, getattr(args, "trbert_policy_dim", 32))
            for _ in self.reduce_layers
        )
        self._point_of_layer = {layer: i for i, layer in enumerate(self.reduce_layers)}
        # set by the model around one forward call; a bare encoder call makes its own
        self.control: Optional[ReductionControl] = None
        self._pass: Optional[ReductionControl] = None

    def forward_scriptable(self, src_tokens, src_lengths=None, return_all_hiddens=False, token_embeddings=None):
        control = self.control if self.control is not None else ReductionControl.default(self.training)
        control.start(src_tokens.eq(self.padding_idx))
        self._pass = control
        try:
            return super().forward_scriptable(src_tokens, src_lengths, return_all_hiddens, token_embeddings)
        finally:
            self._pass = None

    def forward_layer(self, layer, x: torch.Tensor, padding_mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        point = self._point_of_layer.get(layer.layer_idx)
        if point is not None and self._pass is not None:
            x, padding_mask = self.reduce(point, layer.layer_idx, x, padding_mask)
        return super().forward_layer(layer, x, padding_mask)

    def reduce(self, point: int, layer_idx: int, x: torch.Tensor, padding_mask: torch.Tensor):
        control = self._pass
        if point == 0:
            x, padding_mask = control.repeat_rows(x, padding_mask)
        logits = self.policies[point](x)
        real = ~padding_mask
        # <s> sits in slot 0 of every example (kept tokens stay in order), and is always kept
        first = torch.zeros_like(real)
        first[:, 0] = True
        active = real & ~first
        keep = control.decide(logits, active, point) | (first & real)
        kept = keep.sum(dim=1)
        entering = real.sum(dim=1)
        if bool((kept == entering).all()):
            slot_index = torch.arange(x.size(1), device=x.device).expand(x.size(0), -1)
        else:
            x, padding_mask, slot_index = gather_tokens(x, padding_mask, keep)
        control.record(PointTrace(layer_idx, logits, keep, active, entering, kept, control.positions), slot_index)
        return x, padding_mask
