"""Which checkpoints the exporter takes, and loading one as the model fairseq would run.

Two kinds:

* **sentence prediction** (``--task sentence_prediction``): stock fairseq ``roberta*``,
  ``prunable_roberta*`` (fine-tuned baselines, Kprune), ``ltp_roberta*``, ``trbert_roberta*`` and
  their compositions. A stock ``roberta`` model is exported through its ``prunable_roberta`` twin
  (same weights, same outputs: ``common.checkpoint_info.as_prunable``); the stock model itself stays
  the parity reference.
* **translation** (``translation`` / ``srp_translation``): ``srp*`` models (base, pruned, fine-tuned)
  and stock fairseq ``transformer*`` models, which are exported through an unpruned ``srp`` twin
  (:mod:`user_dir.export.stock_transformer`).

Anything else is refused with :class:`ExportError`, which names what is supported.
"""
import copy
import os
from dataclasses import dataclass, field
from typing import Optional

from user_dir.common.checkpoint_info import CheckpointInfoError, as_prunable, cfg_get, cfg_of, load_raw, read_info

SENTENCE_TASKS = ("sentence_prediction",)
TRANSLATION_TASKS = ("translation", "srp_translation")
SUPPORTED = ("sentence prediction (--task sentence_prediction): roberta*, prunable_roberta*, ltp_roberta*, "
             "trbert_roberta* (fine-tuned, Kprune, LTP, TR-BERT and composed checkpoints); "
             "translation (--task translation or srp_translation): srp* and transformer*")


class ExportError(ValueError):
    """A checkpoint or option the exporter cannot use; the message says what it can."""


@dataclass
class Source:
    """A loaded checkpoint: the model as fairseq runs it, and what the export needs around it."""
    path: str
    kind: str                 # "sentence" | "translation"
    model_name: str           # cfg.model._name / arch
    family: str               # roberta | prunable_roberta | ltp_roberta | trbert_roberta | srp | transformer
    state: dict               # the raw checkpoint (cfg, extra_state, ...)
    data: str                 # the data folder the dictionaries come from
    task: object
    reference: object         # the fairseq model, eval mode: the parity reference
    graph_model: object       # what the graph is built from (reference, or its prunable/srp twin)
    head: Optional[str] = None
    regression: bool = False
    notes: list = field(default_factory=list)

    @property
    def cfg(self):
        return cfg_of(self.state)


def _registered_class(name: str):
    from fairseq.models import ARCH_MODEL_REGISTRY, MODEL_REGISTRY

    return ARCH_MODEL_REGISTRY.get(name) or MODEL_REGISTRY.get(name)


def family_of(model_cls) -> Optional[str]:
    """Our name for a model class, or None when the exporter does not take it."""
    if model_cls is None:
        return None
    from fairseq.models.roberta.model import RobertaModel
    from fairseq.models.transformer import TransformerModel

    from user_dir.ltp.model import LtpRobertaModel
    from user_dir.srp.model import SRPModel
    from user_dir.trbert.model import TrbertRobertaModel

    for cls, name in ((LtpRobertaModel, "ltp_roberta"), (TrbertRobertaModel, "trbert_roberta"),
                      (SRPModel, "srp")):
        if issubclass(model_cls, cls):
            return name
    if model_cls is RobertaModel:
        return "roberta"
    if issubclass(model_cls, RobertaModel):
        from user_dir.common.prunable_roberta import PrunableRobertaModel
        return "prunable_roberta" if issubclass(model_cls, PrunableRobertaModel) else None
    if model_cls is TransformerModel:
        return "transformer"
    return None


def read_checkpoint(path: str, data: Optional[str] = None):
    """(raw state, model name, family, task name) of ``path``, or ExportError."""
    import user_dir  # noqa: F401  (registers the models; lets torch.load read fairseq checkpoints)

    _check_layout(path)
    try:
        state = load_raw(path, data)
    except CheckpointInfoError as e:
        raise ExportError(f"{e}; supported: {SUPPORTED}") from None
    cfg = cfg_of(state)
    name = cfg_get(cfg.model, "_name") or cfg_get(cfg.model, "arch") or "?"
    task = cfg_get(cfg.task, "_name") or "?"
    family = family_of(_registered_class(name))
    kind = "sentence" if task in SENTENCE_TASKS else "translation" if task in TRANSLATION_TASKS else None
    fits = (kind == "sentence" and family in ("roberta", "prunable_roberta", "ltp_roberta", "trbert_roberta")) or \
        (kind == "translation" and family in ("srp", "transformer"))
    if not fits:
        raise ExportError(f"--path: {path} holds a {name!r} model trained for task {task!r}, which "
                          f"fairseq-compress-export does not export; supported: {SUPPORTED}")
    return state, name, family, kind


def _check_layout(path: str) -> None:
    """A readable pickle that is not a fairseq checkpoint gets a message about what it holds
    (fairseq's own loader fails on it with a bare KeyError)."""
    import torch

    if not os.path.isfile(path):
        return  # load_raw says so
    try:
        raw = torch.load(path, map_location="cpu", mmap=True)
    except Exception:  # not a torch file, or an old format: load_raw reports it
        return
    if not isinstance(raw, dict) or "model" not in raw or (raw.get("cfg") is None and raw.get("args") is None):
        held = ", ".join(map(str, list(raw)[:8])) if isinstance(raw, dict) else type(raw).__name__
        raise ExportError(f"--path: {path} is not a fairseq model checkpoint (it holds {held}; a checkpoint has "
                          f"'model' weights and a 'cfg'); supported: {SUPPORTED}")


def data_folder(path: str, state, data: Optional[str], kind: str) -> str:
    """The folder whose dictionaries the model was trained with (``--data`` or the checkpoint's)."""
    chosen = data or cfg_get(cfg_of(state).task, "data")
    needed = ["input0/dict.txt"] if kind == "sentence" else []
    if not chosen or not os.path.isdir(chosen):
        raise ExportError(f"--path: {path} was trained on data folder {chosen!r}, which is not here: pass "
                          "--data DIR, the folder with the dictionaries it was trained with")
    missing = [n for n in needed if not os.path.isfile(os.path.join(chosen, n))]
    if missing:
        raise ExportError(f"--data {chosen}: not a sentence_prediction data folder ({', '.join(missing)} "
                          "missing)")
    return chosen


def load(path: str, data: Optional[str] = None) -> Source:
    """The checkpoint at ``path`` loaded on the CPU in eval mode, ready to export."""
    state, name, family, kind = read_checkpoint(path, data)
    folder = data_folder(path, state, data, kind)
    if kind == "sentence":
        return _load_sentence(path, state, name, family, folder)
    return _load_translation(path, state, name, family, folder)


def _build(path, state, data):
    from fairseq import checkpoint_utils

    try:
        models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task(
            [path], arg_overrides={"data": data}, state=state)
    except (RuntimeError, KeyError, ValueError) as e:
        raise ExportError(f"--path: {path} does not load with the data in {data} "
                          f"({type(e).__name__}: {str(e).splitlines()[0][:300]})") from None
    return models[0].eval(), task


def _load_sentence(path, state, name, family, data) -> Source:
    info = read_info(path, state)
    try:
        head = info.head
    except CheckpointInfoError as e:
        raise ExportError(str(e)) from None
    if not info.heads:
        raise ExportError(f"--path: {path} has no classification head (a pretrained, not a fine-tuned "
                          f"model); supported: {SUPPORTED}")
    reference, task = _build(path, copy.deepcopy(state) if family == "roberta" else state, data)
    graph_model, notes = reference, []
    if family == "roberta":
        as_prunable(state, info)  # the twin: same weights in the prunable core
        graph_model, _ = _build(path, state, data)
        notes.append("stock fairseq roberta exported through its prunable_roberta twin (same weights)")
    return Source(path, "sentence", name, family, state, data, task, reference, graph_model,
                  head=head, regression=info.regression, notes=notes)


def _load_translation(path, state, name, family, data) -> Source:
    reference, task = _build(path, state, data)
    graph_model, notes = reference, []
    if family == "transformer":
        from user_dir.export.stock_transformer import srp_twin
        graph_model = srp_twin(reference, task)
        notes.append("stock fairseq transformer exported through its unpruned srp twin (same weights)")
    return Source(path, "translation", name, family, state, data, task, reference, graph_model, notes=notes)
