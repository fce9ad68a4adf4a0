"""Sequence-length statistics of a binarised ``sentence_prediction`` data folder.

FLOPs models (Kprune's constraint, the relative FLOPs that LTP and TR-BERT log) need the average
number of tokens the encoder actually sees. fairseq-preprocess stores every line with ``</s>``
appended; ``--init-token 0`` prepends ``<s>`` at load time; a second input (``input1/``) is joined
with ``--separator-token`` in front of it. The lengths here count all of those, i.e. they equal
``src_lengths`` of the batches fairseq builds with the standard flags.
"""
import os

import numpy as np


class DataLayoutError(ValueError):
    """The folder is not in the sentence_prediction layout."""


def _sizes(data_dir, key, split):
    from fairseq.data import data_utils

    path = os.path.join(data_dir, key, split)
    if not os.path.exists(path + ".idx"):
        return None
    dataset = data_utils.load_indexed_dataset(path, None)
    if dataset is None:
        raise DataLayoutError(f"cannot read the binarised dataset {path}.{{idx,bin}}")
    return np.asarray(dataset.sizes, dtype=np.int64)


def example_lengths(data_dir, split="train", init_token=True, separator_token=True, max_positions=None):
    """Per-example token counts as the model sees them (numpy int64 array).

    ``max_positions`` clips every length (as ``--shorten-method truncate`` would)."""
    if not os.path.isdir(os.path.join(data_dir, "input0")):
        raise DataLayoutError(
            f"{data_dir} is not a sentence_prediction data folder (no input0/; expected "
            "input0/{train,valid,test}.{bin,idx} and label/ made by fairseq-preprocess)")
    sizes = _sizes(data_dir, "input0", split)
    if sizes is None:
        raise DataLayoutError(f"{data_dir}/input0 has no split {split!r} ({split}.idx missing)")
    lengths = sizes + (1 if init_token else 0)
    second = _sizes(data_dir, "input1", split)
    if second is not None:
        lengths = lengths + second + (1 if separator_token else 0)
    if max_positions is not None:
        lengths = np.minimum(lengths, max_positions)
    return lengths


def average_length(data_dir, split="train", init_token=True, separator_token=True, max_positions=None):
    """Average number of tokens per example the encoder sees (float)."""
    lengths = example_lengths(data_dir, split, init_token, separator_token, max_positions)
    if len(lengths) == 0:
        raise DataLayoutError(f"{data_dir} split {split!r} is empty")
    return float(lengths.mean())


def split_stats(data_dir, splits=("train", "valid", "test")):
    """{split: {examples, avg_length, max_length, tokens}} for the splits that exist."""
    out = {}
    for split in splits:
        if not os.path.exists(os.path.join(data_dir, "input0", split + ".idx")):
            continue
        lengths = example_lengths(data_dir, split)
        out[split] = {
            "examples": int(len(lengths)),
            "avg_length": round(float(lengths.mean()), 2) if len(lengths) else 0.0,
            "max_length": int(lengths.max()) if len(lengths) else 0,
            "tokens": int(lengths.sum()),
        }
    if not out:
        raise DataLayoutError(f"{data_dir} has no binarised split under input0/")
    return out
