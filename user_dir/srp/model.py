"""Model ``srp``: a post-LN encoder-decoder Transformer whose every prunable group carries a gate.

Without pruning (gates off) it computes what fairseq's ``transformer`` computes. The kept sizes of a
pruned model live in ``srp_shapes`` (see ``shapes.py``); loading a state dict of other shapes (a
checkpoint written after slicing, when resuming) first reshapes the tensors *in place*, so the
optimizer and the data-parallel wrapper keep pointing at the same parameters.
"""
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.dataclass import FairseqDataclass
from fairseq.models import (
    FairseqEncoder,
    FairseqEncoderDecoderModel,
    FairseqIncrementalDecoder,
    register_model,
    register_model_architecture,
)
from fairseq.utils import safe_getattr
from omegaconf import II, open_dict, OmegaConf
from torch import Tensor

from .connectivity import build_gates
from .layers import SRPDecoderLayer, SRPEncoderLayer, add_gate
from .positions import KeptSinusoidalPositions
from .shapes import ModelShapes, SideShape



@dataclass
class SRPModelConfig(FairseqDataclass):
    dropout: float = field(default=0.1, metadata={"help": "dropout probability"})
    attention_dropout: float = field(default=0.0, metadata={"help": "dropout on attention weights"})
    activation_dropout: float = field(default=0.0, metadata={"help": "dropout after the FFN ReLU"})
    encoder_embed_dim: int = field(default=512, metadata={"help": "encoder width (before pruning)"})
    encoder_ffn_embed_dim: int = field(default=2048, metadata={"help": "encoder FFN width (before pruning)"})
    encoder_layers: int = field(default=6, metadata={"help": "number of encoder layers"})
    encoder_attention_heads: int = field(default=8, metadata={"help": "encoder attention heads"})
    decoder_embed_dim: int = field(default=512, metadata={"help": "decoder width (before pruning)"})
    decoder_ffn_embed_dim: int = field(default=2048, metadata={"help": "decoder FFN width (before pruning)"})
    decoder_layers: int = field(default=6, metadata={"help": "number of decoder layers"})
    decoder_attention_heads: int = field(default=8, metadata={"help": "decoder attention heads"})
    share_decoder_input_output_embed: bool = field(
        default=False, metadata={"help": "tie the decoder input embedding and the output projection"})
    share_all_embeddings: bool = field(
        default=False, metadata={"help": "not supported by SRP (each side prunes its own embedding dims)"})
    no_scale_embedding: bool = field(default=False, metadata={"help": "do not scale embeddings by sqrt(d)"})
    weighted_layernorm: bool = field(
        default=False,
        metadata={"help": "layer norm statistics weighted by the connectivity of the residual dims "
                          "(pruning-safe); without it, the original LN(x * c) over the full width"})
    srp_shapes: str = field(
        default="",
        metadata={"help": "kept sizes of a pruned model (JSON, written by SRP pruning; leave empty)"})
    max_source_positions: int = II("task.max_source_positions")
    max_target_positions: int = II("task.max_target_positions")


def _embedding(num, dim, padding_idx, std_dim):
    m = nn.Embedding(num, dim, padding_idx=padding_idx)
    nn.init.normal_(m.weight, mean=0, std=std_dim ** -0.5)
    nn.init.constant_(m.weight[padding_idx], 0)
    return m


class _Side:
    """What encoder and decoder share: the residual gate, the embedding and the layer norm width."""

    gated: bool

    def _init_side(self, side: SideShape, orig_dim: int, embed_tokens, cfg, max_positions):
        self.gated = False
        self.dropout = cfg.dropout
        self.embed_tokens = embed_tokens
        self.padding_idx = embed_tokens.padding_idx
        # sqrt of the *original* width: a sliced model must scale as the one it was cut from
        self.embed_scale = 1.0 if cfg.no_scale_embedding else math.sqrt(orig_dim)
        self.embed_positions = KeptSinusoidalPositions(orig_dim, side.embed_dim, self.padding_idx,
                                                       max_positions)
        add_gate(self, "embedding_c", side.embed_dim)
        self.register_buffer("ln_width", torch.tensor(side.ln_width))
        self.max_positions_ = max_positions

    def c_emb(self) -> Optional[Tensor]:
        return self.embedding_c if self.gated else None

    def embed(self, tokens, incremental_state=None):
        positions = self.embed_positions(tokens, incremental_state, dtype=self.embed_tokens.weight.dtype)
        if incremental_state is not None:
            tokens = tokens[:, -1:]
        emb = self.embed_scale * self.embed_tokens(tokens)
        x = F.dropout(emb + positions, p=self.dropout, training=self.training)
        if self.gated:
            x = x * self.embedding_c
        return x, emb, tokens

    def max_positions(self):
        return self.max_positions_


class SRPEncoder(_Side, FairseqEncoder):
    def __init__(self, cfg, dictionary, embed_tokens, side: SideShape):
        FairseqEncoder.__init__(self, dictionary)
        self._init_side(side, cfg.encoder_embed_dim, embed_tokens, cfg, cfg.max_source_positions)
        orig_head = cfg.encoder_embed_dim // side.heads
        self.layers = nn.ModuleList([
            SRPEncoderLayer(cfg, side.embed_dim, side.heads, orig_head, ls, cfg.weighted_layernorm,
                            side.ln_width)
            for ls in side.layers
        ])

    def forward(self, src_tokens, src_lengths: Optional[Tensor] = None, return_all_hiddens: bool = False,
                token_embeddings: Optional[Tensor] = None):
        padding_mask = src_tokens.eq(self.padding_idx)
        has_pads = bool(padding_mask.any())
        x, emb, _ = self.embed(src_tokens)
        if has_pads:
            x = x * (1 - padding_mask.unsqueeze(-1).type_as(x))
        x = x.transpose(0, 1)
        c = self.c_emb()
        for layer in self.layers:
            x = layer(x, padding_mask if has_pads else None, c)
        src_lengths = src_tokens.ne(self.padding_idx).sum(dim=1, dtype=torch.int32).reshape(-1, 1)
        return {
            "encoder_out": [x],  # T x B x C
            "encoder_padding_mask": [padding_mask],  # B x T
            "encoder_embedding": [emb],  # B x T x C
            "encoder_states": [],
            "fc_results": [],
            "src_tokens": [],
            "src_lengths": [src_lengths],
        }

    def reorder_encoder_out(self, encoder_out: Dict[str, List[Tensor]], new_order):
        def pick(key, dim):
            return [t.index_select(dim, new_order) for t in encoder_out.get(key, [])]

        return {
            "encoder_out": pick("encoder_out", 1),
            "encoder_padding_mask": pick("encoder_padding_mask", 0),
            "encoder_embedding": pick("encoder_embedding", 0),
            "encoder_states": pick("encoder_states", 1),
            "src_tokens": pick("src_tokens", 0),
            "src_lengths": pick("src_lengths", 0),
        }


class SRPDecoder(_Side, FairseqIncrementalDecoder):
    def __init__(self, cfg, dictionary, embed_tokens, side: SideShape, enc_side: SideShape):
        FairseqIncrementalDecoder.__init__(self, dictionary)
        self._init_side(side, cfg.decoder_embed_dim, embed_tokens, cfg, cfg.max_target_positions)
        orig_head = cfg.decoder_embed_dim // side.heads
        self.layers = nn.ModuleList([
            SRPDecoderLayer(cfg, side.embed_dim, enc_side.embed_dim, side.heads, orig_head, ls,
                            cfg.weighted_layernorm, side.ln_width)
            for ls in side.layers
        ])
        self.output_projection = nn.Linear(side.embed_dim, len(dictionary), bias=False)
        if cfg.share_decoder_input_output_embed:
            self.output_projection.weight = embed_tokens.weight
        else:
            nn.init.normal_(self.output_projection.weight, mean=0, std=cfg.decoder_embed_dim ** -0.5)
        self._future_mask = torch.empty(0)

    def forward(self, prev_output_tokens, encoder_out: Optional[Dict[str, List[Tensor]]] = None,
                incremental_state=None, features_only: bool = False, full_context_alignment=False,
                alignment_layer=None, alignment_heads=None, src_lengths=None, return_all_hiddens=False):
        x, extra = self.extract_features(prev_output_tokens, encoder_out, incremental_state,
                                         full_context_alignment=full_context_alignment)
        if not features_only:
            x = self.output_layer(x)
        return x, extra

    def extract_features(self, prev_output_tokens, encoder_out=None, incremental_state=None,
                         full_context_alignment=False, **unused):
        enc = padding_mask = None
        if encoder_out is not None and len(encoder_out["encoder_out"]) > 0:
            enc = encoder_out["encoder_out"][0]
        if encoder_out is not None and len(encoder_out["encoder_padding_mask"]) > 0:
            padding_mask = encoder_out["encoder_padding_mask"][0]
        x, _, tokens = self.embed(prev_output_tokens, incremental_state)
        x = x.transpose(0, 1)
        self_pad = tokens.eq(self.padding_idx)
        self_pad = self_pad if bool(self_pad.any()) else None
        future = None
        if incremental_state is None and not full_context_alignment:
            future = self.buffered_future_mask(x)
        c = self.c_emb()
        for layer in self.layers:
            x = layer(x, enc, padding_mask, incremental_state, self_attn_mask=future,
                      self_attn_padding_mask=self_pad, c_emb=c)
        x = x.transpose(0, 1)
        if c is not None:  # the output features are gated once more before the projection
            x = x * c
        return x, {"attn": [None], "inner_states": [x]}

    def output_layer(self, features):
        return self.output_projection(features)

    def buffered_future_mask(self, tensor):
        dim = tensor.size(0)
        if self._future_mask.size(0) < dim or self._future_mask.device != tensor.device:
            self._future_mask = torch.triu(torch.full((dim, dim), float("-inf")), 1).to(tensor.device)
        return self._future_mask[:dim, :dim].to(tensor.dtype)


@register_model("srp", dataclass=SRPModelConfig)
class SRPModel(FairseqEncoderDecoderModel):
    def __init__(self, cfg, encoder, decoder):
        super().__init__(encoder, decoder)
        self.cfg = cfg
        # [pruning iterations completed, iteration in progress (0/1), update at which it started]:
        # where a pruning run stands, checkpointed with the weights so that a resumed run continues
        self.register_buffer("srp_progress", torch.zeros(3, dtype=torch.long))
        self._gates = None

    @classmethod
    def build_model(cls, cfg, task):
        if safe_getattr(cfg, "share_all_embeddings", False):
            raise ValueError(
                "--share-all-embeddings is not supported by the srp model: SRP prunes the encoder and "
                "decoder embedding dims separately; use --share-decoder-input-output-embed")
        srp_base_architecture(cfg)
        shapes = ModelShapes.from_config(cfg)
        for side, n in (("encoder", cfg.encoder_layers), ("decoder", cfg.decoder_layers)):
            if len(getattr(shapes, side).layers) != n:
                raise ValueError(f"--srp-shapes has {len(getattr(shapes, side).layers)} {side} layers, "
                                 f"the arch has {n}")
        src_dict, tgt_dict = task.source_dictionary, task.target_dictionary
        enc_emb = _embedding(len(src_dict), shapes.encoder.embed_dim, src_dict.pad(), cfg.encoder_embed_dim)
        dec_emb = _embedding(len(tgt_dict), shapes.decoder.embed_dim, tgt_dict.pad(), cfg.decoder_embed_dim)
        encoder = SRPEncoder(cfg, src_dict, enc_emb, shapes.encoder)
        decoder = SRPDecoder(cfg, tgt_dict, dec_emb, shapes.decoder, shapes.encoder)
        return cls(cfg, encoder, decoder)

    # ---- gates ---------------------------------------------------------------------------------
    def gates(self):
        if self._gates is None:
            self._gates = build_gates(self)
        return self._gates

    def invalidate_gates(self):
        self._gates = None

    @property
    def gated(self) -> bool:
        return self.encoder.gated

    def set_gating(self, on: bool):
        self.encoder.gated = self.decoder.gated = bool(on)

    @torch.no_grad()
    def reset_pruning_state(self):
        """Forget any selection in progress (a pretrained model starts a new pruning run)."""
        self.srp_progress.zero_()
        for g in self.gates():
            g.c.fill_(1.0)
            g.sel.zero_()
        self.set_gating(False)

    # ---- shapes --------------------------------------------------------------------------------
    def heads(self) -> Dict[str, int]:
        return {"encoder": self.cfg.encoder_attention_heads, "decoder": self.cfg.decoder_attention_heads}

    def current_shapes(self) -> ModelShapes:
        return ModelShapes.from_state_dict(
            {k: v for k, v in self.state_dict().items()}, self.heads())

    def is_pruned(self) -> bool:
        return self.current_shapes() != ModelShapes.from_arch(self.cfg)

    def sync_after_reshape(self, model_cfg=None):
        """Bring the Python-side sizes in line with the tensors and write them into the config(s)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                m.out_features, m.in_features = m.weight.shape
            elif isinstance(m, nn.Embedding):
                m.embedding_dim = m.weight.size(1)
            elif isinstance(m, KeptSinusoidalPositions):
                m.reset_cache()
        for side in (self.encoder, self.decoder):
            width = int(side.ln_width.item())
            for m in side.modules():
                if hasattr(m, "q_proj"):
                    m.qk = m.q_proj.weight.size(0) // m.heads
                    m.vo = m.v_proj.weight.size(0) // m.heads
                if hasattr(m, "ln_width") and not isinstance(m.ln_width, torch.Tensor):
                    m.ln_width = width
        self.invalidate_gates()
        shapes = self.current_shapes()
        text = "" if shapes == ModelShapes.from_arch(self.cfg) else shapes.to_json()
        for cfg in (self.cfg, model_cfg):
            if cfg is not None and safe_getattr(cfg, "srp_shapes", None) != text:
                set_cfg(cfg, "srp_shapes", text)

    def load_state_dict(self, state_dict, strict=True, model_cfg=None, args=None):
        own = dict(self.named_parameters())
        own.update(dict(self.named_buffers()))
        reshaped = False
        for name, value in state_dict.items():
            mine = own.get(name)
            if mine is not None and torch.is_tensor(value) and mine.shape != value.shape:
                owner, attr = self._owner(name)
                if isinstance(mine, nn.Parameter):
                    mine.data = mine.data.new_empty(value.shape)
                else:
                    setattr(owner, attr, mine.new_empty(value.shape))
                reshaped = True
        result = super().load_state_dict(state_dict, strict=strict, model_cfg=model_cfg, args=args)
        self.sync_after_reshape(model_cfg if reshaped else None)
        self.set_gating(bool(self.srp_progress[1].item()))
        return result

    def _owner(self, name):
        path, attr = name.rsplit(".", 1)
        return self.get_submodule(path), attr


def set_cfg(cfg, key, value):
    if OmegaConf.is_config(cfg):
        with open_dict(cfg):
            cfg[key] = value
    else:
        setattr(cfg, key, value)


def srp_base_architecture(cfg):
    def default(name, value):
        if safe_getattr(cfg, name, None) is None:
            set_cfg(cfg, name, value)

    default("encoder_embed_dim", 512)
    default("encoder_ffn_embed_dim", 2048)
    default("encoder_layers", 6)
    default("encoder_attention_heads", 8)
    default("decoder_embed_dim", safe_getattr(cfg, "encoder_embed_dim"))
    default("decoder_ffn_embed_dim", safe_getattr(cfg, "encoder_ffn_embed_dim"))
    default("decoder_layers", 6)
    default("decoder_attention_heads", 8)
    default("dropout", 0.1)
    default("attention_dropout", 0.0)
    default("activation_dropout", 0.0)
    default("share_decoder_input_output_embed", False)
    default("share_all_embeddings", False)
    default("no_scale_embedding", False)
    default("weighted_layernorm", False)
    default("srp_shapes", "")
    default("max_source_positions", 1024)
    default("max_target_positions", 1024)


def _arch(name, **values):
    def fn(cfg):
        for k, v in values.items():
            if safe_getattr(cfg, k, None) is None:
                set_cfg(cfg, k, v)
        srp_base_architecture(cfg)

    register_model_architecture("srp", name)(fn)


# the paper's IWSLT'14 De-En model (fairseq's transformer_iwslt_de_en widths, 4 heads of 128)
_arch("srp_iwslt_de_en", encoder_embed_dim=512, encoder_ffn_embed_dim=1024, encoder_attention_heads=4,
      encoder_layers=6, decoder_embed_dim=512, decoder_ffn_embed_dim=1024, decoder_attention_heads=4,
      decoder_layers=6, dropout=0.3)
# the bench's base model (scripts/bench/srp.py): the largest that trains to a useful BLEU on the
# 12k-pair offline De-En data within 90 minutes on 2 CPU cores (docs/srp.md, "Benchmark")
_arch("srp_medium", encoder_embed_dim=256, encoder_ffn_embed_dim=1024, encoder_attention_heads=4,
      encoder_layers=3, decoder_embed_dim=256, decoder_ffn_embed_dim=1024, decoder_attention_heads=4,
      decoder_layers=3, dropout=0.3, attention_dropout=0.1, activation_dropout=0.1)
# small enough to train, prune and fine-tune on 2 CPU cores within a demo
_arch("srp_small", encoder_embed_dim=64, encoder_ffn_embed_dim=256, encoder_attention_heads=4,
      encoder_layers=3, decoder_embed_dim=64, decoder_ffn_embed_dim=256, decoder_attention_heads=4,
      decoder_layers=3, dropout=0.1)
# for tests: some 40 k parameters, trains in seconds
_arch("srp_tiny", encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=2,
      encoder_layers=2, decoder_embed_dim=32, decoder_ffn_embed_dim=64, decoder_attention_heads=2,
      decoder_layers=2, dropout=0.1)
