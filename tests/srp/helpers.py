"""Building small SRP models and batches in-process (no CLI), for the unit tests."""
import copy
from argparse import Namespace

import torch
from fairseq.data import Dictionary

from user_dir.srp.model import SRPModel
from fairseq.models import ARCH_CONFIG_REGISTRY


class FakeTask:
    def __init__(self, n_src=40, n_tgt=30):
        self.source_dictionary = self._dict(n_src, "s")
        self.target_dictionary = self._dict(n_tgt, "t")

    @staticmethod
    def _dict(n, prefix):
        d = Dictionary()
        for i in range(n):
            d.add_symbol(f"{prefix}{i}")
        return d


def build(arch="srp_tiny", task=None, seed=0, **overrides):
    torch.manual_seed(seed)
    task = task or FakeTask()
    cfg = Namespace(arch=arch, max_source_positions=64, max_target_positions=64, **overrides)
    ARCH_CONFIG_REGISTRY[arch](cfg)
    model = SRPModel.build_model(cfg, task)
    return model, task


@torch.no_grad()
def randomize(model, seed=1):
    """Non-trivial values everywhere (biases and layer norms included), so no test passes by zeros."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if name.endswith("embed_tokens.weight"):
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            p[1] = 0  # fairseq's padding index
        elif "layer_norm.weight" in name:
            p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
        else:
            p.copy_(torch.randn(p.shape, generator=g) * (p.shape[-1] ** -0.5 if p.dim() > 1 else 0.2))
    return model


def batch(task, bsz=3, src_len=7, tgt_len=6, seed=2):
    """Left-padded sources and right-padded targets of different lengths, as fairseq batches them."""
    g = torch.Generator().manual_seed(seed)
    sd, td = task.source_dictionary, task.target_dictionary
    src = torch.full((bsz, src_len), sd.pad())
    prev = torch.full((bsz, tgt_len), td.pad())
    for b in range(bsz):
        n = src_len - b
        src[b, src_len - n:] = torch.randint(sd.nspecial, len(sd), (n,), generator=g)
        src[b, -1] = sd.eos()
        m = tgt_len - b
        prev[b, 0] = td.eos()
        prev[b, 1:m] = torch.randint(td.nspecial, len(td), (m - 1,), generator=g)
    lengths = src.ne(sd.pad()).sum(1)
    return src, lengths, prev


def copy_model(model):
    model.invalidate_gates()
    return copy.deepcopy(model)
