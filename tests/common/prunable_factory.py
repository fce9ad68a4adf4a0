"""Build small RoBERTa-style models in-process (no data on disk) for unit tests."""
import argparse
from types import SimpleNamespace

import torch
from fairseq.data import Dictionary
from fairseq.models import ARCH_CONFIG_REGISTRY, ARCH_MODEL_REGISTRY

import user_dir  # noqa: F401  (registers the plugin)

TINY = dict(encoder_layers=3, encoder_embed_dim=32, encoder_ffn_embed_dim=48,
            encoder_attention_heads=4, max_positions=64)


def tiny_dictionary(num_words: int = 40) -> Dictionary:
    d = Dictionary()
    for i in range(num_words):
        d.add_symbol(f"w{i}")
    d.add_symbol("<mask>")
    return d


def build(arch: str, dictionary: Dictionary = None, num_classes: int = 3, **overrides):
    """Model of ``arch`` with TINY sizes (overridable) and a 'sentence_classification_head'."""
    dictionary = dictionary or tiny_dictionary()
    model_cls = ARCH_MODEL_REGISTRY[arch]
    parser = argparse.ArgumentParser(argument_default=argparse.SUPPRESS)  # as fairseq parses model args
    model_cls.add_args(parser)
    args = parser.parse_args([])
    for key, value in {**TINY, **overrides}.items():
        setattr(args, key, value)
    ARCH_CONFIG_REGISTRY[arch](args)
    task = SimpleNamespace(source_dictionary=dictionary, max_positions=lambda: args.max_positions)
    model = model_cls.build_model(args, task)
    if num_classes:
        model.register_classification_head("sentence_classification_head", num_classes=num_classes)
    return model


def random_batch(dictionary: Dictionary, lengths, seed: int = 0) -> torch.Tensor:
    """Right-padded token batch, ``<s>`` first and ``</s>`` last like sentence_prediction builds."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.full((len(lengths), max(lengths)), dictionary.pad(), dtype=torch.long)
    for row, n in enumerate(lengths):
        tokens[row, 0] = dictionary.bos()
        tokens[row, 1:n - 1] = torch.randint(dictionary.nspecial, len(dictionary) - 1, (n - 2,), generator=g)
        tokens[row, n - 1] = dictionary.eos()
    return tokens
