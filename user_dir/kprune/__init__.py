"""Kprune: retraining-free structured pruning of a fine-tuned encoder (post-hoc entry point)."""
