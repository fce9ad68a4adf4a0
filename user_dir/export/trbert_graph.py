"""TR-BERT's inference-time token selection, in a form an ONNX export keeps per example.

It is what ``trbert.encoder.TrbertTransformerEncoder`` computes in eval mode (greedy passes, the
model's ``--trbert-select``): before each reduction layer the policy's p >= 0.5 (``policy``), or a
per-example budget ``round(r * n)`` ranked by policy logit (``policy_topk``) or by the attention
received in the layer before (``attention_topk``); ``<s>`` always stays. Kept tokens are gathered
per example (:func:`graph_ops.gather_kept`) even when an example keeps all of them, which gives the
same kept tokens as the model's skip of that gather.
"""
import torch

from user_dir.export.graph_ops import gather_kept, keep_best
from user_dir.trbert.selection import keep_counts, received_attention


class TrbertLayers:
    """Runs the encoder layers of a ``trbert_roberta`` model on batch-first ``x``."""

    def __init__(self, encoder):
        if encoder.training:
            raise ValueError("export a TR-BERT encoder in eval mode (greedy selection)")
        self.encoder = encoder
        self.points = {layer: i for i, layer in enumerate(encoder.reduce_layers)}
        self.select = encoder.select
        self.ratios = encoder.keep_ratios

    def __call__(self, x: torch.Tensor, padding: torch.Tensor):
        received = None
        for idx, layer in enumerate(self.encoder.layers):
            point = self.points.get(idx)
            if point is not None:
                x, padding = self._reduce(point, x, padding, received)
            if self.select == "attention_topk" and idx + 1 in self.points:
                # the layer before a point scores the tokens by the attention they receive
                h, probs = layer.attention_block(x, padding, need_probs=True)
                received = received_attention(probs, padding)
                x = layer.ffn_block(h)
            else:
                x = layer(x, padding)
        return x, padding

    def _reduce(self, point: int, x, padding, received):
        real = ~padding
        # <s> sits in slot 0 of every example (kept tokens keep their order) and always stays
        first = torch.arange(x.size(1), device=x.device).eq(0).unsqueeze(0) & real
        active = real & ~first
        if self.select == "attention_topk":
            keep = keep_best(received, active, keep_counts(active, self.ratios[point]))
        else:
            logits = self.encoder.policies[point](x)
            if self.select == "policy_topk":
                keep = keep_best(logits, active, keep_counts(active, self.ratios[point]))
            else:
                keep = (logits >= 0.0) & active  # sigmoid(z) >= 0.5
        return gather_kept(x, padding, keep | first)
