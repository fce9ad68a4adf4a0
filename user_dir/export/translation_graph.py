"""The ONNX graphs of an ``srp`` translation model: an encoder and an incremental decoder step.

``encoder.onnx``: ``src_tokens`` (B, S) -> ``encoder_out`` (B, S, C), ``encoder_padding_mask``
(B, S) and, per decoder layer i, the cross-attention keys and values ``cross_k_i`` / ``cross_v_i``
(B, H, S, q·k or v·o per head): everything that is computed once per source sentence.

``decoder.onnx``: one decoding step. ``prev_output_tokens`` (B, 1) the last token of each
hypothesis, ``encoder_padding_mask``, the ``cross_*`` tensors and the self-attention cache
``past_k_i`` / ``past_v_i`` (B, H, t, ·) of the t tokens before it (t = 0 at the first step) ->
``logits`` (B, V) and the cache grown by one, ``present_k_i`` / ``present_v_i``. The position of the
step is read off the cache length. Greedy and beam search reorder the batch rows of the cache and of
the ``cross_*`` tensors between steps (``user_dir.export.ort_translation`` plugs both graphs into
fairseq's own ``SequenceGenerator``).

The step follows ``srp.layers`` / ``srp.attention`` in eval mode (post-LN, per-module q·k and v·o
widths, a module with no q·k dims attends uniformly, an FFN with no neurons adds its bias), with
the connectivity gates where the checkpoint has them on. Decoding prefixes hold no padding, so the
self-attention has no mask, as in fairseq's incremental decoding.
"""
from typing import List

import torch
import torch.nn.functional as F
from fairseq import utils

from user_dir.export.onnx_export import export_graph


def _split(x: torch.Tensor, heads: int, width: int) -> torch.Tensor:
    """(B, T, heads*width) -> (B, heads, T, width)."""
    bsz, length, _ = x.shape
    if width == 0:  # an ONNX Reshape reads a 0 in the target shape as "keep this dim"
        return x.new_zeros(bsz, heads, length, 0)
    return x.view(bsz, length, heads, width).transpose(1, 2)


def _attend(attn, q, k, v, mask):
    """Softmax attention of (B, H, Tq, qk) over (B, H, Tk, ·) -> (B, Tq, H * vo); ``mask`` additive."""
    if attn.vo == 0:  # nothing to mix: the module adds only its output bias
        return q.new_zeros(q.size(0), q.size(2), 0)
    if attn.qk > 0:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=attn.scaling)
    else:  # no q·k dims left: every score is 0, the softmax is uniform over the allowed keys
        scores = q.new_zeros(q.size(0), attn.heads, q.size(2), k.size(2))
        if mask is not None:
            scores = scores + mask
        out = torch.matmul(torch.softmax(scores, dim=-1), v)
    bsz, _, length, _ = out.shape
    return out.transpose(1, 2).reshape(bsz, length, attn.heads * attn.vo)


def _query(attn, x, c_qk):
    if c_qk is not None:  # gates folded into the weights, as srp.attention does
        return F.linear(x, attn.q_proj.weight * c_qk.unsqueeze(1), attn.q_proj.bias * c_qk)
    return attn.q_proj(x)


def _output(attn, out, c_vo):
    if c_vo is not None:
        return F.linear(out, attn.out_proj.weight * c_vo, attn.out_proj.bias)
    return attn.out_proj(out)


def _additive(padding: torch.Tensor, dtype) -> torch.Tensor:
    """(B, S) True at padding -> (B, 1, 1, S) additive mask (-inf at padding)."""
    mask = torch.zeros(padding.shape, dtype=dtype, device=padding.device)
    return mask.masked_fill(padding, float("-inf"))[:, None, None, :]


def _positions_table(side, max_positions: int) -> torch.Tensor:
    """The side's sinusoid table over its kept dims, long enough for every allowed position."""
    return side.embed_positions._get_table(side.padding_idx + 1 + max_positions, torch.float32,
                                           side.embed_tokens.weight.device).clone()


def _embed(side, tokens, positions):
    x = side.embed_scale * side.embed_tokens(tokens) + positions
    c = side.c_emb()
    return x * c if c is not None else x


class EncoderGraph(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model.eval()
        self.register_buffer("positions", _positions_table(model.encoder, model.encoder.max_positions()),
                             persistent=False)

    def forward(self, src_tokens):
        enc, dec = self.model.encoder, self.model.decoder
        padding = src_tokens.eq(enc.padding_idx)
        pos = F.embedding(utils.make_positions(src_tokens, enc.padding_idx), self.positions)
        x = _embed(enc, src_tokens, pos) * (~padding).unsqueeze(-1).to(pos.dtype)
        mask = _additive(padding, x.dtype)
        c = enc.c_emb()
        for layer in enc.layers:  # srp.layers.SRPEncoderLayer, batch-first
            attn, gated = layer.self_attn, c is not None
            q = _split(_query(attn, x, layer.self_attn_qk_c if gated else None), attn.heads, attn.qk)
            k, v = _split(attn.k_proj(x), attn.heads, attn.qk), _split(attn.v_proj(x), attn.heads, attn.vo)
            out = _output(attn, _attend(attn, q, k, v, mask), layer.self_attn_vo_c if gated else None)
            x = layer.self_attn_layer_norm(x + out, c)
            x = layer.final_layer_norm(x + layer.ffn(x, gated), c)
        cross: List[torch.Tensor] = []
        for layer in dec.layers:
            attn = layer.encoder_attn
            cross += [_split(attn.k_proj(x), attn.heads, attn.qk), _split(attn.v_proj(x), attn.heads, attn.vo)]
        return (x, padding, *cross)


class DecoderStepGraph(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model.eval()
        self.register_buffer("positions", _positions_table(model.decoder, model.decoder.max_positions()),
                             persistent=False)

    def forward(self, prev_output_tokens, encoder_padding_mask, *caches):
        dec = self.model.decoder
        n = len(dec.layers)
        cross, past = caches[:2 * n], caches[2 * n:]
        # fairseq's step position: padding_idx + (tokens so far, this one included)
        step = torch.zeros_like(prev_output_tokens) + past[0].size(2)
        pos = F.embedding(step + dec.padding_idx + 1, self.positions)
        x = _embed(dec, prev_output_tokens, pos)
        mask = _additive(encoder_padding_mask, x.dtype)
        c = dec.c_emb()
        gated = c is not None
        present = []
        for i, layer in enumerate(dec.layers):
            x, k, v = self._self_attention(layer, x, past[2 * i], past[2 * i + 1], c)
            present += [k, v]
            x = self._cross_attention(layer, x, cross[2 * i], cross[2 * i + 1], mask, c)
            x = layer.final_layer_norm(x + layer.ffn(x, gated), c)
        if gated:  # the output features are gated once more before the projection
            x = x * c
        return (dec.output_layer(x).squeeze(1), *present)

    @staticmethod
    def _self_attention(layer, x, past_k, past_v, c):
        attn = layer.self_attn
        gated = c is not None
        q = _split(_query(attn, x, layer.self_attn_qk_c if gated else None), attn.heads, attn.qk)
        k = torch.cat([past_k, _split(attn.k_proj(x), attn.heads, attn.qk)], dim=2)
        v = torch.cat([past_v, _split(attn.v_proj(x), attn.heads, attn.vo)], dim=2)
        out = _output(attn, _attend(attn, q, k, v, None), layer.self_attn_vo_c if gated else None)
        return layer.self_attn_layer_norm(x + out, c), k, v

    @staticmethod
    def _cross_attention(layer, x, k, v, mask, c):
        attn = layer.encoder_attn
        gated = c is not None
        q = _split(_query(attn, x, layer.encoder_attn_qk_c if gated else None), attn.heads, attn.qk)
        out = _output(attn, _attend(attn, q, k, v, mask), layer.encoder_attn_vo_c if gated else None)
        return layer.encoder_attn_layer_norm(x + out, c)


def cache_names(layers: int, prefix: str) -> List[str]:
    return [f"{prefix}_{kv}_{i}" for i in range(layers) for kv in ("k", "v")]


def example_source(dictionary, seed: int = 0) -> torch.Tensor:
    """Two left-padded sources of different lengths ending in ``</s>``, as fairseq batches them."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.full((2, 7), dictionary.pad(), dtype=torch.long)
    for row, n in enumerate((7, 5)):
        tokens[row, 7 - n:] = torch.randint(dictionary.nspecial, len(dictionary), (n,), generator=g)
        tokens[row, -1] = dictionary.eos()
    return tokens


def export_translation(model, encoder_path: str, decoder_path: str, exporter: str = "torchscript") -> dict:
    """Write both graphs; returns what the model card records (names and dynamic axes)."""
    model.eval()
    layers = len(model.decoder.layers)
    cross, past, present = cache_names(layers, "cross"), cache_names(layers, "past"), cache_names(layers, "present")
    src = example_source(model.encoder.dictionary)
    encoder = EncoderGraph(model)
    enc_out = ["encoder_out", "encoder_padding_mask", *cross]
    enc_axes = {"src_tokens": {0: "batch", 1: "src_len"}, "encoder_out": {0: "batch", 1: "src_len"},
                "encoder_padding_mask": {0: "batch", 1: "src_len"}, **{n: {0: "batch", 2: "src_len"} for n in cross}}
    info = export_graph(encoder, (src,), encoder_path, ["src_tokens"], enc_out, enc_axes, exporter)
    with torch.no_grad():
        outputs = encoder(src)
    # the traced step sits at t = 2 (a cache of two earlier tokens); t is a dynamic axis
    tgt = model.decoder.dictionary
    prev = torch.tensor([[tgt.eos()], [tgt.nspecial]], dtype=torch.long)
    caches = []
    for layer in model.decoder.layers:
        attn = layer.self_attn
        caches += [torch.randn(2, attn.heads, 2, attn.qk), torch.randn(2, attn.heads, 2, attn.vo)]
    dec_in = ["prev_output_tokens", "encoder_padding_mask", *cross, *past]
    dec_axes = {"prev_output_tokens": {0: "batch"}, "encoder_padding_mask": {0: "batch", 1: "src_len"},
                **{n: {0: "batch", 2: "src_len"} for n in cross}, **{n: {0: "batch", 2: "past_len"} for n in past},
                "logits": {0: "batch"}, **{n: {0: "batch", 2: "length"} for n in present}}
    export_graph(DecoderStepGraph(model), (prev, outputs[1], *outputs[2:], *caches), decoder_path, dec_in,
                 ["logits", *present], dec_axes, exporter)
    return dict(info, encoder={"inputs": ["src_tokens"], "outputs": enc_out},
                decoder={"inputs": dec_in, "outputs": ["logits", *present]})
