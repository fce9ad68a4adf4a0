"""Pruned models out of fairseq: ONNX export, parity with fairseq, onnxruntime speed, model card.

Not a fairseq component (nothing here is registered); the console script ``fairseq-compress-export``
(:mod:`user_dir.export.cli`) and ``python -m user_dir.export.ort_speed`` are its entry points.

* :mod:`loading` — which checkpoints are taken and how they load (stock models through their twins)
* :mod:`sentence_graph`, :mod:`ltp_graph`, :mod:`trbert_graph`, :mod:`graph_ops` — the encoder graph
  with token pruning kept per example inside it
* :mod:`translation_graph`, :mod:`stock_transformer` — encoder and incremental decoder-step graphs
* :mod:`onnx_export` — the exporter call and its settings (and why the TorchScript-based exporter)
* :mod:`model_card`, :mod:`method_chain`, :mod:`vocabulary`, :mod:`output_dir` — what DIR holds
* :mod:`parity`, :mod:`ort_translation`, :mod:`ort_runtime`, :mod:`ort_speed` — checks and timing
"""
