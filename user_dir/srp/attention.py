"""Multi-head attention with its own per-head q·k and v·o widths and optional connectivity gates.

fairseq's MultiheadAttention ties the inner width to the model width; SRP prunes the q·k and the v·o
dims of every head independently (each head of a module keeps the same count) and may prune all q·k
dims of a module, so this module keeps four plain projections of arbitrary widths. The score scale is
``head_dim ** -0.5`` of the *original* head size, so a sliced module computes what the gated one did.
With zero q·k dims every score is 0: the softmax is then uniform over the positions that the padding
and causal masks allow, which is exactly the gated model with ``c_qk = 0``.
"""
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.incremental_decoding_utils import with_incremental_state
from torch import Tensor


def srp_linear(in_features, out_features, gain=1.0):
    m = nn.Linear(in_features, out_features)
    if m.weight.numel():  # a fully pruned projection has nothing to initialise
        nn.init.xavier_uniform_(m.weight, gain=gain)
    nn.init.constant_(m.bias, 0.0)
    return m


@with_incremental_state
class SRPAttention(nn.Module):
    def __init__(self, q_dim, kv_dim, out_dim, heads, qk_per_head, vo_per_head, orig_head_dim,
                 dropout=0.0, encoder_decoder=False):
        super().__init__()
        self.heads = heads
        self.qk = qk_per_head
        self.vo = vo_per_head
        self.scaling = orig_head_dim ** -0.5
        self.dropout = dropout
        self.encoder_decoder = encoder_decoder
        gain = 2 ** -0.5  # fairseq's init for q/k/v of equal in/out widths
        self.q_proj = srp_linear(q_dim, heads * qk_per_head, gain)
        self.k_proj = srp_linear(kv_dim, heads * qk_per_head, gain)
        self.v_proj = srp_linear(kv_dim, heads * vo_per_head, gain)
        self.out_proj = srp_linear(heads * vo_per_head, out_dim)

    def resize(self, qk_per_head, vo_per_head):
        self.qk, self.vo = qk_per_head, vo_per_head

    def _heads(self, x: Tensor, width: int) -> Tensor:
        # (len, bsz, heads*width) -> (bsz, heads, len, width)
        n, b, _ = x.shape
        return x.view(n, b, self.heads, width).permute(1, 2, 0, 3)

    def forward(
        self,
        query: Tensor,
        key: Optional[Tensor],
        key_padding_mask: Optional[Tensor] = None,
        attn_mask: Optional[Tensor] = None,
        incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]] = None,
        c_qk: Optional[Tensor] = None,
        c_vo: Optional[Tensor] = None,
    ) -> Tensor:
        """query: (tgt_len, bsz, q_dim); key (= value): (src_len, bsz, kv_dim); masks as in fairseq:
        key_padding_mask (bsz, src_len) True at pads, attn_mask (tgt_len, src_len) additive."""
        tgt_len, bsz, _ = query.shape
        # gates are folded into the weights (rows of W_q and b_q, columns of W_o): the same products
        # for a fraction of the cost of gating the activations
        if c_qk is not None:
            q = F.linear(query, self.q_proj.weight * c_qk.unsqueeze(1), self.q_proj.bias * c_qk)
        else:
            q = self.q_proj(query)
        q = self._heads(q, self.qk)

        saved = self.get_incremental_state(incremental_state, "attn_state") if incremental_state is not None else None
        if saved is not None and self.encoder_decoder:
            # keys/values of the encoder output do not change between decoding steps
            k, v, key_padding_mask = saved["prev_key"], saved["prev_value"], saved["prev_key_padding_mask"]
        else:
            k = self._heads(self.k_proj(key), self.qk)
            v = self._heads(self.v_proj(key), self.vo)
            if saved is not None:
                k = torch.cat([saved["prev_key"], k], dim=2)
                v = torch.cat([saved["prev_value"], v], dim=2)
                key_padding_mask = _cat_padding(saved["prev_key_padding_mask"], key_padding_mask,
                                                bsz, saved["prev_key"].size(2), tgt_len, query.device)
        if incremental_state is not None:
            self.set_incremental_state(incremental_state, "attn_state", {
                "prev_key": k, "prev_value": v, "prev_key_padding_mask": key_padding_mask})

        mask = _additive_mask(key_padding_mask, attn_mask, q.dtype)
        drop = self.dropout if self.training else 0.0
        if self.qk > 0:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop, scale=self.scaling)
        else:
            src_len = k.size(2)
            scores = q.new_zeros(bsz, self.heads, tgt_len, src_len)
            if mask is not None:
                scores = scores + mask
            probs = F.dropout(torch.softmax(scores, dim=-1), p=drop, training=self.training)
            out = torch.matmul(probs, v)
        out = out.permute(2, 0, 1, 3).reshape(tgt_len, bsz, self.heads * self.vo)
        if c_vo is not None:
            return F.linear(out, self.out_proj.weight * c_vo, self.out_proj.bias)
        return self.out_proj(out)

    def reorder_incremental_state(self, incremental_state, new_order: Tensor):
        saved = self.get_incremental_state(incremental_state, "attn_state")
        if saved is not None:
            for k, v in saved.items():
                if v is not None:
                    saved[k] = v.index_select(0, new_order)
            self.set_incremental_state(incremental_state, "attn_state", saved)
        return incremental_state


def _additive_mask(key_padding_mask, attn_mask, dtype):
    mask = None
    if key_padding_mask is not None:
        mask = torch.zeros(key_padding_mask.shape, dtype=dtype, device=key_padding_mask.device)
        mask = mask.masked_fill(key_padding_mask.bool(), float("-inf"))[:, None, None, :]
    if attn_mask is not None:
        attn_mask = attn_mask.to(dtype)[None, None]
        mask = attn_mask if mask is None else mask + attn_mask
    return mask


def _cat_padding(prev, cur, bsz, prev_len, cur_len, device):
    if prev is None and cur is None:
        return None
    if prev is None:
        prev = torch.zeros(bsz, prev_len, dtype=torch.bool, device=device)
    if cur is None:
        cur = torch.zeros(bsz, cur_len, dtype=torch.bool, device=device)
    return torch.cat([prev.bool(), cur.bool()], dim=1)
