"""Stock ``fairseq-train`` (``fairseq_cli.train.cli_main``) that, in addition, dumps every data-parallel
rank's model state when training starts (``model_rank{R}_start.pt``, after the checkpoint or
--restore-file is loaded) and next to every checkpoint (``model_rank{R}.pt``), so a test can compare
the workers with each other and with their start (fairseq itself writes checkpoints from rank 0 only)."""
import os

import fairseq_cli.train as train  # first: it sets up fairseq's logging (INFO lines on stdout)
import torch
from fairseq import checkpoint_utils

_save = checkpoint_utils.save_checkpoint
_load = checkpoint_utils.load_checkpoint


def _dump(cfg, trainer, name):
    state = {k: v.detach().cpu().clone() for k, v in trainer.get_model().state_dict().items()}
    os.makedirs(cfg.save_dir, exist_ok=True)
    torch.save(state, os.path.join(cfg.save_dir, name.format(rank=trainer.data_parallel_rank)))


def save_checkpoint(cfg, trainer, epoch_itr, val_loss):
    result = _save(cfg, trainer, epoch_itr, val_loss)
    _dump(cfg, trainer, "model_rank{rank}.pt")
    return result


def load_checkpoint(cfg, trainer, **kwargs):
    result = _load(cfg, trainer, **kwargs)
    _dump(cfg, trainer, "model_rank{rank}_start.pt")
    return result


checkpoint_utils.save_checkpoint = save_checkpoint
checkpoint_utils.load_checkpoint = load_checkpoint

if __name__ == "__main__":
    train.cli_main()
