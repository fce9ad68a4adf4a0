"""The one call that turns a graph module into an ONNX file, and the settings every export shares.

We use torch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``). Both of
torch's exporters handle our graphs, including the data-dependent token counts (they come from
``nonzero``, see :mod:`user_dir.export.graph_ops`), and give the same outputs; the dynamo-based one
(``torch.export`` + onnxscript) took 90-290 s for a 3-layer test model on this 2-core machine
against about 8 s, which would make the export tests alone outlast the whole test suite. A traced
export freezes Python-side decisions, so the graph modules take none on data, and the parity tests
run every export on batches of other sizes and lengths than the one it was traced with.

``exporter="dynamo"`` selects torch's other exporter (for a torch that drops the TorchScript one);
the parity check applies to it unchanged.
"""
import logging
import warnings
from typing import Dict, Sequence

import torch

logger = logging.getLogger(__name__)

OPSET = 17  # LayerNormalization is a single ONNX op from 17 on
EXPORTERS = ("torchscript", "dynamo")


def export_graph(module: torch.nn.Module, args: tuple, path: str, input_names: Sequence[str],
                 output_names: Sequence[str], dynamic_axes: Dict[str, Dict[int, str]],
                 exporter: str = "torchscript") -> dict:
    """Write ``module(*args)`` as ONNX to ``path``; returns what the model card records about it."""
    if exporter not in EXPORTERS:
        raise ValueError(f"unknown exporter {exporter!r}; allowed: {', '.join(EXPORTERS)}")
    module.eval()
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.onnx.export(module, args, path, input_names=list(input_names), output_names=list(output_names),
                          dynamic_axes=dynamic_axes, opset_version=OPSET, do_constant_folding=True,
                          dynamo=exporter == "dynamo", **({"optimize": True} if exporter == "dynamo" else {}))
    for w in caught:
        # tracer warnings name any value the trace froze; the parity tests are the real guard
        if issubclass(w.category, torch.jit.TracerWarning):
            logger.debug("export: %s", w.message)
    return {"exporter": exporter, "torch": torch.__version__, "opset": OPSET}
