"""The measurement harness: one protocol for quality, analytic FLOPs, speed and memory.

Used by the bench (``scripts/bench/``), the demo and the report command, so that every figure the
project publishes is measured the same way. Not a fairseq component: nothing here is registered.

* :mod:`timing` — throughput of several models on the same batches (fixed threads, warm-up,
  interleaved rounds, median and spread, wall and CPU time).
* :mod:`memory` — peak resident memory of one forward pass.
* :mod:`sentence` — sentence-prediction checkpoints of every method: accuracy, encoder MACs.
* :mod:`results` — the ``results/<method>.json`` rows, their markdown table and plot.
* :mod:`steps` — resumable bench steps with a ``.done`` stamp and their wall times.
"""
