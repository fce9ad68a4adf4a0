"""Small in-process models and batches for Kprune's unit tests."""
import torch

from tests.common.prunable_factory import build, random_batch, tiny_dictionary
from user_dir.kprune.data import Batch

HEAD = "sentence_classification_head"


def tiny_model(seed: int = 0, num_classes: int = 3, **overrides):
    """A tiny prunable_roberta with a classification head; weights drawn larger than BERT's init
    so every unit matters and scores are far from ties."""
    torch.manual_seed(seed)
    d = tiny_dictionary()
    model = build("prunable_roberta", d, num_classes=num_classes, **overrides).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and "embed" not in name:
                p.copy_(torch.randn(p.shape, generator=g) * p.size(1) ** -0.5)
    return d, model


def tiny_batches(d, count: int = 4, seed: int = 0, device="cpu"):
    out = []
    for i in range(count):
        tokens = random_batch(d, [12, 11, 9, 8, 12, 7, 6, 10], seed=seed + i).to(device)
        out.append(Batch(tokens=tokens, padding_mask=tokens.eq(d.pad())))
    return out


def copy_of(model, d, num_classes: int = 3):
    other = build("prunable_roberta", d, num_classes=num_classes).eval()
    other.load_state_dict(model.state_dict())
    return other
