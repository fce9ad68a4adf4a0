"""The data Kprune measures knowledge on: a sample of the training split, in fixed batches.

``min(num_tokens / avg_len, |train|)`` examples are drawn once (seeded) and kept in the same
batches for all 2L steps, so scores of different steps are comparable and the teacher's soft labels
can be recorded once. Examples are drawn without replacement (the original drew with replacement;
with the ``min`` above a subset is the natural reading) and batched by length, which removes most
padding work on CPU; batch composition only changes which examples share a gradient.

The batches carry the gold labels too (``target``): Kprune does not use them, the Kwon et al.
baseline (``--method kwon``) needs them for its task-loss Fisher, on this same sample.
"""
import math
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch


class KpruneDataError(ValueError):
    pass


@dataclass
class Batch:
    tokens: torch.Tensor  # (B, T) right-padded, <s> first
    padding_mask: torch.Tensor  # (B, T) True at padding
    target: Optional[torch.Tensor] = None  # (B,) gold labels (regression: values), if the split has them

    @property
    def real(self) -> torch.Tensor:
        return ~self.padding_mask

    @property
    def num_tokens(self) -> int:
        return int(self.real.sum())


def example_lengths(dataset) -> np.ndarray:
    """Length of every example as the model sees it (``<s>``/``</s>`` and pair separators included)."""
    sizes = dataset.sizes
    if isinstance(sizes, (list, tuple)):  # NestedDictionaryDataset keeps a list of size arrays
        sizes = sizes[0]
    sizes = np.asarray(sizes)
    if sizes.ndim > 1:
        sizes = sizes.reshape(len(sizes), -1).sum(axis=1)
    return sizes.astype(np.int64)


def average_length(dataset) -> float:
    lengths = example_lengths(dataset)
    if len(lengths) == 0:
        raise KpruneDataError("cannot take the average length of an empty split")
    return float(lengths.mean())


def num_examples_for(num_tokens: int, avg_len: float, available: int) -> int:
    return max(1, min(int(math.ceil(num_tokens / avg_len)), available))


def sample_batches(dataset, num_tokens: int, batch_size: int, seed: int, pad_idx: int,
                   max_positions: int, device, num_examples: Optional[int] = None) -> List[Batch]:
    """Draw the examples for ``num_tokens`` tokens from ``dataset`` and collate them into batches.

    ``num_examples`` draws that many examples instead (at most all of them), the same way.
    """
    lengths = example_lengths(dataset)
    usable = np.flatnonzero(lengths <= max_positions)  # longer ones could not run at all
    if len(usable) == 0:
        raise KpruneDataError("no example fits the model's max_positions")
    avg_len = float(lengths[usable].mean())
    if num_examples is None:
        count = num_examples_for(num_tokens, avg_len, len(usable))
    else:
        count = max(1, min(int(num_examples), len(usable)))
    rng = np.random.RandomState(seed)
    chosen = usable[rng.choice(len(usable), size=count, replace=False)]
    chosen = chosen[np.argsort(lengths[chosen], kind="stable")]
    batches = []
    for start in range(0, count, batch_size):
        samples = [dataset[int(i)] for i in chosen[start:start + batch_size]]
        collated = dataset.collater(samples)
        tokens = collated["net_input"]["src_tokens"].to(device)
        target = collated.get("target")
        batches.append(Batch(tokens=tokens, padding_mask=tokens.eq(pad_idx),
                             target=None if target is None else target.view(tokens.size(0), -1).squeeze(1).to(device)))
    return batches
