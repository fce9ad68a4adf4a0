"""SRP: selectively regularized structured pruning of translation Transformers."""
