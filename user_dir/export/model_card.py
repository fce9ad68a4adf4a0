"""``model_card.json``: what an exported model is, how it was made and what it expects.

The card describes the checkpoint as loaded (architecture, per-layer sizes, token-pruning settings,
parameters), its cost (multiply-accumulates per example at a given length, counted as the bench
counts them: ``user_dir.bench.sentence`` for encoders, ``user_dir.srp.counting`` for translation),
the method chain that produced it (:mod:`user_dir.export.method_chain`), and the interface of the
ONNX files and the vocabulary shipped beside them. ``fairseq-compress-export --info`` prints it
without exporting.
"""
import os
from dataclasses import asdict
from typing import Optional

import torch

from user_dir.common.checkpoint_info import cfg_get, read_info
from user_dir.common.counting import count_parameters
from user_dir.export.method_chain import chain_text

FORMAT = "fairseq-compress-export/1"
DEFAULT_LENGTH = 128


def build_card(source, chain, length: Optional[int] = None) -> dict:
    """Everything about the model; the export adds ``files``, ``exporter`` and ``vocabulary``."""
    card = {"format": FORMAT, "source_checkpoint": os.path.abspath(source.path), "task": source.kind,
            "method_chain": chain, "method_chain_text": chain_text(chain),
            "parameters": count_parameters(source.reference), "data": os.path.abspath(source.data),
            "notes": list(source.notes)}
    if source.kind == "sentence":
        card.update(_sentence(source, length))
    else:
        card.update(_translation(source, length))
    return card


# ---- sentence prediction --------------------------------------------------------------------------
def _sentence(source, length):
    from user_dir.bench.sentence import layer_dims
    from user_dir.ltp.flops import LayerDims, layer_macs

    info = read_info(source.path, source.state)
    model = source.graph_model
    enc = model.encoder.sentence_encoder
    head_dim = enc.layers[0].self_attn.head_dim
    arch = {"model": source.model_name, "family": source.family, "layers": info.layers,
            "embed_dim": info.embed_dim, "attention_heads": info.attention_heads, "head_dim": head_dim,
            "ffn_dim": info.ffn_dim, "activation_fn": info.activation_fn, "normalize_before": info.normalize_before,
            "layernorm_eps": info.layernorm_eps, "max_positions": model.max_positions()}
    layers = [{"heads": l.self_attn.num_heads, "ffn": l.fc1.out_features} for l in enc.layers]
    n = min(int(length or DEFAULT_LENGTH), model.max_positions())
    full = [LayerDims(info.embed_dim, info.attention_heads * head_dim, info.ffn_dim)] * len(enc.layers)
    all_tokens = float(sum(layer_macs(layer_dims(l), n, n) for l in enc.layers))
    unpruned = float(sum(layer_macs(d, n, n) for d in full))
    pruning = token_pruning(enc)
    flops = {"length": n, "counted": "encoder layers (projections, attention products, FFN), as the bench; "
                                      "embeddings, LayerNorm, softmax and classifier excluded",
             "macs_all_tokens": all_tokens, "unpruned_architecture_macs": unpruned,
             "relative_to_unpruned_all_tokens": all_tokens / unpruned}
    if pruning is None:
        flops["macs_per_example"] = all_tokens
    elif pruning["input_dependent"]:
        flops["macs_per_example"] = None
        flops["note"] = ("token pruning keeps an input-dependent number of tokens: macs_all_tokens is the upper "
                         "bound; --check-parity measures the mean over a data split")
    else:
        flops["macs_per_example"] = _macs_at_length(source, n)
    flops["flops_per_example"] = None if flops["macs_per_example"] is None else 2 * flops["macs_per_example"]
    flops["relative_to_unpruned"] = None if flops["macs_per_example"] is None else flops["macs_per_example"] / unpruned
    dictionary = source.task.source_dictionary
    return {"architecture": arch, "layers": layers, "token_pruning": pruning, "flops": flops,
            "classification_head": source.head, "regression": source.regression,
            "inputs": {"src_tokens": {"dtype": "int64", "shape": ["batch", "length"], "pad": dictionary.pad(),
                                      "bos": dictionary.bos(), "eos": dictionary.eos(), "unk": dictionary.unk(),
                                      "layout": "<s> tokens </s>, right-padded with pad",
                                      "max_length": model.max_positions()}},
            "outputs": {"logits": {"dtype": "float32",
                                   "shape": ["batch", int(model.classification_heads[source.head].out_proj.out_features)]}}}


def token_pruning(encoder) -> Optional[dict]:
    """Token-pruning settings of an LTP or TR-BERT encoder (None for every other encoder)."""
    from user_dir.ltp.encoder import LtpTransformerEncoder
    from user_dir.trbert.encoder import TrbertTransformerEncoder

    if isinstance(encoder, LtpTransformerEncoder):
        opts = encoder.ltp
        layers = [i for i in range(len(encoder.layers)) if encoder.prunes_at(i)]
        out = {"method": "ltp", "prune_mode": opts.prune_mode, "pruning_layers": layers,
               "where": "between the attention block and the FFN of each pruning layer; <s> always kept",
               "physical_removal": opts.physical_removal, "input_dependent": opts.prune_mode != "topk"}
        if opts.prune_mode == "topk":
            out["keep_rates"] = list(encoder.keep_rates)
        else:
            theta = encoder.thresholds().tolist()
            out.update({"thresholds": [max(1e-5, theta[i]) if i in layers else None for i in range(len(theta))],
                        "score_norm": opts.score_norm, "score_length": opts.score_length,
                        "rule": "keep a token when the attention it receives, summed over heads and live query "
                                "rows, divided by heads x (score_length or the example's length) >= threshold"})
        return out
    if isinstance(encoder, TrbertTransformerEncoder):
        return {"method": "trbert", "reduce_before_layers": list(encoder.reduce_layers), "select": encoder.select,
                "keep_ratios": encoder.keep_ratios, "policy_dim": encoder.policies[0].fc1.out_features
                if len(encoder.policies) else None, "input_dependent": encoder.select == "policy",
                "where": "before each reduction layer; <s> always kept"}
    return None


@torch.no_grad()
def _macs_at_length(source, n: int) -> float:
    """Exact per-example cost when the kept counts depend only on the length (top-k modes)."""
    from user_dir.bench.sentence import SentenceModel, forward_with_cost

    d = source.task.source_dictionary
    tokens = torch.randint(d.nspecial, len(d), (1, n), generator=torch.Generator().manual_seed(0))
    tokens[0, 0], tokens[0, -1] = d.bos(), d.eos()
    sm = SentenceModel("card", source.path, source.graph_model, source.task, source.head)
    return float(forward_with_cost(sm, tokens)[1].sum())


# ---- translation ---------------------------------------------------------------------------------
def _translation(source, length):
    from user_dir.srp.counting import flops_per_sentence

    model = source.graph_model
    cfg = model.cfg
    shapes = model.current_shapes()
    arch = {"model": source.model_name, "family": source.family,
            **{k: cfg_get(cfg, k) for k in ("encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_layers",
                                            "encoder_attention_heads", "decoder_embed_dim", "decoder_ffn_embed_dim",
                                            "decoder_layers", "decoder_attention_heads")},
            "share_decoder_input_output_embed": bool(cfg_get(cfg, "share_decoder_input_output_embed", False)),
            "weighted_layernorm": bool(cfg_get(cfg, "weighted_layernorm", False)),
            "max_source_positions": model.encoder.max_positions(),
            "max_target_positions": model.decoder.max_positions()}
    n = int(length or DEFAULT_LENGTH)
    n = min(n, model.encoder.max_positions(), model.decoder.max_positions())
    counted = flops_per_sentence(model, n, n)
    unpruned = _unpruned_translation_macs(source, shapes, n)
    flops = {"source_length": n, "target_length": n,
             "counted": "a teacher-forced forward of one sentence pair (SRP's counting): every projection, both "
                        "attention products, the output projection",
             "macs_per_example": float(counted["total"]), "flops_per_example": 2.0 * counted["total"],
             "unpruned_architecture_macs": unpruned,
             "relative_to_unpruned": float(counted["total"]) / unpruned if unpruned else None}
    src, tgt = source.task.source_dictionary, source.task.target_dictionary
    return {"architecture": arch, "shapes": asdict(shapes),
            "gated": bool(model.gated), "flops": flops,
            "inputs": {"src_tokens": {"dtype": "int64", "shape": ["batch", "src_len"], "pad": src.pad(),
                                      "eos": src.eos(), "layout": "tokens </s>, left-padded with pad "
                                                                  "(fairseq's default for sources)"}},
            "decoding": {"bos": tgt.eos(), "eos": tgt.eos(), "pad": tgt.pad(),
                         "first_step": "prev_output_tokens = </s> (fairseq starts every hypothesis with eos); "
                                       "past_* caches of length 0",
                         "next_steps": "feed the chosen token, the present_* caches as past_*; reorder the "
                                       "batch rows of the caches and cross_* tensors for beam search"}}


def _unpruned_translation_macs(source, shapes, n):
    from user_dir.srp.counting import flops_per_sentence
    from user_dir.srp.shapes import ModelShapes

    model = source.graph_model
    if shapes == ModelShapes.from_arch(model.cfg):
        return float(flops_per_sentence(model, n, n)["total"])
    from argparse import Namespace
    from user_dir.srp.model import SRPModel

    values = {k: cfg_get(model.cfg, k) for k in ("encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_layers",
                                                 "encoder_attention_heads", "decoder_embed_dim",
                                                 "decoder_ffn_embed_dim", "decoder_layers", "decoder_attention_heads",
                                                 "share_decoder_input_output_embed", "max_source_positions",
                                                 "max_target_positions")}
    full = SRPModel.build_model(Namespace(**values, srp_shapes=""), source.task)
    return float(flops_per_sentence(full, n, n)["total"])
