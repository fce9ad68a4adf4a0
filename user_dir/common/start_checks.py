"""Checks of a whole ``fairseq-train`` command line, before fairseq builds or loads anything.

Some bad inputs only show when options of different parts meet: a criterion with the model of
another method, a residual-score layer beyond the encoder's layers, a ``--restore-file`` that does
not exist. fairseq meets them late: the criterion sees the model at the first batch, and an error
there makes the trainer write ``crash.pt`` of the untrained model into ``--save-dir``; a missing
explicit ``--restore-file`` is taken for a first launch ("No existing checkpoint found") and a whole
stage trains from random weights. Here they are refused with the option's name first.

The method packages register their checks (``register``); ``install`` wraps fairseq's ``call_main``
(as ``bf16_without_tpu`` does), which sees the complete configuration, and runs them for
``fairseq-train`` only. Installed when the plugin is imported.
"""
import functools
import os
from typing import Callable, List

DEFAULT_RESTORE = "checkpoint_last.pt"
_CHECKS: List[Callable] = []


def register(check: Callable) -> Callable:
    """Add ``check(cfg)`` (raises a ValueError naming the option) to the fairseq-train start checks."""
    if check not in _CHECKS:
        _CHECKS.append(check)
    return check


def model_name(cfg):
    """(registered model name, --arch) of the run's model config (a Namespace or a DictConfig)."""
    from fairseq.models import ARCH_MODEL_NAME_REGISTRY

    model = getattr(cfg, "model", None)
    arch = getattr(model, "arch", None) or getattr(model, "_name", None)
    return ARCH_MODEL_NAME_REGISTRY.get(arch, arch), arch


def criterion_name(cfg):
    criterion = getattr(cfg, "criterion", None)
    return getattr(criterion, "_name", None) or getattr(getattr(cfg, "model", None), "criterion", None)


@register
def restore_file_exists(cfg) -> None:
    """Only the default ``checkpoint_last.pt`` (looked up in --save-dir to resume) may be missing."""
    checkpoint = getattr(cfg, "checkpoint", None)
    restore = getattr(checkpoint, "restore_file", None) if checkpoint is not None else None
    if not restore or restore == DEFAULT_RESTORE or os.path.isfile(restore):
        return
    raise FileNotFoundError(f"--restore-file {restore}: no such checkpoint (fairseq-train would start "
                            "from random weights; only the default checkpoint_last.pt may be missing)")


def run(cfg) -> None:
    for check in _CHECKS:
        check(cfg)


def install() -> None:
    from fairseq.distributed import utils as distributed_utils

    original = distributed_utils.call_main
    if getattr(original, "_runs_start_checks", False):
        return

    @functools.wraps(original)
    def call_main(cfg, main, **kwargs):
        if getattr(main, "__module__", "") == "fairseq_cli.train":
            run(cfg)
        return original(cfg, main, **kwargs)

    call_main._runs_start_checks = True
    distributed_utils.call_main = call_main
