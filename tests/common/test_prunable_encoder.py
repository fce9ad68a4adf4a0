"""The prunable encoder core: same model as stock RoBERTa, and pruning that changes nothing it keeps."""
import argparse

import pytest
import torch

from tests.common.prunable_factory import TINY, build, random_batch, tiny_dictionary
from user_dir.common.prunable_encoder import layer_shapes
from user_dir.common.token_gather import gather_positions, gather_tokens

torch.manual_seed(0)


def _features(model, tokens):
    return model(tokens, features_only=True)[0]


def _stock_and_prunable(device="cpu"):
    d = tiny_dictionary()
    stock = build("roberta", d).eval()
    ours = build("prunable_roberta", d).eval()
    ours.load_state_dict(stock.state_dict(), strict=True)
    return d, stock.to(device), ours.to(device)


def test_same_parameters_and_outputs_as_stock_roberta(device):
    d, stock, ours = _stock_and_prunable(device)
    assert set(stock.state_dict()) == set(ours.state_dict())
    tokens = random_batch(d, [9, 5, 7]).to(device)
    ref = _features(stock, tokens)
    out = _features(ours, tokens)
    real = tokens.ne(d.pad())
    assert torch.allclose(out[real], ref[real], atol=1e-5)
    logits_ref = stock(tokens, classification_head_name="sentence_classification_head")[0]
    logits = ours(tokens, classification_head_name="sentence_classification_head")[0]
    assert torch.allclose(logits, logits_ref, atol=1e-5)


def test_probability_path_equals_fused_path():
    d, _, ours = _stock_and_prunable()
    tokens = random_batch(d, [9, 4])
    layer = ours.layers[0]
    x = torch.randn(2, 9, TINY["encoder_embed_dim"])
    pad = tokens.eq(d.pad())
    fused, none = layer.attention_block(x, pad, need_probs=False)
    explicit, probs = layer.attention_block(x, pad, need_probs=True)
    assert none is None and probs.shape == (2, TINY["encoder_attention_heads"], 9, 9)
    assert torch.allclose(fused, explicit, atol=1e-5)
    # probabilities sum to one over real keys and are zero on padding keys
    assert torch.allclose(probs.sum(-1), torch.ones(2, 4, 9), atol=1e-5)
    assert probs[1, :, :, 4:].abs().max() == 0


def _mask_hooks(model, head_masks, neuron_masks):
    """Multiply the inputs of out_proj (per head dim) and fc2 (per neuron) by 0/1 masks."""
    handles = []
    for layer, hm, nm in zip(model.layers, head_masks, neuron_masks):
        dim_mask = hm.repeat_interleave(layer.self_attn.head_dim)
        handles.append(layer.self_attn.out_proj.register_forward_pre_hook(
            lambda mod, inp, m=dim_mask: (inp[0] * m,)))
        handles.append(layer.fc2.register_forward_pre_hook(lambda mod, inp, m=nm: (inp[0] * m,)))
    return handles


def test_masked_structure_equals_sliced_structure(device):
    d, _, model = _stock_and_prunable(device)
    tokens = random_batch(d, [10, 6, 8]).to(device)
    heads = TINY["encoder_attention_heads"]
    ffn = TINY["encoder_ffn_embed_dim"]
    # layer 0: two heads, half the FFN; layer 1: no heads at all; layer 2: no FFN neuron at all
    head_masks = [torch.tensor([1.0, 0, 1, 0]), torch.zeros(heads), torch.tensor([0.0, 1, 1, 1])]
    neuron_masks = [(torch.arange(ffn) % 2).float(), torch.ones(ffn), torch.zeros(ffn)]
    # on the model's device, as Kprune's masks are: prune_structure takes the kept indices from there
    head_masks, neuron_masks = [m.to(device) for m in head_masks], [m.to(device) for m in neuron_masks]
    handles = _mask_hooks(model, head_masks, neuron_masks)
    masked = model(tokens, classification_head_name="sentence_classification_head")[0]
    masked_feats = _features(model, tokens)
    for h in handles:
        h.remove()
    model.prune_structure([m.nonzero().flatten() for m in head_masks],
                          [m.nonzero().flatten() for m in neuron_masks])
    assert [l.num_heads for l in model.layers] == [2, 0, 3]
    assert [l.ffn_dim for l in model.layers] == [ffn // 2, ffn, 0]
    sliced = model(tokens, classification_head_name="sentence_classification_head")[0]
    real = tokens.ne(d.pad())
    assert torch.allclose(sliced, masked, atol=1e-5)
    assert torch.allclose(_features(model, tokens)[real], masked_feats[real], atol=1e-5)


def test_pruned_shapes_rebuild_from_config_and_load_strictly(device):
    d, _, model = _stock_and_prunable(device)
    model.prune_structure([torch.tensor([0, 2]), torch.tensor([], dtype=torch.long), torch.arange(4)],
                          [torch.arange(10), torch.arange(48), torch.tensor([], dtype=torch.long)])
    assert model.args.encoder_layer_heads == "2,0,4"
    assert model.args.encoder_layer_ffn_dims == "10,48,0"
    rebuilt = build("prunable_roberta", d, encoder_layer_heads=model.args.encoder_layer_heads,
                    encoder_layer_ffn_dims=model.args.encoder_layer_ffn_dims).to(device).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    tokens = random_batch(d, [7, 5]).to(device)
    assert torch.allclose(_features(rebuilt, tokens), _features(model, tokens), atol=1e-6)


@pytest.mark.parametrize("value, message", [
    ("4,4", "one value per layer"),
    ("4,4,9", r"\[0, 4\]"),
    ("a,b,c", "comma-separated integers"),
])
def test_bad_layer_sizes_are_refused(value, message):
    args = argparse.Namespace(encoder_layers=3, encoder_attention_heads=4, encoder_ffn_embed_dim=48,
                              encoder_layer_heads=value, encoder_layer_ffn_dims=None)
    with pytest.raises(ValueError, match=message):
        layer_shapes(args)


def test_gather_tokens_keeps_order_and_repads():
    x = torch.arange(2 * 5, dtype=torch.float).view(2, 5, 1)
    pad = torch.tensor([[0, 0, 0, 0, 0], [0, 0, 0, 1, 1]], dtype=torch.bool)
    keep = torch.tensor([[1, 0, 1, 0, 1], [1, 1, 0, 1, 1]], dtype=torch.bool)  # padding "kept" is ignored
    out = gather_tokens(x, pad, keep)
    assert out.x.squeeze(-1).tolist() == [[0.0, 2.0, 4.0], [5.0, 6.0, 0.0]]
    assert out.padding_mask.tolist() == [[False, False, False], [False, False, True]]
    assert out.index.tolist() == [[0, 2, 4], [0, 1, 0]]
    ids = torch.tensor([[10, 11, 12, 13, 14], [20, 21, 22, 1, 1]])
    assert gather_positions(ids, out.index).tolist() == [[10, 12, 14], [20, 21, 20]]


def test_gathered_tokens_equal_masked_tokens_through_the_rest_of_the_encoder(device):
    """Dropping tokens physically = keeping them but masking them as keys from then on."""
    d, _, model = _stock_and_prunable(device)
    tokens = random_batch(d, [10, 7, 9], seed=3).to(device)
    pad = tokens.eq(d.pad())
    g = torch.Generator().manual_seed(1)
    keep = (torch.rand(tokens.shape, generator=g) > 0.4).to(device)
    keep[:, 0] = True
    enc = model.encoder.sentence_encoder
    x, _ = enc.forward_embedding(tokens)
    x = x * (~pad).unsqueeze(-1)
    x = enc.layers[0](x, pad)
    # masked path: dropped tokens stay in the tensor but no longer act as keys
    masked_pad = pad | ~keep
    xm = x
    for layer in enc.layers[1:]:
        xm = layer(xm, masked_pad)
    gathered = gather_tokens(x, pad, keep)
    xg, gpad = gathered.x, gathered.padding_mask
    for layer in enc.layers[1:]:
        xg = layer(xg, gpad)
    expected = gather_positions(xm, gathered.index)
    assert torch.allclose(xg[~gpad], expected[~gpad], atol=1e-5)


def test_result_does_not_depend_on_batch_padding(device):
    d, _, model = _stock_and_prunable(device)
    batch = random_batch(d, [12, 5, 9], seed=4).to(device)
    alone = batch[1:2, :5]
    together = _features(model, batch)[1, :5]
    assert torch.allclose(_features(model, alone)[0], together, atol=1e-5)
