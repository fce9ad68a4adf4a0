"""The layer norm of an SRP model, in its two pruning-safe variants.

* weighted (``--weighted-layernorm``): statistics weighted by the connectivity vector ``c`` of the
  residual stream, ``mu = Σ c x / Σ c``, ``sigma = sqrt(Σ c (x - mu)^2 / Σ c)``, output
  ``gamma (x - mu) / (sigma + eps) + beta`` (eps added to sigma, as in the original). With
  ``c ∈ {0, 1}`` it is exactly this same norm over the kept dims, which is what the sliced model runs,
  so the model keeps the formula after slicing too.
* non-weighted (the original default): ``LN(x ⊙ c)`` as a vector of the full width with zeros in the
  pruned dims. After slicing, the kept dims are normalised with the statistics of that zero-padded
  vector (``ln_width`` = the width before slicing), which keeps this variant pruning-safe as well.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class SRPLayerNorm(nn.Module):
    def __init__(self, dim: int, weighted: bool = False, ln_width: int = None, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.weighted = weighted
        self.ln_width = ln_width or dim
        self.eps = eps

    @property
    def dim(self) -> int:
        return self.weight.numel()

    def forward(self, x: torch.Tensor, c: torch.Tensor = None) -> torch.Tensor:
        """``LN_c(x) ⊙ c`` when gated (``c`` given), the plain norm otherwise. The output gate is folded
        into the affine parameters (``(gamma ⊙ c, beta ⊙ c)``: two d-vectors instead of a multiply of
        the whole activation)."""
        weight, bias = self.weight, self.bias
        if c is not None:
            weight, bias = weight * c, bias * c
        if self.weighted:
            return self._weighted(x, c, weight, bias)
        if c is not None:
            x = x * c
        if self.ln_width == self.dim:
            return F.layer_norm(x, (self.dim,), weight, bias, self.eps)
        return self._zero_padded(x, weight, bias)

    def _weighted(self, x, c, weight, bias):
        if c is None:
            mu = x.mean(-1, keepdim=True)
            xc = x - mu
            var = xc.pow(2).mean(-1, keepdim=True)
        else:
            total = c.sum()
            mu = torch.matmul(x, c).unsqueeze(-1) / total
            xc = x - mu
            var = torch.matmul(xc * xc, c).unsqueeze(-1) / total
        return torch.addcmul(bias, xc / (var.sqrt() + self.eps), weight)

    def _zero_padded(self, x, weight, bias):
        # the (ln_width - dim) absent entries are zeros: they add nothing to the sum but count in
        # the mean, and each contributes mu^2 to the variance
        width = float(self.ln_width)
        mu = x.sum(-1, keepdim=True) / width
        xc = x - mu
        var = (xc.pow(2).sum(-1, keepdim=True) + (width - self.dim) * mu * mu) / width
        return torch.addcmul(bias, xc * torch.rsqrt(var + self.eps), weight)

    def extra_repr(self) -> str:
        return f"{self.dim}, weighted={self.weighted}, ln_width={self.ln_width}, eps={self.eps}"
