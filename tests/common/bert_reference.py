"""An independent BERT forward pass, written from the paper's equations straight on the
safetensors weights (no fairseq, no converter code), used as the reference the converted fairseq
model is checked against.

Embeddings: word + position + token-type-0, LayerNorm. Each layer (post-LN):
    h = LN(x + Wo · softmax(Q Kᵀ / sqrt(d_head) + mask) V)
    y = LN(h + W2 · GELU(W1 h))
"""
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file


def load_bert(bert_dir):
    bert_dir = Path(bert_dir)
    config = json.loads((bert_dir / "config.json").read_text())
    weights = {k[5:] if k.startswith("bert.") else k: v.float()
               for k, v in load_file(str(bert_dir / "model.safetensors")).items()}
    vocab = (bert_dir / "vocab.txt").read_text(encoding="utf-8").split("\n")
    vocab = [t for t in vocab if t != ""]
    return config, weights, vocab


def _gelu(x, act):
    if act == "gelu":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    # gelu_new: the tanh approximation
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def bert_hidden_states(config, w, input_ids, attention_mask=None):
    """Return [embeddings, layer 1, ..., layer L] hidden states, each (batch, seq, dim).

    ``input_ids`` are BERT vocabulary ids, ``attention_mask`` 1 for real tokens (right padding).
    """
    eps = config.get("layer_norm_eps", 1e-12)
    act = config.get("hidden_act", "gelu")
    heads = config["num_attention_heads"]
    bsz, seq = input_ids.shape
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)

    def ln(x, name):
        return F.layer_norm(x, x.shape[-1:], w[name + ".weight"], w[name + ".bias"], eps)

    def lin(x, name):
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    x = (w["embeddings.word_embeddings.weight"][input_ids]
         + w["embeddings.position_embeddings.weight"][:seq].unsqueeze(0)
         + w["embeddings.token_type_embeddings.weight"][0])
    x = ln(x, "embeddings.LayerNorm")
    states = [x]
    additive = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        dh = x.shape[-1] // heads

        def split(t):
            return t.view(bsz, seq, heads, dh).transpose(1, 2)

        q, k, v = (split(lin(x, p + n)) for n in
                   ("attention.self.query", "attention.self.key", "attention.self.value"))
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh) + additive
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(bsz, seq, -1)
        h = ln(x + lin(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        ff = lin(_gelu(lin(h, p + "intermediate.dense"), act), p + "output.dense")
        x = ln(h + ff, p + "output.LayerNorm")
        states.append(x)
    return states
