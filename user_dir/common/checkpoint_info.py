"""What a sentence-prediction checkpoint is: model family, shape, classification heads.

The encoder methods start from a fine-tuned checkpoint, and the most common one is a RoBERTa
fine-tuned with stock fairseq (``--arch roberta_base``/``roberta_large``/``roberta``, any
``--classification-head-name``). Its parameter names equal ``prunable_roberta``'s, so it can be
read as one; this module says how:

- :func:`read_info` describes a checkpoint without building it;
- :func:`as_prunable` rewrites a loaded stock checkpoint's config in place so fairseq builds it as
  ``prunable_roberta`` (same shape, fairseq's fixed LayerNorm eps 1e-5);
- :func:`restore_flags` gives the ``fairseq-train`` flags that make a method's architecture
  (``ltp_roberta*``, ``trbert_roberta*``) match the checkpoint for ``--restore-file``;
- :func:`check_head_matches_data` refuses a head whose size is not the data's class count.

Command line: ``python -m user_dir.common.describe_checkpoint CKPT [--data DATA] [--flags]``.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional

STOCK_LAYERNORM_EPS = 1e-5  # fairseq's TransformerEncoder LayerNorm, not configurable there
DEFAULT_HEAD = "sentence_classification_head"


class CheckpointInfoError(ValueError):
    """The file is not a usable sentence-prediction checkpoint; the message names the file."""


def cfg_of(state):
    """The run config of a raw checkpoint (``cfg``, or the ``args`` of old argparse checkpoints)."""
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    if state.get("args") is not None:
        return convert_namespace_to_omegaconf(state["args"])
    return state.get("cfg")


def cfg_get(section, key, default=None):
    """``section.key`` for DictConfig, dict or Namespace sections; ``default`` when absent/None."""
    if section is None:
        return default
    try:
        value = section.get(key, default) if hasattr(section, "get") else getattr(section, key, default)
    except Exception:  # an unresolvable interpolation
        return default
    return default if value is None else value


def cfg_set(section, key, value) -> None:
    from omegaconf import OmegaConf, open_dict

    if OmegaConf.is_config(section):
        with open_dict(section):
            section[key] = value
    elif isinstance(section, dict):
        section[key] = value
    else:  # legacy argparse checkpoints keep a Namespace here
        setattr(section, key, value)


def criterion_section(cfg):
    return cfg.get("criterion", None) if hasattr(cfg, "get") else getattr(cfg, "criterion", None)


@dataclass
class CheckpointInfo:
    path: str
    model_name: str
    family: str  # roberta (stock fairseq) | prunable_roberta | ltp_roberta | trbert_roberta | other
    task: Optional[str]
    layers: int
    embed_dim: int
    ffn_dim: int
    attention_heads: int
    max_positions: Optional[int]
    layernorm_eps: float
    activation_fn: str
    normalize_before: bool
    heads: Dict[str, int] = field(default_factory=dict)  # classification head -> outputs
    configured_head: str = DEFAULT_HEAD
    regression: bool = False
    layer_heads: Optional[str] = None  # structurally pruned sizes, when pruned
    layer_ffn_dims: Optional[str] = None

    @property
    def head(self) -> str:
        """The head the methods use: the configured one, else the only one there is."""
        if self.configured_head in self.heads or not self.heads:
            return self.configured_head
        if len(self.heads) == 1:
            return next(iter(self.heads))
        raise CheckpointInfoError(
            f"--path: {self.path} has classification heads {', '.join(self.heads)} but none is the "
            f"configured {self.configured_head!r}; pass --classification-head-name with one of them")


def _family(model_cls) -> str:
    from fairseq.models.roberta.model import RobertaModel

    from user_dir.common.prunable_roberta import PrunableRobertaModel

    if model_cls is None:
        return "other"
    if model_cls is RobertaModel:
        return "roberta"
    if model_cls is PrunableRobertaModel:
        return "prunable_roberta"
    if issubclass(model_cls, PrunableRobertaModel):
        from user_dir.ltp.model import LtpRobertaModel
        from user_dir.trbert.model import TrbertRobertaModel

        if issubclass(model_cls, LtpRobertaModel):
            return "ltp_roberta"
        if issubclass(model_cls, TrbertRobertaModel):
            return "trbert_roberta"
        return "prunable_roberta"
    return "other"


def load_raw(path: str, data: Optional[str] = None):
    """The raw checkpoint dict, or :class:`CheckpointInfoError` naming ``--path``."""
    import os

    from fairseq import checkpoint_utils

    if not path or not os.path.isfile(path):
        raise CheckpointInfoError(f"--path: no such checkpoint file: {path!r}")
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(
            path, arg_overrides={"data": data} if data else None)
    except Exception as e:
        raise CheckpointInfoError(f"--path: {path} is not a readable fairseq checkpoint "
                                  f"({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(state, dict) or "model" not in state or cfg_of(state) is None:
        raise CheckpointInfoError(f"--path: {path} is not a fairseq checkpoint (no cfg/args or model)")
    return state


def read_info(path: str, state=None) -> CheckpointInfo:
    from fairseq.models import ARCH_MODEL_REGISTRY, MODEL_REGISTRY

    state = state if state is not None else load_raw(path)
    cfg = cfg_of(state)
    model = cfg.model
    name = cfg_get(model, "_name") or cfg_get(model, "arch") or "?"
    model_cls = ARCH_MODEL_REGISTRY.get(name) or MODEL_REGISTRY.get(name)
    weights = state["model"]
    layers = sorted({int(k.split(".")[3]) for k in weights if k.startswith("encoder.sentence_encoder.layers.")})
    if not layers:
        raise CheckpointInfoError(f"--path: {path} holds a {name!r} model without a RoBERTa-style encoder "
                                  "(no encoder.sentence_encoder.layers.* weights)")
    heads = {k.split(".")[1]: int(v.size(0)) for k, v in weights.items()
             if k.startswith("classification_heads.") and k.endswith(".out_proj.weight")}
    crit = criterion_section(cfg)
    family = _family(model_cls)
    eps = cfg_get(model, "layernorm_eps", STOCK_LAYERNORM_EPS) if family != "roberta" else STOCK_LAYERNORM_EPS
    positions = weights.get("encoder.sentence_encoder.embed_positions.weight")
    return CheckpointInfo(
        path=path, model_name=name, family=family, task=cfg_get(cfg.task, "_name"),
        layers=len(layers),
        embed_dim=int(weights["encoder.sentence_encoder.layers.0.fc1.weight"].size(1)),
        ffn_dim=int(cfg_get(model, "encoder_ffn_embed_dim",
                            weights["encoder.sentence_encoder.layers.0.fc1.weight"].size(0))),
        attention_heads=int(cfg_get(model, "encoder_attention_heads", 0)),
        max_positions=int(cfg_get(model, "max_positions", 0)) or (
            int(positions.size(0)) - 2 if positions is not None else None),
        layernorm_eps=float(eps),
        activation_fn=str(cfg_get(model, "activation_fn", "gelu")),
        normalize_before=bool(cfg_get(model, "encoder_normalize_before", False)),
        heads=heads,
        configured_head=cfg_get(crit, "classification_head_name", DEFAULT_HEAD),
        regression=bool(cfg_get(crit, "regression_target", False)),
        layer_heads=cfg_get(model, "encoder_layer_heads"),
        layer_ffn_dims=cfg_get(model, "encoder_layer_ffn_dims"),
    )


def as_prunable(state, info: CheckpointInfo) -> None:
    """Let fairseq build a stock ``roberta`` checkpoint as ``prunable_roberta`` (in place).

    The weights load unchanged (same names); LayerNorm eps is pinned to the stock model's. The
    configured head becomes the one the checkpoint has, so the task registers that name."""
    if info.family != "roberta":
        return
    cfg = cfg_of(state)
    if state.get("args") is not None:  # make the converted cfg the one fairseq reads
        state["args"], state["cfg"] = None, cfg
    cfg_set(cfg.model, "_name", "prunable_roberta")
    cfg_set(cfg.model, "arch", "prunable_roberta")
    cfg_set(cfg.model, "layernorm_eps", STOCK_LAYERNORM_EPS)
    for key in ("encoder_layer_heads", "encoder_layer_ffn_dims"):
        cfg_set(cfg.model, key, None)
    head = info.head
    crit = criterion_section(cfg)
    if crit is not None and cfg_get(crit, "classification_head_name") != head:
        cfg_set(crit, "classification_head_name", head)


def load_as_prunable(path: str, data: str):
    """(models, cfg, task) of a fine-tuned checkpoint, a stock ``roberta*`` one built as prunable."""
    from fairseq import checkpoint_utils

    state = load_raw(path, data)
    as_prunable(state, read_info(path, state))
    return checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides={"data": data}, state=state)


def restore_flags(info: CheckpointInfo) -> List[str]:
    """fairseq-train flags that make any prunable architecture match the checkpoint's shape and head.

    Per-layer pruned sizes need no flag: ``prunable_roberta`` adopts them from the weights."""
    flags = ["--encoder-layers", str(info.layers), "--encoder-embed-dim", str(info.embed_dim),
             "--encoder-ffn-embed-dim", str(info.ffn_dim), "--layernorm-eps", repr(info.layernorm_eps),
             "--activation-fn", info.activation_fn]
    if info.attention_heads:
        flags += ["--encoder-attention-heads", str(info.attention_heads)]
    if info.normalize_before:
        flags += ["--encoder-normalize-before"]
    if info.heads:
        flags += ["--classification-head-name", info.head]
    return flags


def check_head_matches_data(info: CheckpointInfo, data_dir: str) -> None:
    """The checkpoint's head must predict as many values as the data has classes."""
    from user_dir.common.data_classes import LabelSpecError, label_spec

    spec = label_spec(data_dir)
    if not info.heads:
        return
    outputs = info.heads[info.head]
    if spec.regression != info.regression or outputs != spec.num_classes:
        raise LabelSpecError(
            f"--path: {info.path}'s head {info.head!r} predicts {outputs} "
            f"{'regression value(s)' if info.regression else 'classes'}, but {data_dir} holds "
            f"{spec.describe()} (label/dict.txt); was it fine-tuned on other data?")
