"""Reading the fine-tuned checkpoint Kprune starts from, and writing the pruned one.

The input must be a ``prunable_roberta`` model fine-tuned with ``--task sentence_prediction``; the
checks run on the raw checkpoint first, so a wrong file fails with a message about ``--path``
instead of a shape error deep inside fairseq.

The output is an ordinary fairseq checkpoint: plain ``cfg`` (per-layer sizes in
``cfg.model.encoder_layer_heads`` / ``encoder_layer_ffn_dims``), a state dict of tensors, a fresh
optimizer history (a pruned model is the start of a new run, e.g. LTP) and Kprune's log under
``extra_state["kprune"]``. No module is pickled.
"""
import os
from argparse import Namespace

import torch
from fairseq import checkpoint_utils
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.models import ARCH_MODEL_REGISTRY, MODEL_REGISTRY
from omegaconf import OmegaConf

from user_dir.common.prunable_roberta import PrunableRobertaModel


class KpruneInputError(ValueError):
    """A bad command-line input; the message starts with the option it is about."""


def _cfg_of(state):
    if state.get("args") is not None:
        return convert_namespace_to_omegaconf(state["args"])
    if state.get("cfg") is not None:
        return state["cfg"]
    return None


def _get(section, key, default=None):
    try:
        value = section.get(key, default) if hasattr(section, "get") else getattr(section, key, default)
    except Exception:  # an unresolvable interpolation
        return default
    return default if value is None else value


def check_data_dir(data: str) -> None:
    if not data or not os.path.isdir(data):
        raise KpruneInputError(f"data: no such directory: {data!r}")
    if not os.path.isfile(os.path.join(data, "input0", "dict.txt")):
        raise KpruneInputError(f"data: {data} is not a sentence_prediction data directory "
                               "(input0/dict.txt is missing; see fairseq-preprocess)")


def read_checkpoint(path: str, data: str):
    """The raw checkpoint state, validated to be a fine-tuned prunable_roberta classifier."""
    if not path or not os.path.isfile(path):
        raise KpruneInputError(f"--path: no such checkpoint file: {path!r}")
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(path, arg_overrides={"data": data})
    except Exception as e:
        raise KpruneInputError(f"--path: {path} is not a readable fairseq checkpoint "
                               f"({type(e).__name__}: {str(e)[:200]})") from None
    cfg = _cfg_of(state) if isinstance(state, dict) else None
    if cfg is None or "model" not in state:
        raise KpruneInputError(f"--path: {path} is not a fairseq checkpoint (no cfg/args or model)")
    task_name = _get(cfg.task, "_name")
    if task_name != "sentence_prediction":
        raise KpruneInputError(
            f"--path: {path} was trained for task {task_name!r}; fairseq-kprune prunes a model "
            "fine-tuned with --task sentence_prediction (e.g. by scripts/models/finetune-baseline.sh)")
    model_name = _get(cfg.model, "_name") or _get(cfg.model, "arch")
    # cfg.model._name is the --arch name (e.g. prunable_roberta_minilm), or a model name
    model_cls = ARCH_MODEL_REGISTRY.get(model_name) or MODEL_REGISTRY.get(model_name)
    if model_cls is not PrunableRobertaModel:
        kind = f"{model_name!r}" + (f" ({model_cls.__name__})" if model_cls else "")
        if model_cls is not None and issubclass(model_cls, PrunableRobertaModel):
            raise KpruneInputError(
                f"--path: {path} holds a {kind} model with token pruning; fairseq-kprune prunes the "
                "plain prunable_roberta model without token pruning: run it first, then train token "
                "pruning (e.g. LTP) from its pruned checkpoint")
        raise KpruneInputError(
            f"--path: {path} holds a {kind} model; fairseq-kprune needs a prunable_roberta model "
            "(fine-tuned with --arch prunable_roberta*, which restores stock RoBERTa/converted "
            "BERT weights unchanged)")
    if _get(cfg.model, "encoder_normalize_before", False):
        raise KpruneInputError(f"--path: {path} is a pre-LN encoder; Kprune's targets assume post-LN")
    head_name = classification_head_name(cfg)
    if f"classification_heads.{head_name}.out_proj.weight" not in state["model"]:
        raise KpruneInputError(
            f"--path: {path} has no fine-tuned classification head {head_name!r}; "
            "fairseq-kprune needs a fine-tuned (not a pretrained) checkpoint")
    return state, cfg


def _criterion(cfg):
    return cfg.get("criterion", None) if hasattr(cfg, "get") else getattr(cfg, "criterion", None)


def classification_head_name(cfg) -> str:
    crit = _criterion(cfg)
    return _get(crit, "classification_head_name", "sentence_classification_head") if crit is not None \
        else "sentence_classification_head"


def is_regression(cfg) -> bool:
    crit = _criterion(cfg)
    if crit is not None:
        return bool(_get(crit, "regression_target", False))
    return bool(_get(cfg.task, "regression_target", False))


def load_finetuned(path: str, data: str):
    """(model, cfg, task, state) for a fine-tuned prunable_roberta checkpoint, on the CPU."""
    check_data_dir(data)
    state, _ = read_checkpoint(path, data)
    try:
        models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
            [path], arg_overrides={"data": data}, state=state)
    except RuntimeError as e:
        raise KpruneInputError(f"--path: {path} does not fit the dictionary in {data} "
                               f"({str(e).splitlines()[0][:200]})") from None
    return models[0], cfg, task, state


def _plain(value):
    """Turn numbers/tensors/containers into plain Python for a weights_only-loadable checkpoint."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def save_pruned(path: str, model, cfg, source_state: dict, info: dict) -> None:
    """Write ``model`` (already physically pruned) as a fairseq checkpoint at ``path``."""
    heads, ffn = model.args.encoder_layer_heads, model.args.encoder_layer_ffn_dims
    cfg_dict = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True) if OmegaConf.is_config(cfg) else cfg
    model_section = cfg_dict["model"]
    if isinstance(model_section, Namespace):
        model_section.encoder_layer_heads, model_section.encoder_layer_ffn_dims = heads, ffn
    else:
        model_section["encoder_layer_heads"], model_section["encoder_layer_ffn_dims"] = heads, ffn
    history = source_state.get("optimizer_history") or [{}]
    state = {
        "args": None,
        "cfg": cfg_dict,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "criterion": None,
        "optimizer_history": [{
            "criterion_name": history[-1].get("criterion_name", "SentencePredictionCriterion"),
            "optimizer_name": "none",
            "lr_scheduler_state": {"best": None},
            "num_updates": 0,
        }],
        "task_state": source_state.get("task_state", {}),
        "last_optimizer_state": None,
        "extra_state": {
            "train_iterator": {"epoch": 1, "iterations_in_epoch": 0, "version": 2},
            "kprune": _plain(info),
        },
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    checkpoint_utils.torch_persistent_save(state, path)
