"""Let torch >= 2.6 load fairseq checkpoints.

torch.load defaults to ``weights_only=True`` since 2.6 and fairseq 0.12 calls it without the
argument. A fairseq checkpoint holds, besides tensors and plain containers, an ``argparse.Namespace``
(the legacy ``args`` entry) and sometimes numpy scalars and arrays (best metric values, BLEU counts
of ``--eval-bleu`` meters), so we allowlist exactly
those types instead of turning the safe loader off. Every fairseq CLI imports ``--user-dir`` before
it loads a checkpoint, so registering here is enough for the stock tools.

Under data parallelism fairseq loads a checkpoint on rank 0 and sends the loaded state to the other
ranks through ``torch.save``/``torch.load`` (``distributed.utils._broadcast_object_slow``); by then
``cfg`` is an omegaconf ``DictConfig``, so its container and node classes are allowlisted too
(plain data holders; nothing else of omegaconf). fairseq sends the tensors separately and pickles
the rest with a ``_TensorPlaceholder`` (a frozen dataclass holding an index) in place of each tensor:
allowlisted as well, or every data-parallel run that restores a checkpoint (``--restore-file``, e.g.
every LTP and TR-BERT stage) died on rank 1 while rank 0 waited.
"""
import argparse

import numpy as np
import torch


def _numpy_scalar_globals():
    """The globals numpy uses to pickle a scalar such as ``np.float64(27.3)``."""
    found = [np.dtype]
    for dtype in (np.float64, np.float32, np.int64, np.int32, np.bool_):
        found.append(type(np.dtype(dtype)))
    try:  # numpy >= 2 moved it to numpy._core; the pickle refers to whichever wrote it
        from numpy._core.multiarray import scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import scalar
    found.append(scalar)
    # whole arrays: a run with --eval-bleu (the SRP scripts' default) checkpoints fairseq's BLEU
    # n-gram counts as numpy int arrays among its meters
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    found += [_reconstruct, np.ndarray]
    return found


def _omegaconf_globals():
    """What a pickled ``DictConfig`` refers to (containers, their metadata, value nodes)."""
    import collections
    import typing

    from omegaconf import DictConfig, ListConfig, nodes
    from omegaconf.base import ContainerMetadata, Metadata

    found = [DictConfig, ListConfig, ContainerMetadata, Metadata, typing.Any, collections.defaultdict,
             dict, list, tuple, set, int, float, str, bool]
    for name in ("AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "EnumNode", "BytesNode",
                 "PathNode"):
        if hasattr(nodes, name):
            found.append(getattr(nodes, name))
    return found


def _broadcast_globals():
    """The placeholder fairseq's ``broadcast_object`` puts where each tensor was."""
    from fairseq.distributed.utils import _TensorPlaceholder

    return [_TensorPlaceholder]


def allow_fairseq_checkpoints():
    if hasattr(torch.serialization, "add_safe_globals"):
        torch.serialization.add_safe_globals([argparse.Namespace] + _numpy_scalar_globals() + _omegaconf_globals()
                                             + _broadcast_globals())
