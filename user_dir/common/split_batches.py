"""A sentence_prediction split in the batches fairseq's validation makes (length-sorted, no shuffling).

The in-process measurements of LTP and Kprune score and time checkpoints on exactly the batches
``fairseq-validate --required-batch-size-multiple 1`` would use, so their accuracies match it.
"""
from typing import List, Optional


def split_batches(task, split: str, batch_size: int, max_positions: Optional[int] = None) -> List[dict]:
    """Every example of ``split`` in batches of at most ``batch_size`` (the dataset is loaded once).

    With ``max_positions``, examples longer than it are skipped, as fairseq does with
    ``--skip-invalid-size-inputs-valid-test``.
    """
    if split not in task.datasets:
        task.load_dataset(split, combine=False, epoch=1)
    itr = task.get_batch_iterator(dataset=task.dataset(split), max_sentences=batch_size, max_tokens=None,
                                  max_positions=max_positions, ignore_invalid_inputs=max_positions is not None,
                                  required_batch_size_multiple=1, num_workers=0, seed=1,
                                  # fairseq caches one iterator per dataset and would hand back the
                                  # batches of the first batch size asked for, whatever is asked later
                                  disable_iterator_cache=True)
    return list(itr.next_epoch_itr(shuffle=False))
