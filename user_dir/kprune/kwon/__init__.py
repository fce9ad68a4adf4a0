"""Kwon et al. (NeurIPS 2022), "A Fast Post-Training Pruning Framework for Transformers": the
retraining-free baseline Kprune builds on, on the same prunable encoder and the same sample.

``fairseq-kprune --method kwon`` runs it (``cli.py``). Stages, one file each:

* ``fisher.py``: per-example gradients of the task loss w.r.t. head/neuron masks, empirical Fisher;
* ``search.py``: the hierarchical search (top heads by Fisher, then as many top neurons as the
  FLOPs budget allows; the head count with the largest kept Fisher wins);
* ``rearrange.py``: the greedy swaps with the within-layer Fisher block;
* ``rescale.py``: layer-wise least squares (LSMR) on the kept units' mask values;
* ``apply.py``: folding the tuned values into the weights and slicing the model;
* ``masks.py``: one multiplicative mask value per head / neuron; ``prune.py``: the three stages.
"""
from user_dir.kprune.kwon.apply import fold_and_slice, masked_logits
from user_dir.kprune.kwon.masks import KwonMasks
from user_dir.kprune.kwon.prune import KwonResult, KwonSettings, prune_kwon, teacher_constraint

__all__ = ["KwonMasks", "KwonResult", "KwonSettings", "fold_and_slice", "masked_logits", "prune_kwon",
           "teacher_constraint"]
