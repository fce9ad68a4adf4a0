"""Stock ``fairseq-train`` (``fairseq_cli.train.cli_main``) that, in addition, dumps every data-parallel
rank's model state next to the checkpoints, so a test can compare the workers with each other (fairseq
itself writes checkpoints from rank 0 only)."""
import os

import torch
from fairseq import checkpoint_utils

import fairseq_cli.train as train

_save = checkpoint_utils.save_checkpoint


def save_checkpoint(cfg, trainer, epoch_itr, val_loss):
    result = _save(cfg, trainer, epoch_itr, val_loss)
    state = {k: v.detach().cpu().clone() for k, v in trainer.get_model().state_dict().items()}
    torch.save(state, os.path.join(cfg.save_dir, f"model_rank{trainer.data_parallel_rank}.pt"))
    return result


checkpoint_utils.save_checkpoint = save_checkpoint

if __name__ == "__main__":
    train.cli_main()
