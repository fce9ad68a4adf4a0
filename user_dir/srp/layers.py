"""Post-LN encoder and decoder layers whose widths come from ``ModelShapes``, with SRP's gates.

Each layer owns the connectivity vectors of its groups (``self_attn_qk_c``, ``self_attn_vo_c``,
``encoder_attn_qk_c``, ``encoder_attn_vo_c``, ``fc_c``) and, next to each, a boolean ``*_sel``
vector marking the groups selected for removal and a ``*_kept`` vector of original indices. All are
buffers: checkpointed as plain tensors,
never seen by the optimizer, never counted as parameters. The residual-stream vector ``c_emb`` belongs
to the encoder/decoder and is passed in; ``c_emb is None`` means "not pruning" and no gate is applied.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import SRPAttention, srp_linear
from .shapes import LayerShape
from .weighted_layernorm import SRPLayerNorm


def add_gate(module: nn.Module, name: str, size: int):
    """The connectivity vector, its selection mask and, as a record of what survived pruning, the
    original index of every kept group (all three are cut together when the model is sliced)."""
    module.register_buffer(name, torch.ones(size))
    module.register_buffer(name + "_sel", torch.zeros(size, dtype=torch.bool))
    module.register_buffer(name + "_kept", torch.arange(size))


class _FFN(nn.Module):
    """Mixin: ``W2 (dropout(relu(W1 h + b1)) ⊙ c_fc) + b2``; an empty FFN returns b2 (fc1 has 0 rows).
    The gate is applied to the columns of W2 (``(W2 ⊙ c) z``, the same product), which costs a
    multiply of the weight instead of one of the much larger activation."""

    def ffn(self, x, gated):
        x = F.relu(self.fc1(x))
        x = F.dropout(x, p=self.activation_dropout, training=self.training)
        if gated:
            return F.linear(x, self.fc2.weight * self.fc_c, self.fc2.bias)
        return self.fc2(x)


class SRPEncoderLayer(_FFN):
    def __init__(self, cfg, d: int, heads: int, orig_head_dim: int, shape: LayerShape,
                 weighted: bool, ln_width: int):
        super().__init__()
        self.dropout = cfg.dropout
        self.activation_dropout = cfg.activation_dropout
        self.self_attn = SRPAttention(d, d, d, heads, shape.self_qk, shape.self_vo, orig_head_dim,
                                      dropout=cfg.attention_dropout)
        self.self_attn_layer_norm = SRPLayerNorm(d, weighted, ln_width)
        self.fc1 = srp_linear(d, shape.ffn)
        self.fc2 = srp_linear(shape.ffn, d)
        self.final_layer_norm = SRPLayerNorm(d, weighted, ln_width)
        add_gate(self, "self_attn_qk_c", heads * shape.self_qk)
        add_gate(self, "self_attn_vo_c", heads * shape.self_vo)
        add_gate(self, "fc_c", shape.ffn)

    def forward(self, x, padding_mask, c_emb=None):
        gated = c_emb is not None
        residual = x
        x = self.self_attn(x, x, key_padding_mask=padding_mask,
                           c_qk=self.self_attn_qk_c if gated else None,
                           c_vo=self.self_attn_vo_c if gated else None)
        x = residual + F.dropout(x, p=self.dropout, training=self.training)
        x = self.self_attn_layer_norm(x, c_emb)  # gated: LN_c(.) ⊙ c_emb
        residual = x
        x = residual + F.dropout(self.ffn(x, gated), p=self.dropout, training=self.training)
        x = self.final_layer_norm(x, c_emb)
        return x


class SRPDecoderLayer(_FFN):
    def __init__(self, cfg, d: int, enc_d: int, heads: int, orig_head_dim: int, shape: LayerShape,
                 weighted: bool, ln_width: int):
        super().__init__()
        self.dropout = cfg.dropout
        self.activation_dropout = cfg.activation_dropout
        self.self_attn = SRPAttention(d, d, d, heads, shape.self_qk, shape.self_vo, orig_head_dim,
                                      dropout=cfg.attention_dropout)
        self.self_attn_layer_norm = SRPLayerNorm(d, weighted, ln_width)
        self.encoder_attn = SRPAttention(d, enc_d, d, heads, shape.cross_qk, shape.cross_vo,
                                         orig_head_dim, dropout=cfg.attention_dropout,
                                         encoder_decoder=True)
        self.encoder_attn_layer_norm = SRPLayerNorm(d, weighted, ln_width)
        self.fc1 = srp_linear(d, shape.ffn)
        self.fc2 = srp_linear(shape.ffn, d)
        self.final_layer_norm = SRPLayerNorm(d, weighted, ln_width)
        add_gate(self, "self_attn_qk_c", heads * shape.self_qk)
        add_gate(self, "self_attn_vo_c", heads * shape.self_vo)
        add_gate(self, "encoder_attn_qk_c", heads * shape.cross_qk)
        add_gate(self, "encoder_attn_vo_c", heads * shape.cross_vo)
        add_gate(self, "fc_c", shape.ffn)

    def forward(self, x, enc, enc_padding_mask, incremental_state=None, self_attn_mask=None,
                self_attn_padding_mask=None, c_emb=None):
        gated = c_emb is not None
        residual = x
        x = self.self_attn(x, x, key_padding_mask=self_attn_padding_mask, attn_mask=self_attn_mask,
                           incremental_state=incremental_state,
                           c_qk=self.self_attn_qk_c if gated else None,
                           c_vo=self.self_attn_vo_c if gated else None)
        x = residual + F.dropout(x, p=self.dropout, training=self.training)
        x = self.self_attn_layer_norm(x, c_emb)  # gated: LN_c(.) ⊙ c_emb
        residual = x
        x = self.encoder_attn(x, enc, key_padding_mask=enc_padding_mask,
                              incremental_state=incremental_state,
                              c_qk=self.encoder_attn_qk_c if gated else None,
                              c_vo=self.encoder_attn_vo_c if gated else None)
        x = residual + F.dropout(x, p=self.dropout, training=self.training)
        x = self.encoder_attn_layer_norm(x, c_emb)
        residual = x
        x = residual + F.dropout(self.ffn(x, gated), p=self.dropout, training=self.training)
        x = self.final_layer_norm(x, c_emb)
        return x
