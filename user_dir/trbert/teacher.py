"""A frozen copy of the fine-tuned model: teacher logits and online residual scores.

It is loaded by the criterion from ``--teacher-path`` and kept outside the module tree, so its
weights are neither trained nor saved with the student. It always runs in eval mode.
"""
import logging

import torch
from fairseq import checkpoint_utils

from user_dir.trbert.rollouts import ReductionControl

logger = logging.getLogger(__name__)


class FrozenTeacher:
    def __init__(self, path: str, task):
        self.path = path
        self.task = task
        self._model = None

    def model(self, device: torch.device):
        if self._model is None:
            models, _ = checkpoint_utils.load_model_ensemble([self.path], task=self.task)
            self._model = models[0]
            for p in self._model.parameters():
                p.requires_grad_(False)
            logger.info("loaded frozen teacher %s", self.path)
        self._model.eval()
        return self._model.to(device)

    @torch.no_grad()
    def logits(self, src_tokens: torch.Tensor, head: str) -> torch.Tensor:
        model = self.model(src_tokens.device)
        # a TR-BERT checkpoint as teacher must not reduce tokens
        kwargs = {"reduction": ReductionControl("keep_all")} if hasattr(model, "reduce_layers") else {}
        logits, _ = model(src_tokens, features_only=True, classification_head_name=head, **kwargs)
        return logits.float()
