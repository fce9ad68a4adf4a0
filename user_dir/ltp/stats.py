"""What one LTP forward pass leaves behind for the criterion: token counts, soft masks, thresholds.

The encoder fills an :class:`LtpStats` while it runs its layers; the criterion turns it into the
threshold regulariser (soft stage) and into the kept-token ratios and relative FLOPs that
validation logs. Counts are per example, so padding never inflates them.
"""
from typing import List, Optional, Sequence, Tuple

import torch

from user_dir.ltp.flops import LayerDims, encoder_macs, unpruned_macs

REG_NORMS = ("tokens", "padded")


class LtpStats:
    def __init__(self, n0: torch.Tensor, thresholds: torch.Tensor, temperature: float, score_length: int):
        self.n0 = n0                      # (B,) unpadded input lengths
        self.thresholds = thresholds      # (N,) float32, in the autograd graph in the soft stage
        self.temperature = temperature
        self.score_length = score_length
        self.n_out: List[torch.Tensor] = []  # per layer: tokens left after its pruning, (B,)
        self.soft_masks: List[Tuple[int, torch.Tensor, torch.Tensor]] = []  # (layer, mask, padding)
        self.hard = False  # True once a layer made a binary keep decision

    @property
    def n_in(self) -> List[torch.Tensor]:
        """Per layer: tokens entering it (those the previous layer kept), (B,)."""
        return [self.n0] + self.n_out[:-1]

    @property
    def current(self) -> torch.Tensor:
        return self.n_out[-1] if self.n_out else self.n0

    def record(self, n_out: Optional[torch.Tensor] = None):
        """A layer finished; ``n_out`` is None when it kept every token it got."""
        if n_out is None:
            n_out = self.current
        else:
            self.hard = True
        self.n_out.append(n_out)

    # ---- FLOPs and kept tokens (validation metrics) -------------------------------------------
    def macs(self, dims: Sequence[LayerDims]) -> Tuple[float, float]:
        """(MACs actually spent, MACs without pruning), summed over the batch."""
        spent = encoder_macs(dims, self.n_in, self.n_out).sum()
        full = unpruned_macs(dims, self.n0).sum()
        return float(spent), float(full)

    def kept_tokens(self) -> List[float]:
        """Tokens left after each layer's pruning, summed over the batch."""
        return [float(n.sum()) for n in self.n_out]

    # ---- soft-stage regulariser ----------------------------------------------------------------
    def regularizer(self, norm: str = "tokens") -> Optional[torch.Tensor]:
        """``sum_{l>=1} mean_{b,j} m_l[b, j]`` over the soft masks of this pass (None if there are none).

        tokens: the mean runs over the real tokens of the batch. padded: as the original, which
        padded every example to ``score_length`` (128) positions; a padding position receives no
        attention, so its mask is ``sigmoid(-theta / T)``. It is added analytically for the
        missing positions instead of materialising the padding.
        """
        if not self.soft_masks:
            return None
        total = 0.0
        for layer, mask, padding in self.soft_masks:
            real = (~padding).to(mask.dtype)
            per_example = (mask * real).sum(dim=1)
            if norm == "tokens":
                total = total + per_example.sum() / real.sum()
            elif norm == "padded":
                n0 = self.n0.to(mask.dtype)
                length = torch.clamp(n0, min=float(self.score_length))
                pad_mask = torch.sigmoid(-self.thresholds[layer] / self.temperature)
                total = total + ((per_example + (length - n0) * pad_mask) / length).mean()
            else:
                raise ValueError(f"--ltp-reg-norm must be one of {', '.join(REG_NORMS)}; got {norm!r}")
        return total
