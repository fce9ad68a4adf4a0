"""Which weights hang off each connectivity vector: one map drives scoring, freezing and slicing.

A ``Gate`` is one connectivity vector ``c`` (a buffer) plus everything attached to its entries:
``(parameter, dim)`` pairs whose slice ``j`` along ``dim`` belongs to group ``j`` and buffers cut with
it. Freezing zeroes the attached entries of selected groups; slicing keeps the attached entries of
unselected groups. Keeping both on one list is what makes "frozen" and "removed" the same weights.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import torch
import torch.nn as nn

KINDS = ("emb", "fc", "qk", "vo")
STAGE_KINDS = {0: ("emb", "fc", "qk", "vo"), 1: ("emb",), 2: ("fc", "qk", "vo")}


@dataclass
class Gate:
    name: str  # state-dict name of the c vector, e.g. "decoder.layers.3.encoder_attn_qk_c"
    kind: str  # one of KINDS
    side: str  # "encoder" | "decoder"
    owner: nn.Module
    attr: str
    heads: int = 1  # qk/vo: selection is per head, each head loses the same count
    params: List[Tuple[nn.Parameter, int]] = field(default_factory=list)
    buffers: List[Tuple[nn.Module, str, int]] = field(default_factory=list)

    @property
    def c(self) -> torch.Tensor:
        return getattr(self.owner, self.attr)

    @property
    def sel(self) -> torch.Tensor:
        return getattr(self.owner, self.attr + "_sel")

    @property
    def size(self) -> int:
        return self.c.numel()


def _ln(norm) -> List[Tuple[nn.Parameter, int]]:
    return [(norm.weight, 0), (norm.bias, 0)]


def _attn_reads(attn, q=True, kv=True) -> List[Tuple[nn.Parameter, int]]:
    """Input columns of the projections that read the residual stream being gated."""
    out = []
    if q:
        out.append((attn.q_proj.weight, 1))
    if kv:
        out += [(attn.k_proj.weight, 1), (attn.v_proj.weight, 1)]
    return out


def _writes(linear) -> List[Tuple[nn.Parameter, int]]:
    return [(linear.weight, 0), (linear.bias, 0)]


def build_gates(model) -> List[Gate]:
    enc, dec = model.encoder, model.decoder
    gates: List[Gate] = []

    # residual-stream dims, one vector per side shared by all its layers
    enc_emb = Gate("encoder.embedding_c", "emb", "encoder", enc, "embedding_c")
    enc_emb.params.append((enc.embed_tokens.weight, 1))
    for layer in enc.layers:
        enc_emb.params += _attn_reads(layer.self_attn) + _writes(layer.self_attn.out_proj)
        enc_emb.params += _ln(layer.self_attn_layer_norm) + [(layer.fc1.weight, 1)]
        enc_emb.params += _writes(layer.fc2) + _ln(layer.final_layer_norm)
    for layer in dec.layers:  # cross-attention keys and values read the encoder output
        enc_emb.params += _attn_reads(layer.encoder_attn, q=False)
    enc_emb.buffers.append((enc.embed_positions, "kept", 0))
    gates.append(enc_emb)

    dec_emb = Gate("decoder.embedding_c", "emb", "decoder", dec, "embedding_c")
    dec_emb.params.append((dec.embed_tokens.weight, 1))
    if dec.output_projection.weight is not dec.embed_tokens.weight:
        dec_emb.params.append((dec.output_projection.weight, 1))
    for layer in dec.layers:
        dec_emb.params += _attn_reads(layer.self_attn) + _writes(layer.self_attn.out_proj)
        dec_emb.params += _ln(layer.self_attn_layer_norm)
        dec_emb.params += _attn_reads(layer.encoder_attn, kv=False) + _writes(layer.encoder_attn.out_proj)
        dec_emb.params += _ln(layer.encoder_attn_layer_norm) + [(layer.fc1.weight, 1)]
        dec_emb.params += _writes(layer.fc2) + _ln(layer.final_layer_norm)
    dec_emb.buffers.append((dec.embed_positions, "kept", 0))
    gates.append(dec_emb)

    for side, stack in (("encoder", enc), ("decoder", dec)):
        for i, layer in enumerate(stack.layers):
            prefix = f"{side}.layers.{i}."
            attns = [("self_attn", layer.self_attn)]
            if side == "decoder":
                attns.append(("encoder_attn", layer.encoder_attn))
            for aname, attn in attns:
                qk = Gate(prefix + aname + "_qk_c", "qk", side, layer, aname + "_qk_c", attn.heads)
                qk.params += _writes(attn.q_proj) + _writes(attn.k_proj)
                vo = Gate(prefix + aname + "_vo_c", "vo", side, layer, aname + "_vo_c", attn.heads)
                vo.params += _writes(attn.v_proj) + [(attn.out_proj.weight, 1)]
                gates += [qk, vo]
            fc = Gate(prefix + "fc_c", "fc", side, layer, "fc_c")
            fc.params += _writes(layer.fc1) + [(layer.fc2.weight, 1)]
            gates.append(fc)
    for g in gates:  # the c vector and its selection mask are cut with their groups
        g.buffers += [(g.owner, g.attr + suffix, 0) for suffix in ("", "_sel", "_kept")]
    return gates


def freeze_masks(gates: List[Gate]) -> Dict[nn.Parameter, torch.Tensor]:
    """Per parameter, a 0/1 float mask that is 0 on every entry attached to a selected group.

    Computed once per selection (outside the training step), so the optimizer's per-step work is a
    multiply per masked tensor, with no loop over groups."""
    masks: Dict[int, torch.Tensor] = {}
    owners: Dict[int, nn.Parameter] = {}
    for g in gates:
        sel = g.sel
        if not bool(sel.any()):
            continue
        keep = (~sel).to(torch.float32)
        for param, dim in g.params:
            shape = [1] * param.dim()
            shape[dim] = -1
            k = keep.to(param.device, param.dtype).view(shape)
            pid = id(param)
            masks[pid] = k * masks[pid] if pid in masks else k.expand_as(param).clone()
            owners[pid] = param
    return {owners[pid]: m.contiguous() for pid, m in masks.items()}
