"""Compression counts on the paper's arch, and parameter / FLOPs counting against fvcore."""
from argparse import Namespace

import pytest
import torch

from tests.srp.helpers import FakeTask, build
from user_dir.srp.compression_rate import kept_fraction, parameter_split, target_counts
from user_dir.srp.counting import flops_per_sentence, fvcore_check, parameters
from user_dir.srp.shapes import LayerShape, ModelShapes, SideShape


def iwslt_shapes():
    cfg = Namespace(arch="srp_iwslt_de_en")
    from fairseq.models import ARCH_CONFIG_REGISTRY

    ARCH_CONFIG_REGISTRY["srp_iwslt_de_en"](cfg)
    return ModelShapes.from_arch(cfg)


def pruned_shapes(original, counts):
    """The shapes after removing ``counts``; FFN neurons spread over the layers (every layer here has
    the same width on both sides, so where they go does not change the parameter count)."""
    n_layers = len(original.encoder.layers) + len(original.decoder.layers)
    cut = [counts.fc // n_layers + (i < counts.fc % n_layers) for i in range(n_layers)]

    def side(s, name, cuts):
        per_head = s.embed_dim // s.heads - counts.head[name]
        return SideShape(s.embed_dim - counts.emb[name], s.ln_width, s.heads, [
            LayerShape(l.ffn - c, per_head, per_head,
                       per_head if l.cross_qk is not None else None,
                       per_head if l.cross_vo is not None else None) for l, c in zip(s.layers, cuts)])
    n_enc = len(original.encoder.layers)
    return ModelShapes(side(original.encoder, "encoder", cut[:n_enc]),
                       side(original.decoder, "decoder", cut[n_enc:]))


def iwslt_model(shapes=None):
    overrides = {"srp_shapes": shapes.to_json()} if shapes is not None else {}
    model, _ = build("srp_iwslt_de_en", task=FakeTask(8848 - 4, 6632 - 4),
                     share_decoder_input_output_embed=True, **overrides)
    return model


@pytest.mark.parametrize("rate,emb,fc,head,fraction", [
    (0.2, 313, 7500, 79, 0.198),
    (0.5, 167, 3994, 42, 0.498),
])
def test_iwslt_counts(rate, emb, fc, head, fraction):
    original = iwslt_shapes()
    split = parameter_split(original, 8848, 6632, tied_output=True)
    x = kept_fraction(rate, split)
    counts = target_counts(original, x, 1, 1)
    assert counts.emb == {"encoder": emb, "decoder": emb}
    assert counts.fc == fc
    assert counts.head == {"encoder": head, "decoder": head}
    total = parameters(iwslt_model())
    assert abs(total - 39.47e6) < 0.005e6
    pruned = parameters(iwslt_model(pruned_shapes(original, counts)))
    assert abs(pruned / total - fraction) < 0.0015, pruned / total


def test_iwslt_split_and_gates():
    model = iwslt_model()
    assert len(model.encoder.dictionary) == 8848 and len(model.decoder.dictionary) == 6632
    split = parameter_split(iwslt_shapes(), 8848, 6632, tied_output=True)
    layer_norms = 6 * 2 * 2 * 512 + 6 * 3 * 2 * 512
    assert parameters(model) == split.n1 + split.n2 + layer_norms
    assert sum(g.size for g in model.gates()) == 31744  # connectivity scalars, not parameters


def test_iterations_reach_the_same_target():
    original = iwslt_shapes()
    x = kept_fraction(0.2, parameter_split(original, 8848, 6632, True))
    last = target_counts(original, x, 3, 3)
    assert (last.emb, last.fc, last.head) == (
        {"encoder": 313, "decoder": 313}, 7500, {"encoder": 79, "decoder": 79})
    first = target_counts(original, x, 1, 3)
    assert 0 < first.fc < last.fc and 0 < first.emb["encoder"] < 313


@pytest.mark.parametrize("rate", [0.0, -0.1, 1.5])
def test_rate_outside_range(rate):
    with pytest.raises(ValueError, match="compression-rate"):
        kept_fraction(rate, parameter_split(iwslt_shapes(), 10, 10, True))


def test_rate_one_removes_nothing():
    original = iwslt_shapes()
    counts = target_counts(original, kept_fraction(1.0, parameter_split(original, 10, 10, True)), 1, 1)
    assert counts.emb == {"encoder": 0, "decoder": 0} and counts.fc == 0


@pytest.mark.parametrize("prune", [False, True])
def test_flops_match_fvcore(prune):
    from user_dir.srp.slicing import slice_selected

    model, _ = build(share_decoder_input_output_embed=True)
    if prune:
        g_ = torch.Generator().manual_seed(0)
        for g in model.gates():
            sel = torch.rand(g.size, generator=g_) < 0.4
            if g.kind in ("qk", "vo"):
                w = g.size // g.heads
                sel = torch.cat([torch.arange(w) < 3] * g.heads)
            if g.kind == "emb":
                sel[0] = False
            g.sel.copy_(sel)
        model.gates()[2].sel.fill_(True)  # encoder layer 0: every q·k dim
        slice_selected(model)
    ours = flops_per_sentence(model, 9, 6)
    theirs = fvcore_check(model, 9, 6)
    assert ours["total"] == theirs["total"] > 0
    assert parameters(model) == sum(p.numel() for p in model.parameters())
