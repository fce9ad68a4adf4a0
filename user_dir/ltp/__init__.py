"""LTP: learned token pruning for encoders."""
