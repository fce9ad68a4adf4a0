"""Physically removing pruned tokens changes nothing for the tokens that stay: same logits (fp32)."""
import dataclasses

import pytest
import torch

from tests.common.prunable_factory import build, random_batch, tiny_dictionary

HEAD = "sentence_classification_head"
LENGTHS = [23, 9, 17, 30, 12]  # mixed lengths: every example has its own padding and pruning


def _model(dictionary, **ltp):
    torch.manual_seed(0)
    model = build("ltp_roberta", dictionary, encoder_layers=6, max_positions=64, **ltp).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        # BERT's init (std 0.02) gives near-uniform attention, where every token scores the same
        # and a threshold keeps all or nothing; larger q/k weights give peaked, trained-like attention
        for layer in model.layers:
            for w in (layer.self_attn.q_proj.weight, layer.self_attn.k_proj.weight):
                w.copy_(torch.randn(w.shape, generator=g) * 0.4)
        # learned-looking thresholds: different per layer, so every layer prunes its own share
        model.ltp_encoder.ltp_threshold_delta.copy_(torch.tensor([0.0, 0.01, -0.004, 0.02, 0.0, 0.03]))
    return model


def _run(model, tokens, physical):
    model.ltp_encoder.ltp = dataclasses.replace(model.ltp_encoder.ltp, physical_removal=physical)
    with torch.no_grad():
        logits = model(tokens, classification_head_name=HEAD)[0]
    stats = model.ltp_encoder.last_stats
    return logits, [n.tolist() for n in stats.n_out]


CASES = {
    "threshold-length": dict(prune_mode="absolute_threshold", ltp_score_norm="length", final_token_threshold=0.06),
    "threshold-fixed": dict(prune_mode="absolute_threshold", ltp_score_norm="fixed", ltp_score_length=20,
                            final_token_threshold=0.08),
    "topk": dict(prune_mode="topk", token_keep_rate=0.3),
    "threshold-structured": dict(prune_mode="absolute_threshold", ltp_score_norm="length",
                                 final_token_threshold=0.06, encoder_layer_heads="4,2,3,4,1,4",
                                 encoder_layer_ffn_dims="48,20,48,7,48,30"),
}


@pytest.mark.parametrize("case", CASES)
def test_masked_and_gathered_paths_give_the_same_logits(case, device):
    d = tiny_dictionary()
    model = _model(d, **CASES[case]).to(device)
    tokens = random_batch(d, LENGTHS, seed=5).to(device)
    masked, kept_masked = _run(model, tokens, physical=False)
    gathered, kept_gathered = _run(model, tokens, physical=True)
    assert kept_masked == kept_gathered
    # the comparison means something only if tokens were pruned, differently per example and layer
    pruned = [[n - k for k, n in zip(layer, LENGTHS)] for layer in kept_gathered]
    assert sum(pruned[-1]) > len(LENGTHS) and len(set(pruned[-1])) > 1, kept_gathered
    assert len({tuple(p) for p in pruned}) > 2, kept_gathered
    assert torch.allclose(masked, gathered, atol=1e-5), (masked - gathered).abs().max()


def test_pruning_of_an_example_does_not_depend_on_its_batch(device):
    d = tiny_dictionary()
    model = _model(d, **CASES["threshold-length"]).to(device)
    tokens = random_batch(d, LENGTHS, seed=6).to(device)
    together, kept = _run(model, tokens, physical=True)
    for row, n in enumerate(LENGTHS):
        alone, kept_alone = _run(model, tokens[row:row + 1, :n], physical=True)
        assert [k[0] for k in kept_alone] == [k[row] for k in kept]
        assert torch.allclose(alone[0], together[row], atol=1e-5)


def test_gathered_path_really_shortens_the_batch(device):
    d = tiny_dictionary()
    model = _model(d, **CASES["topk"]).to(device)
    tokens = random_batch(d, LENGTHS, seed=5).to(device)
    with torch.no_grad():
        out = model.ltp_encoder(tokens)
    kept = model.ltp_encoder.last_stats.n_out[-1]
    assert out["encoder_out"][0].size(0) == int(kept.max()) < tokens.size(1)
    assert out["encoder_padding_mask"][0].logical_not().sum(1).tolist() == kept.tolist()
