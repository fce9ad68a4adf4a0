"""Kept sizes of every prunable group, the part of the model config that changes when SRP prunes.

A pruned model cannot be rebuilt from ``--arch`` alone: each side has its own embedding width, each
layer its own FFN width and each attention module its own per-head q·k and v·o widths. They travel
as one JSON string in the model config (``srp_shapes``), so that stock ``fairseq-generate`` and the
next pruning stage build the right shapes before loading the weights. The arch fields
(``encoder_embed_dim`` ...) keep the original sizes: the compression rate, ``sqrt(d)`` embedding scale,
``head_dim ** -0.5`` attention scale and sinusoidal positions are all defined on the original model.
"""
import json
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

import torch


@dataclass
class LayerShape:
    ffn: int
    self_qk: int  # per head
    self_vo: int  # per head
    cross_qk: Optional[int] = None  # decoder only
    cross_vo: Optional[int] = None


@dataclass
class SideShape:
    embed_dim: int
    # width over which the non-weighted layer norm computes its statistics: the original variant
    # normalises as if the pruned dims were still there holding zeros
    ln_width: int
    heads: int
    layers: List[LayerShape] = field(default_factory=list)


@dataclass
class ModelShapes:
    encoder: SideShape
    decoder: SideShape

    def to_json(self) -> str:
        def clean(d):
            return {k: v for k, v in d.items() if v is not None}

        out = {}
        for side in ("encoder", "decoder"):
            s = asdict(getattr(self, side))
            s["layers"] = [clean(layer) for layer in s["layers"]]
            out[side] = s
        return json.dumps(out, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "ModelShapes":
        d = json.loads(text)
        sides = {}
        for side in ("encoder", "decoder"):
            s = d[side]
            layers = [LayerShape(**layer) for layer in s["layers"]]
            sides[side] = SideShape(s["embed_dim"], s["ln_width"], s["heads"], layers)
        return cls(**sides)

    @classmethod
    def from_arch(cls, cfg) -> "ModelShapes":
        """The unpruned shapes of an arch config."""
        enc_d, dec_d = cfg.encoder_embed_dim, cfg.decoder_embed_dim
        enc_h, dec_h = cfg.encoder_attention_heads, cfg.decoder_attention_heads
        for name, d, h in (("encoder", enc_d, enc_h), ("decoder", dec_d, dec_h)):
            if d % h:
                raise ValueError(f"--{name}-embed-dim {d} is not divisible by --{name}-attention-heads {h}")
        enc = SideShape(enc_d, enc_d, enc_h, [
            LayerShape(cfg.encoder_ffn_embed_dim, enc_d // enc_h, enc_d // enc_h)
            for _ in range(cfg.encoder_layers)
        ])
        dec = SideShape(dec_d, dec_d, dec_h, [
            LayerShape(cfg.decoder_ffn_embed_dim, dec_d // dec_h, dec_d // dec_h,
                       dec_d // dec_h, dec_d // dec_h)
            for _ in range(cfg.decoder_layers)
        ])
        return cls(enc, dec)

    @classmethod
    def from_config(cls, cfg) -> "ModelShapes":
        text = getattr(cfg, "srp_shapes", None)
        return cls.from_json(text) if text else cls.from_arch(cfg)

    @classmethod
    def from_state_dict(cls, state: Dict[str, torch.Tensor], heads: Dict[str, int]) -> "ModelShapes":
        """Read the kept sizes off the tensors of a checkpoint (used on resume, where the run's
        config still describes the model it started from)."""
        sides = {}
        for side in ("encoder", "decoder"):
            h = heads[side]
            d = state[f"{side}.embed_tokens.weight"].size(1)
            ln_width = int(state[f"{side}.ln_width"].item()) if f"{side}.ln_width" in state else d
            layers = []
            i = 0
            while f"{side}.layers.{i}.fc1.weight" in state:
                p = f"{side}.layers.{i}."
                layer = LayerShape(
                    ffn=state[p + "fc1.weight"].size(0),
                    self_qk=state[p + "self_attn.q_proj.weight"].size(0) // h,
                    self_vo=state[p + "self_attn.v_proj.weight"].size(0) // h,
                )
                if p + "encoder_attn.q_proj.weight" in state:
                    layer.cross_qk = state[p + "encoder_attn.q_proj.weight"].size(0) // h
                    layer.cross_vo = state[p + "encoder_attn.v_proj.weight"].size(0) // h
                layers.append(layer)
                i += 1
            sides[side] = SideShape(d, ln_width, h, layers)
        return cls(**sides)
