"""The chain of methods that produced a checkpoint, read from the checkpoints themselves.

Every step of the project writes where it started from: Kprune in ``extra_state["kprune"]["path"]``,
the fairseq-train stages (fine-tuning, LTP soft/hard, TR-BERT stages, SRP fine-tuning) in
``--restore-file``, SRP's pruning stages in ``--pretrained-model``. Following those links back gives
e.g. ``fine-tune -> kprune 0.5 -> ltp soft (lambda 0.05) -> ltp hard``. A link that cannot be followed
(the file is gone, or a run was resumed from its own ``checkpoint_last.pt``) ends the chain there
and says so.
"""
import os
from typing import List, Optional, Tuple

from user_dir.common.checkpoint_info import CheckpointInfoError, cfg_get, cfg_of, criterion_section, load_raw

MAX_STEPS = 12
FAIRSEQ_DEFAULT_RESTORE = "checkpoint_last.pt"  # fairseq's "continue in --save-dir", not a parent


def _num(value) -> str:
    return f"{float(value):g}"


def describe(state) -> Tuple[str, Optional[str]]:
    """(what the run that wrote ``state`` did, the checkpoint it started from or None)."""
    cfg = cfg_of(state)
    model, task, crit = cfg.model, cfg.task, criterion_section(cfg)
    name = cfg_get(model, "_name") or cfg_get(model, "arch") or "?"
    task_name = cfg_get(task, "_name") or "?"
    kprune = (state.get("extra_state") or {}).get("kprune")
    if kprune:
        settings = kprune.get("settings") or {}
        return f"{kprune.get('method', 'kprune')} {_num(settings.get('constraint', 0))}", kprune.get("path")
    restore = _restore_file(cfg)
    if task_name == "masked_lm":
        return f"pretrained encoder ({name})", None
    if name.startswith("ltp_roberta"):
        if cfg_get(model, "prune_mode") == "topk":
            return f"ltp topk (keep rate {_num(cfg_get(model, 'token_keep_rate', 0.5))})", restore
        if cfg_get(model, "masking_mode") == "soft":
            return (f"ltp soft (lambda {_num(cfg_get(crit, 'lambda_threshold', 0))}, final threshold "
                    f"{_num(cfg_get(model, 'final_token_threshold', 0.01))})"), restore
        return "ltp hard", restore
    if name.startswith("trbert_roberta"):
        stage = cfg_get(crit, "trbert_stage")
        if stage is None:
            return "trbert (fine-tune)", restore
        alpha = f" (alpha {_num(cfg_get(crit, 'alpha', 1.0))})" if str(stage) in ("rl", "joint") else ""
        return f"trbert {stage}{alpha}", restore
    if name.startswith("srp") and task_name == "srp_translation":
        pretrained = cfg_get(task, "pretrained_model")
        rate = _num(cfg_get(task, "compression_rate", 0.2))
        if cfg_get(task, "srp", False):
            stage = int(cfg_get(task, "pruning_stage", 0))
            return (f"srp stage {stage} (rate {rate})" if stage else f"srp single stage (rate {rate})"), pretrained
        if pretrained:
            return f"prune + fine-tune without SRP (rate {rate})", pretrained
        return ("fine-tune" if restore else "train"), restore
    if task_name == "sentence_prediction":
        return "fine-tune", restore
    return f"train ({name})", restore


def _restore_file(cfg) -> Optional[str]:
    checkpoint = cfg.get("checkpoint", None) if hasattr(cfg, "get") else getattr(cfg, "checkpoint", None)
    value = cfg_get(checkpoint, "restore_file")
    return None if not value or value == FAIRSEQ_DEFAULT_RESTORE else str(value)


def _resolve(link: str) -> Optional[str]:
    """A path as the run saw it: relative to the working directory it ran in (the repository root
    for the project's scripts) or absolute; a path into another checkout of the project (a moved or
    temporary working tree) is also tried re-rooted under this one, from its ``checkpoints/`` on."""
    from user_dir.export.vocabulary import REPO

    candidates = [link, os.path.join(REPO, link)]
    parts = link.replace(os.sep, "/").split("/")
    if "checkpoints" in parts[1:]:
        candidates.append(os.path.join(REPO, *parts[len(parts) - 1 - parts[::-1].index("checkpoints"):]))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    return None


def method_chain(path: str, state) -> List[dict]:
    """Steps from the oldest reachable checkpoint to ``path``: ``{"step", "checkpoint"}`` each, the
    first with ``"note"`` when the chain could not be followed further."""
    steps, seen = [], {os.path.realpath(path)}
    current, current_path = state, path
    for _ in range(MAX_STEPS):
        what, parent = describe(current)
        steps.append({"step": what, "checkpoint": os.path.abspath(current_path)})
        if not parent:
            break
        found = _resolve(parent)
        if found is None:
            steps[-1]["note"] = f"started from {parent}, which is not here"
            break
        same_run = os.path.dirname(os.path.realpath(found)) == os.path.dirname(os.path.realpath(current_path))
        if os.path.realpath(found) in seen or same_run:
            steps[-1]["note"] = f"resumed from {parent}; earlier steps are not recorded"
            break
        seen.add(os.path.realpath(found))
        try:
            current, current_path = load_raw(found), found
        except CheckpointInfoError as e:
            steps[-1]["note"] = f"started from {parent}, which is not readable ({e})"
            break
    return list(reversed(steps))


def chain_text(steps: List[dict]) -> str:
    return " -> ".join(s["step"] for s in steps)
