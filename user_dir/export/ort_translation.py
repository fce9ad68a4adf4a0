"""An exported translation model as a fairseq model, so fairseq's own search runs on onnxruntime.

``OrtTranslationModel`` has the interface ``SequenceGenerator`` drives (an encoder with
``reorder_encoder_out``, an incremental decoder with ``reorder_incremental_state``), but its forward
calls are the two ONNX graphs of :mod:`user_dir.export.translation_graph`. Greedy and beam search,
length limits and scoring are therefore exactly fairseq-generate's, which is what the parity check
compares (same hypotheses as the PyTorch model) and what the speed measurement times.
"""
import numpy as np
import torch
from fairseq.models import FairseqEncoder, FairseqEncoderDecoderModel, FairseqIncrementalDecoder

from user_dir.export import ort_runtime

CACHE = "ort_past"


class OrtEncoder(FairseqEncoder):
    def __init__(self, sess, dictionary, max_positions: int):
        super().__init__(dictionary)
        self.sess = sess
        self.max_positions_ = max_positions

    def forward(self, src_tokens, src_lengths=None, **unused):
        out = ort_runtime.run(self.sess, {"src_tokens": src_tokens.cpu().numpy()})
        names = [name for name in out if name.startswith("cross_")]
        return {
            # by name: a decoder graph leaves out the inputs it never reads (e.g. the keys of a
            # cross-attention module without v·o dims)
            "cross_names": names,
            "cross": [torch.from_numpy(out[name]) for name in names],
            "encoder_out": [torch.from_numpy(out["encoder_out"]).transpose(0, 1)],  # T x B x C, as fairseq
            "encoder_padding_mask": [torch.from_numpy(out["encoder_padding_mask"])],
            "src_lengths": [] if src_lengths is None else [src_lengths],
        }

    def reorder_encoder_out(self, encoder_out, new_order):
        new_order = new_order.cpu()
        return {
            "cross_names": encoder_out["cross_names"],
            "encoder_out": [t.index_select(1, new_order) for t in encoder_out["encoder_out"]],
            "encoder_padding_mask": [t.index_select(0, new_order) for t in encoder_out["encoder_padding_mask"]],
            "cross": [t.index_select(0, new_order) for t in encoder_out["cross"]],
            "src_lengths": [t.index_select(0, new_order) for t in encoder_out["src_lengths"]],
        }

    def max_positions(self):
        return self.max_positions_


class OrtDecoder(FairseqIncrementalDecoder):
    def __init__(self, sess, dictionary, max_positions: int):
        super().__init__(dictionary)
        self.sess = sess
        self.max_positions_ = max_positions
        # (heads, width) of every past_* input, for the empty cache of the first step
        self.cache_shapes = [(i.name, (i.shape[1], i.shape[3])) for i in sess.get_inputs()
                             if i.name.startswith("past_")]

    def forward(self, prev_output_tokens, encoder_out=None, incremental_state=None, **unused):
        if incremental_state is None:  # full prefix: run it step by step on a private cache
            state, steps = {}, []
            for t in range(prev_output_tokens.size(1)):
                steps.append(self.forward(prev_output_tokens[:, :t + 1], encoder_out, state)[0])
            return torch.cat(steps, dim=1), {"attn": [None], "inner_states": None}
        past = self.get_incremental_state(incremental_state, CACHE)
        bsz = prev_output_tokens.size(0)
        if past is None:
            past = {name: np.zeros((bsz, h, 0, w), dtype=np.float32) for name, (h, w) in self.cache_shapes}
        feeds = {"prev_output_tokens": prev_output_tokens[:, -1:].cpu().numpy(),
                 "encoder_padding_mask": encoder_out["encoder_padding_mask"][0].numpy()}
        wanted = {i.name for i in self.sess.get_inputs()}
        feeds.update({name: t.numpy() for name, t in zip(encoder_out["cross_names"], encoder_out["cross"])
                      if name in wanted})
        feeds.update(past)
        out = ort_runtime.run(self.sess, feeds)
        self.set_incremental_state(incremental_state, CACHE,
                                   {name: out["present_" + name[len("past_"):]] for name in past})
        return torch.from_numpy(out["logits"]).unsqueeze(1), {"attn": [None], "inner_states": None}

    def reorder_incremental_state(self, incremental_state, new_order):
        past = self.get_incremental_state(incremental_state, CACHE)
        if past is not None:
            order = new_order.cpu().numpy()
            self.set_incremental_state(incremental_state, CACHE, {k: v[order] for k, v in past.items()})

    def max_positions(self):
        return self.max_positions_


class OrtTranslationModel(FairseqEncoderDecoderModel):
    def max_decoder_positions(self):
        return self.decoder.max_positions()


def load(encoder_path: str, decoder_path: str, src_dict, tgt_dict, max_source: int, max_target: int,
         threads: int = 1) -> OrtTranslationModel:
    encoder = OrtEncoder(ort_runtime.session(encoder_path, threads), src_dict, max_source)
    decoder = OrtDecoder(ort_runtime.session(decoder_path, threads), tgt_dict, max_target)
    return OrtTranslationModel(encoder, decoder).eval()
