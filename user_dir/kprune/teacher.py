"""Teacher targets from the unpruned model.

* Soft labels ``softmax(z/T)`` (raw outputs for regression) of every batch, recorded once before
  the loop, together with each batch's input of layer 0 (the start of the student's cache).
* Per sublayer, the pre-LayerNorm residual sum ``residual + out_proj(features)`` (bias included),
  which KPWT fits. Holding these for all 2L sublayers at once would cost 2L·tokens·d floats
  (1.8 GB for MiniLM at 100k tokens), so a frozen copy of the unpruned model produces them as the
  loop reaches each sublayer, from its own cached hidden state: the same numbers, one sublayer's
  worth of memory.

The sum is read with a forward pre-hook on the sublayer's LayerNorm, whose input it is in a
post-LN encoder (BERT, RoBERTa); pre-LN encoders are refused by the entry point.
"""
import copy
from typing import List

import torch

from user_dir.kprune.knowledge import teacher_target
from user_dir.kprune.sublayers import ATTENTION, first_layer_input, run_sublayer, sublayer_of


def sublayer_norm(layer, kind: str):
    return layer.self_attn_layer_norm if kind == ATTENTION else layer.final_layer_norm


class Teacher:
    def __init__(self, model, batches, T: float, regression: bool, head_name: str, with_sums: bool):
        self.batches = batches
        self.targets: List[torch.Tensor] = []
        self.first_inputs: List[torch.Tensor] = []
        with torch.no_grad():
            for batch in batches:
                x0, logits = first_layer_input(model, batch.tokens, head_name)
                self.first_inputs.append(x0)
                self.targets.append(teacher_target(logits, T, regression))
        # the frozen copy is only needed for KPWT's per-sublayer targets
        self.model = copy.deepcopy(model) if with_sums else None
        self.hidden = [x.clone() for x in self.first_inputs] if with_sums else None
        self.next_sublayer = 0

    def sublayer_sums(self, s: int) -> List[torch.Tensor]:
        """Pre-LN sums of sublayer ``s`` on the real tokens of each batch, (N_b, d) each.

        Must be called for s = 0, 1, 2, ... in order: it advances the teacher's cached hidden states.
        """
        if self.model is None:
            raise RuntimeError("this Teacher was built without per-sublayer sums")
        if s != self.next_sublayer:
            raise RuntimeError(f"teacher sums requested for sublayer {s}, expected {self.next_sublayer}")
        layer_idx, kind = sublayer_of(s)
        layer = self.model.layers[layer_idx]
        seen = {}
        handle = sublayer_norm(layer, kind).register_forward_pre_hook(
            lambda module, args: seen.__setitem__("sum", args[0]))
        sums = []
        try:
            with torch.no_grad():
                for i, batch in enumerate(self.batches):
                    self.hidden[i] = run_sublayer(layer, kind, self.hidden[i], batch.padding_mask)
                    sums.append(seen["sum"][batch.real])
        finally:
            handle.remove()
        self.next_sublayer += 1
        return sums
