"""Kprune's own masking path: 0/1 masks on out_proj/fc2 inputs equal the physically sliced model."""
import torch

from tests.kprune.helpers import HEAD, tiny_batches, tiny_model
from user_dir.kprune.flops import flops_model_for
from user_dir.kprune.masks import KpruneMasks
from user_dir.kprune.prune import KpruneSettings, apply_pruning, kprune, masked_logits
from user_dir.kprune.sublayers import first_layer_input, run_from


def test_masked_equals_sliced_with_empty_sublayers(device):
    d, model = tiny_model()
    model.to(device)
    batch = tiny_batches(d, 1, device=device)[0]
    masks = KpruneMasks(model)
    masks.keep_heads(0, torch.tensor([True, False, True, False]))
    masks.keep_heads(1, torch.zeros(4, dtype=torch.bool))  # an attention sublayer with no head left
    masks.keep_neurons(0, torch.arange(48) % 3 == 0)
    masks.keep_neurons(2, torch.zeros(48, dtype=torch.bool))  # an FFN with no neuron left
    masked = masked_logits(model, masks, batch, HEAD)
    assert masks.fired == 2 * 3  # every out_proj and fc2 hook ran once: they really fire
    unmasked = model(batch.tokens, classification_head_name=HEAD)[0]
    assert not torch.allclose(masked, unmasked, atol=1e-3)  # the masks do change the output
    apply_pruning(model, masks)
    assert [l.num_heads for l in model.layers] == [2, 0, 4]
    assert [l.ffn_dim for l in model.layers] == [16, 48, 0]
    sliced = model(batch.tokens, classification_head_name=HEAD)[0]
    assert torch.allclose(masked, sliced, atol=1e-5)


def test_masked_equals_sliced_after_a_full_kprune_run_with_tuning(device):
    d, model = tiny_model(seed=1)
    model.to(device)
    batches = tiny_batches(d, 4, device=device)
    result = kprune(model, batches, flops_model_for(model, 9.4),
                    KpruneSettings(constraint=0.6, sublayerwise_tuning=True, head_name=HEAD))
    masked = [masked_logits(model, result.masks, b, HEAD) for b in batches]
    apply_pruning(model, result.masks)
    assert [l.num_heads for l in model.layers] == result.heads_after
    assert [l.ffn_dim for l in model.layers] == result.ffn_after
    for b, ref in zip(batches, masked):
        assert torch.allclose(model(b.tokens, classification_head_name=HEAD)[0], ref, atol=1e-5)


def test_forward_from_any_sublayer_equals_the_model_forward(device):
    """The cached per-sublayer inputs are exact: restarting at sublayer s changes nothing."""
    d, model = tiny_model()
    model.to(device)
    batch = tiny_batches(d, 1, device=device)[0]
    with torch.no_grad():
        x, logits = first_layer_input(model, batch.tokens, HEAD)
        ref = model(batch.tokens, classification_head_name=HEAD)[0]
        assert torch.allclose(logits, ref)
        for s in range(6):
            assert torch.allclose(run_from(model, s, x, batch.padding_mask, HEAD), ref, atol=1e-5)
            layer = model.layers[s // 2]
            x = (layer.attention_block(x, batch.padding_mask)[0] if s % 2 == 0 else layer.ffn_block(x))
