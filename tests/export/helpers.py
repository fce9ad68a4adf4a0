"""Tiny models of every kind, exported and run with onnxruntime, for the export tests."""
import numpy as np
import torch

from tests.common.prunable_factory import build, random_batch, tiny_dictionary

HEAD = "sentence_classification_head"
# lengths with padding in every batch and more than one batch size, none of them the traced ones
BATCHES = ([12, 9, 5, 11], [7], [20, 3], [33, 30, 17, 4, 2])


def spread_weights(model, seed: int = 0):
    """Weights larger than BERT's init, so attention is peaked and token scores are far from ties
    (a score within float rounding of a threshold may be decided differently by two runtimes)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and "embed" not in name and p.numel():
                p.copy_(torch.randn(p.shape, generator=g) * p.size(1) ** -0.5 * 1.5)
    return model


def tiny(arch: str, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    d = tiny_dictionary()
    model = spread_weights(build(arch, d, **overrides), seed).eval()
    return d, model


def session(path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def max_diff(model, sess, dictionary, batches=BATCHES):
    """Largest |ORT - fairseq| over the logits of all batches (fairseq's eval forward)."""
    worst = 0.0
    for i, lengths in enumerate(batches):
        tokens = random_batch(dictionary, lengths, seed=i)
        with torch.no_grad():
            ref = model(tokens, classification_head_name=HEAD)[0].numpy()
        out = sess.run(None, {"src_tokens": tokens.numpy()})[0]
        assert out.shape == ref.shape
        worst = max(worst, float(np.abs(out - ref).max()))
    return worst
