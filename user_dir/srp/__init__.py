"""SRP: selectively regularized structured pruning of translation Transformers.

Importing registers model ``srp`` (archs ``srp_iwslt_de_en``, ``srp_medium``, ``srp_small``,
``srp_tiny``), task ``srp_translation`` (alias ``SRPtranslation``), criterion ``srp`` and optimizer
``srp_adam``.
"""
import numpy as _np
import torch as _torch


def _allow_bleu_meters():
    """A run with ``--eval-bleu`` (the SRP scripts' default) checkpoints fairseq's BLEU n-gram counts as
    numpy int arrays among its meters; torch's safe loader (``weights_only``, the default since torch
    2.6) refuses them, so neither the next stage, nor a resumed run, nor fairseq-generate could load
    the checkpoint. Allowlist numpy arrays (data only; ``user_dir.common.checkpoint_compat`` allowlists
    the numpy scalars and dtypes)."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    if hasattr(_torch.serialization, "add_safe_globals"):
        _torch.serialization.add_safe_globals([_reconstruct, _np.ndarray])


_allow_bleu_meters()

from . import criterion, model, optimizer, task  # noqa: E402,F401  (registration)
