"""``--bf16`` on GPUs and CPUs: untie it from ``--tpu`` where no TPU library is installed.

fairseq 0.12 turns on ``--tpu`` whenever ``--bf16`` (or ``--memory-efficient-bf16``) is given
(``options.parse_args_and_arch``; fairseq issue #4696), because bf16 was a TPU format when that
was written. Without ``torch_xla`` a TPU run cannot even start: the Trainer asks
``xm.xla_device()`` of a missing module, so ``fairseq-train --bf16`` crashes on every GPU and CPU.
The rest of fairseq's bf16 support is device-neutral (the model cast, the fp32 master copies of
``FP16Optimizer`` without loss scaling, the sample cast), so where ``torch_xla`` is absent the flag
can only have come from ``--bf16`` and we clear it before fairseq's ``call_main`` starts a run
(``call_main`` is the one entry of ``fairseq-train``, ``-validate``, ``-generate`` and
``-interactive``, and it reads the flag first: a set flag also skips the data-parallel set-up).
With ``torch_xla`` installed nothing changes. Installed when the plugin is imported.
"""
import functools
import importlib.util
import logging

from omegaconf import OmegaConf, open_dict

logger = logging.getLogger(__name__)


def untie(cfg) -> bool:
    """Clear ``common.tpu`` of a ``--bf16`` config when there is no TPU library; True if cleared."""
    common = getattr(cfg, "common", None)
    if common is None or not getattr(common, "tpu", False) or not getattr(common, "bf16", False):
        return False
    if importlib.util.find_spec("torch_xla") is not None:
        return False
    # fairseq copied the flag into other sections as well (distributed_training.tpu makes it skip the
    # data-parallel set-up, optimizer.tpu turns fused Adam off) and into a legacy model's Namespace
    for key in list(cfg.keys()) if hasattr(cfg, "keys") else []:
        section = cfg.get(key)
        if OmegaConf.is_config(section) and section.get("tpu", False):
            with open_dict(section):
                section.tpu = False
        elif section is not None and getattr(section, "tpu", False) is True and hasattr(section, "__dict__"):
            section.tpu = False
    logger.info("--bf16 without torch_xla: running on the GPU/CPU (fairseq 0.12 would assume a TPU)")
    return True


def install() -> None:
    from fairseq.distributed import utils as distributed_utils

    original = distributed_utils.call_main
    if getattr(original, "_unties_bf16", False):
        return

    @functools.wraps(original)
    def call_main(cfg, main, **kwargs):
        untie(cfg)
        return original(cfg, main, **kwargs)

    call_main._unties_bf16 = True
    distributed_utils.call_main = call_main
