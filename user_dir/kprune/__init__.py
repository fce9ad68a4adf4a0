"""Kprune: retraining-free structured pruning of a fine-tuned encoder (post-hoc entry point).

``fairseq-kprune`` (``cli.py``) runs it: knowledge measurement (``knowledge.py``), the mask
search KPMS (``search.py``) and the weight tuning KPWT (``weight_tuning.py``) over the 2L
sublayers (``prune.py``), with the FLOPs model of ``flops.py``. Nothing is registered with fairseq:
the pruned model is an ordinary ``prunable_roberta`` checkpoint.
"""
