"""The LTP encoder: the prunable encoder core with token pruning inside every layer.

Layer l runs its attention block with explicit probabilities, scores every live token by the
attention it receives, and then

* soft stage (training): multiplies the layer output by ``sigmoid((s - theta_l) / T)``; nothing is
  removed and the thresholds get gradients;
* hard stage and evaluation: keeps the tokens with ``s >= max(1e-5, theta_l)`` (or the top k) and
  removes the others from the batch *before* the FFN (gather + re-pad), which is where LTP's FLOPs
  model puts the saving. ``--ltp-physical-removal False`` masks them out of attention instead and
  keeps computing them (the original's behaviour; the same logits for every kept token).

Layer 0 never prunes in ``absolute_threshold`` mode; in ``topk`` mode a layer prunes only when its
keep rate is below 1. Position 0 (``<s>``, read by the classification head) is always kept.
"""
import logging
from dataclasses import dataclass
from typing import List, Optional, Union

import torch
import torch.nn as nn

from user_dir.common.prunable_encoder import PrunableTransformerEncoder
from user_dir.common.token_gather import gather_tokens
from user_dir.ltp import scoring
from user_dir.ltp.flops import layer_dims
from user_dir.ltp.options import LtpOptions
from user_dir.ltp.stats import LtpStats

logger = logging.getLogger(__name__)

THRESHOLD_PARAM = "ltp_threshold_delta"
THRESHOLD_GROUP = "ltp_threshold"


@dataclass
class _Run:
    """State of one forward pass, shared by its layers."""
    stats: LtpStats
    has_padding: bool                   # does the current padding mask mark anything?
    theta: Optional[List[float]]        # per-layer thresholds for hard decisions
    norm: Union[float, torch.Tensor]    # L of the score: a number or (B, 1) lengths


class LtpTransformerEncoder(PrunableTransformerEncoder):
    def __init__(self, args, dictionary, embed_tokens):
        super().__init__(args, dictionary, embed_tokens)
        self.ltp = LtpOptions.from_args(args)
        num_layers = len(self.layers)
        self.keep_rates = (
            scoring.topk_keep_rates(self.ltp.token_keep_rate, num_layers)
            if self.ltp.prune_mode == "topk" else None
        )
        # delta_l of theta_l = F * l / N + delta_l; entry 0 exists for indexing but layer 0 never prunes
        self.ltp_threshold_delta = nn.Parameter(torch.zeros(num_layers))
        # frozen outside the soft stage, so the trainer leaves it out of the optimizer entirely
        self.ltp_threshold_delta.requires_grad_(self.ltp.learns_thresholds)
        # read by ltp_adam (and copied by fairseq's fp16/bf16 wrappers to the fp32 master copy):
        # its own group, own lr, no weight decay
        self.ltp_threshold_delta.param_group = THRESHOLD_GROUP
        self.ltp_threshold_delta.optim_overrides = {"lr": self.ltp.threshold_lr, "weight_decay": 0.0}
        self.last_stats = None
        self._run = None
        self._checked_first_token = False

    # ---- thresholds ---------------------------------------------------------------------------
    def thresholds(self) -> torch.Tensor:
        delta = self.ltp_threshold_delta
        if self.soft:
            # d loss / d theta carries a factor 1/T (~1000): left as is it dominates --clip-norm's
            # global norm and overflows fp16 loss scaling. Scaling the thresholds' gradient by T
            # changes neither the value nor an Adam step (invariant to a constant gradient scale).
            t = self.ltp.temperature
            delta = delta * t + (delta * (1.0 - t)).detach()
        return scoring.layer_thresholds(self.ltp.final_token_threshold, delta)

    def layer_dims(self):
        return [layer_dims(layer) for layer in self.layers]

    def prunes_at(self, idx: int) -> bool:
        if self.layers[idx].num_heads == 0:
            return False  # no attention, no scores: such a layer keeps every token
        if self.ltp.prune_mode == "topk":
            return self.keep_rates[idx] < 1.0
        return idx >= 1

    @property
    def soft(self) -> bool:
        return self.training and self.ltp.masking_mode == "soft"

    # ---- forward ------------------------------------------------------------------------------
    def forward_scriptable(self, src_tokens, src_lengths=None, return_all_hiddens=False,
                           token_embeddings=None):
        self._check_first_token(src_tokens)
        padding = src_tokens.eq(self.padding_idx)
        stats = LtpStats(padding.size(1) - padding.sum(dim=1), self.thresholds(), self.ltp.temperature,
                         self.ltp.score_length)
        # per-forward constants, so a pruning layer adds only a handful of tensor operations
        self._run = _Run(
            stats=stats,
            has_padding=bool(padding.any()),
            # hard decisions compare with Python numbers: one device sync per forward, not per layer
            theta=None if self.soft else stats.thresholds.tolist(),
            norm=(stats.n0.to(torch.float32).unsqueeze(1) if self.ltp.score_norm == "length"
                  else float(self.ltp.score_length)),
        )
        try:
            out = super().forward_scriptable(src_tokens, src_lengths, return_all_hiddens, token_embeddings)
            self.last_stats = stats
        finally:
            self._run = None
        return out

    def forward_layer(self, layer, x, padding_mask):
        run = self._run
        idx = layer.layer_idx
        if run is None or not self.prunes_at(idx):
            x, padding_mask = super().forward_layer(layer, x, padding_mask)
            if run is not None:
                run.stats.record()
            return x, padding_mask

        live_pad = padding_mask if run.has_padding else None
        h, probs = layer.attention_block(x, live_pad, need_probs=True)
        received = scoring.received_attention(probs, live_pad)
        if self.ltp.prune_mode == "topk":
            # the sum, not the mean, of received attention: the ranking is the same either way
            k = scoring.topk_counts(run.stats.n0, self.keep_rates[idx])
            keep = scoring.keep_top_k(received, live_pad, k)
        elif self.soft:
            scores = received / (layer.num_heads * run.norm)
            mask = scoring.soft_mask(scores, run.stats.thresholds[idx], self.ltp.temperature)
            run.stats.soft_masks.append((idx, mask, padding_mask))
            run.stats.record()
            return layer.ffn_block(h) * mask.unsqueeze(-1).to(h.dtype), padding_mask
        else:
            keep = scoring.keep_received(received, scoring.received_cut(run.theta[idx], layer.num_heads, run.norm))

        run.stats.record(keep.sum(dim=1))
        if not self.ltp.physical_removal:
            # masked path: pruned tokens stay (and still pay for the FFN) but no longer act as keys
            # or vote as queries in later layers; zeroed like the original's hard mask
            run.has_padding = True
            out = layer.ffn_block(h).masked_fill(~keep.unsqueeze(-1), 0.0)
            return out, padding_mask | ~keep
        if x.size(0) == 1:
            # one example: no padding before or after, a plain index_select is the whole gather
            index = keep[0].nonzero().squeeze(1)
            h = h.index_select(1, index)
            return layer.ffn_block(h), padding_mask.new_zeros(1, index.numel())
        gathered = gather_tokens(h, padding_mask, keep)
        run.has_padding = bool(gathered.padding_mask.any())
        return layer.ffn_block(gathered.x), gathered.padding_mask

    def _check_first_token(self, src_tokens):
        if self._checked_first_token:
            return
        self._checked_first_token = True
        if src_tokens.size(1) and not bool(src_tokens[:, 0].eq(self.dictionary.bos()).all()):
            logger.warning(
                "LTP always keeps position 0 as the sentence token, but the first tokens are not <s>: "
                "run sentence_prediction with --init-token 0 (as fairseq's RoBERTa recipes do)")

    # ---- checkpoints ---------------------------------------------------------------------------
    def upgrade_state_dict_named(self, state_dict, name):
        prefix = name + "." if name else ""
        self._check_shape(state_dict, prefix)
        key = prefix + THRESHOLD_PARAM
        if key not in state_dict:
            # a fine-tuned model without LTP: thresholds start at their schedule (delta = 0)
            state_dict[key] = torch.zeros_like(self.ltp_threshold_delta)
        return super().upgrade_state_dict_named(state_dict, name)

    def _check_shape(self, state_dict, prefix):
        """Refuse a checkpoint of another encoder shape with a message that says which."""
        layer_ids = {int(k[len(prefix) + 7:].split(".")[0]) for k in state_dict
                     if k.startswith(prefix + "layers.")}
        emb = state_dict.get(prefix + "embed_tokens.weight")
        if emb is None or not layer_ids:
            return
        have = (max(layer_ids) + 1, emb.size(1))
        want = (len(self.layers), self.embed_tokens.embedding_dim)
        if have != want:
            arch = getattr(self.args, "arch", None) or getattr(self.args, "_name", "this architecture")
            raise ValueError(
                f"checkpoint encoder has {have[0]} layers of width {have[1]}, but --arch {arch} builds "
                f"{want[0]} layers of width {want[1]}: choose the matching architecture "
                f"(ltp_roberta_minilm for MiniLM-L6, ltp_roberta_base for roberta.base)")
