"""onnxruntime sessions as every part of the project opens them: CPU, a fixed thread count.

A fixed ``intra_op_num_threads`` (and one inter-op thread, sequential execution) is what makes an
ORT figure comparable with the PyTorch figures of the timing protocol, where ``torch`` runs with
``Protocol.threads`` threads.
"""
from typing import Dict

import numpy as np


def session(path: str, threads: int = 1):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run(sess, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """All outputs of one call, by name."""
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))
