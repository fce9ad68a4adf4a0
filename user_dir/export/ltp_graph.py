"""LTP's evaluation-time token pruning, in a form an ONNX export keeps per example.

It is what ``ltp.encoder.LtpTransformerEncoder.forward_layer`` computes in eval mode (hard
decisions, thresholds frozen), reusing its scoring functions; only the Python-side shortcuts
(``bool(padding.any())``, the batch-of-one ``index_select``, the stable sort) are replaced by the
tensor operations of :mod:`user_dir.export.graph_ops`, which give the same tokens.
"""
import torch

from user_dir.export.graph_ops import gather_kept, keep_best
from user_dir.ltp import scoring


class LtpLayers:
    """Runs the encoder layers of an ``ltp_roberta`` model on batch-first ``x``."""

    def __init__(self, encoder):
        if encoder.training:
            raise ValueError("export an LTP encoder in eval mode (hard thresholds)")
        self.encoder = encoder
        self.options = encoder.ltp
        # eval mode: plain numbers, frozen into the graph as the model compares with them
        self.theta = encoder.thresholds().tolist()

    def __call__(self, x: torch.Tensor, padding: torch.Tensor):
        enc, opts = self.encoder, self.options
        n0 = (~padding).sum(dim=1)  # the unpruned lengths: the score norm and the top-k base
        norm = n0.to(torch.float32).unsqueeze(1) if opts.score_norm == "length" else float(opts.score_length)
        for idx, layer in enumerate(enc.layers):
            if not enc.prunes_at(idx):
                x = layer(x, padding)
                continue
            h, probs = layer.attention_block(x, padding, need_probs=True)
            received = scoring.received_attention(probs, padding)
            if opts.prune_mode == "topk":
                first = torch.arange(received.size(1), device=received.device).eq(0).unsqueeze(0)
                ranked = received.masked_fill(first, float("inf"))  # <s> always among the k
                keep = keep_best(ranked, ~padding, scoring.topk_counts(n0, enc.keep_rates[idx]))
            else:
                cut = scoring.received_cut(self.theta[idx], layer.num_heads, norm)
                keep = scoring.keep_received(received, cut)
            if not opts.physical_removal:
                # the masked variant: pruned tokens keep their slot, zeroed, and become padding
                x = layer.ffn_block(h).masked_fill(~keep.unsqueeze(-1), 0.0)
                padding = padding | ~keep
                continue
            h, padding = gather_kept(h, padding, keep)
            x = layer.ffn_block(h)
        return x, padding
