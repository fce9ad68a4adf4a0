"""The encoder as a chain of 2L sublayers, so a forward pass can start at any of them.

Sublayer ``2l`` is layer ``l``'s attention block, ``2l+1`` its FFN block (each with its residual
and LayerNorm). Kprune decides the sublayers bottom-up; once sublayer ``s`` is decided, nothing
below it changes again, so the input of ``s`` is computed once per batch and cached, and every
later knowledge measurement runs only the sublayers from ``s`` up. The result is the same as a
full forward pass (a unit test checks it) at a fraction of the cost.
"""
from typing import Optional, Tuple

import torch

ATTENTION, FFN = "attention", "ffn"


def sublayer_of(s: int) -> Tuple[int, str]:
    """(layer index, kind) of sublayer ``s``."""
    return s // 2, ATTENTION if s % 2 == 0 else FFN


def _padding_arg(padding_mask: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    # the encoder passes None when a batch has no padding; do the same so results match bitwise
    return padding_mask if padding_mask is not None and padding_mask.any() else None


def run_sublayer(layer, kind: str, x: torch.Tensor, padding_mask: Optional[torch.Tensor]) -> torch.Tensor:
    if kind == ATTENTION:
        return layer.attention_block(x, _padding_arg(padding_mask))[0]
    return layer.ffn_block(x)


def run_from(model, s: int, x: torch.Tensor, padding_mask: Optional[torch.Tensor], head_name: str) -> torch.Tensor:
    """Logits of ``model`` given ``x``, the batch-first input of sublayer ``s``."""
    layers = model.layers
    for t in range(s, 2 * len(layers)):
        layer, kind = sublayer_of(t)
        x = run_sublayer(layers[layer], kind, x, padding_mask)
    encoder = model.encoder.sentence_encoder
    if encoder.layer_norm is not None:
        x = encoder.layer_norm(x)
    return model.classification_heads[head_name](x)


def first_layer_input(model, tokens: torch.Tensor, head_name: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """(input of layer 0, logits) from one ordinary forward pass of ``model``.

    The layer-0 input is read with a hook rather than recomputed, so embeddings, positions and
    their LayerNorm are exactly what the model itself does.
    """
    seen = {}

    def grab(module, args):
        seen["x"] = args[0]

    handle = model.layers[0].register_forward_pre_hook(grab)
    try:
        logits = model(tokens, features_only=True, classification_head_name=head_name)[0]
    finally:
        handle.remove()
    return seen["x"], logits
