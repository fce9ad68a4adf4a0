"""Tiny TR-BERT models and a minimal fairseq-like task/sample for in-process tests."""
from types import SimpleNamespace

import torch

from tests.common.prunable_factory import build, random_batch, tiny_dictionary

HEAD = "sentence_classification_head"


def tiny_trbert(dictionary=None, seed: int = 0, policy_bias: float = 0.0, **overrides):
    """A 3-layer TR-BERT (reduction before layers 1 and 2) whose policies keep roughly half the tokens."""
    torch.manual_seed(seed)
    model = build("trbert_roberta", dictionary or tiny_dictionary(), **overrides)
    for policy in model.sentence_encoder.policies:
        # a policy with a real spread of probabilities around 0.5 (fairseq's init is nearly flat)
        torch.nn.init.normal_(policy.fc1.weight, std=0.5)
        torch.nn.init.normal_(policy.fc2.weight, std=1.0)
        torch.nn.init.constant_(policy.fc2.bias, policy_bias)
    return model


def sample_for(tokens, targets, ids=None, dictionary=None):
    pad = (dictionary or tiny_dictionary()).pad()
    return {
        "id": torch.arange(tokens.size(0)) if ids is None else ids,
        "net_input": {"src_tokens": tokens, "src_lengths": tokens.ne(pad).sum(1)},
        "target": targets,
        "ntokens": int(tokens.ne(pad).sum()),
        "nsentences": tokens.size(0),
    }


def fake_task(dictionary=None):
    return SimpleNamespace(source_dictionary=dictionary or tiny_dictionary(), label_dictionary=None)


__all__ = ["HEAD", "tiny_trbert", "sample_for", "fake_task", "random_batch", "tiny_dictionary", "build"]
