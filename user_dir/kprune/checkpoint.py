"""Reading the fine-tuned checkpoint Kprune starts from, and writing the pruned one.

The input is a RoBERTa-style classifier fine-tuned with ``--task sentence_prediction``: a
``prunable_roberta`` model, or a stock fairseq ``roberta*`` one (built as ``prunable_roberta``, same
weights). The checks run on the raw checkpoint first, so a wrong file fails with a message about
``--path`` (or the data folder) instead of a shape error deep inside fairseq.

The output is an ordinary fairseq checkpoint: plain ``cfg`` (per-layer sizes in
``cfg.model.encoder_layer_heads`` / ``encoder_layer_ffn_dims``), a state dict of tensors, a fresh
optimizer history (a pruned model is the start of a new run, e.g. LTP) and Kprune's log under
``extra_state["kprune"]``. No module is pickled.
"""
import os
from argparse import Namespace

import torch
from fairseq import checkpoint_utils
from omegaconf import OmegaConf

from user_dir.common.checkpoint_info import (
    CheckpointInfoError,
    as_prunable,
    cfg_get,
    cfg_of,
    check_head_matches_data,
    load_raw,
    read_info,
)
from user_dir.common.data_classes import LabelSpecError, label_spec


class KpruneInputError(ValueError):
    """A bad command-line input; the message starts with the option it is about."""


def check_data_dir(data: str) -> None:
    if not data or not os.path.isdir(data):
        raise KpruneInputError(f"data: no such directory: {data!r}")
    if not os.path.isfile(os.path.join(data, "input0", "dict.txt")):
        raise KpruneInputError(f"data: {data} is not a sentence_prediction data directory "
                               "(input0/dict.txt is missing; see fairseq-preprocess)")
    try:  # fairseq's sentence_prediction task reads label/ even though Kprune needs no labels
        label_spec(data)
    except LabelSpecError as e:
        raise KpruneInputError(str(e)) from None


def read_checkpoint(path: str, data: str):
    """The raw checkpoint state, validated to be a fine-tuned RoBERTa-style classifier.

    A stock fairseq ``roberta*`` checkpoint (any classification head name) is accepted: its config
    is rewritten in place to build it as ``prunable_roberta`` with the same weights."""
    try:
        state = load_raw(path, data)
        info = read_info(path, state)
    except CheckpointInfoError as e:
        raise KpruneInputError(str(e)) from None
    cfg = cfg_of(state)
    task_name = cfg_get(cfg.task, "_name")
    if task_name != "sentence_prediction":
        raise KpruneInputError(
            f"--path: {path} was trained for task {task_name!r}; fairseq-kprune prunes a model "
            "fine-tuned with --task sentence_prediction (e.g. by scripts/models/finetune-baseline.sh)")
    if info.family in ("ltp_roberta", "trbert_roberta"):
        raise KpruneInputError(
            f"--path: {path} holds a {info.model_name!r} model with token pruning; fairseq-kprune prunes "
            "a model without token pruning: run it first, then train token pruning (e.g. LTP) from "
            "its pruned checkpoint")
    if info.family not in ("roberta", "prunable_roberta"):
        raise KpruneInputError(
            f"--path: {path} holds a {info.model_name!r} model; fairseq-kprune prunes a fine-tuned "
            "stock fairseq RoBERTa (--arch roberta_base, roberta_large, roberta, ...) or a prunable_roberta* "
            "model (e.g. a converted BERT fine-tuned by scripts/models/finetune-baseline.sh)")
    if info.normalize_before:
        raise KpruneInputError(f"--path: {path} is a pre-LN encoder; Kprune's targets assume post-LN")
    if not info.heads:
        raise KpruneInputError(
            f"--path: {path} has no fine-tuned classification head; "
            "fairseq-kprune needs a fine-tuned (not a pretrained) checkpoint")
    try:
        check_head_matches_data(info, data)
    except (CheckpointInfoError, LabelSpecError) as e:
        raise KpruneInputError(str(e)) from None
    as_prunable(state, info)
    return state, cfg_of(state)


def _criterion(cfg):
    return cfg.get("criterion", None) if hasattr(cfg, "get") else getattr(cfg, "criterion", None)


def classification_head_name(cfg) -> str:
    crit = _criterion(cfg)
    return cfg_get(crit, "classification_head_name", "sentence_classification_head") if crit is not None \
        else "sentence_classification_head"


def is_regression(cfg) -> bool:
    crit = _criterion(cfg)
    if crit is not None:
        return bool(cfg_get(crit, "regression_target", False))
    return bool(cfg_get(cfg.task, "regression_target", False))


def load_finetuned(path: str, data: str):
    """(model, cfg, task, state) for a fine-tuned prunable_roberta checkpoint, on the CPU."""
    check_data_dir(data)
    state, _ = read_checkpoint(path, data)
    try:
        models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
            [path], arg_overrides={"data": data}, state=state)
    except (RuntimeError, ValueError) as e:  # a size mismatch, or the model's vocabulary check
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
