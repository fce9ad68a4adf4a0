"""A structurally pruned state dict restores into a model built at full size (fairseq-train
--restore-file from a Kprune checkpoint), and explicit sizes are never overridden."""
import pytest
import torch

from tests.common.prunable_factory import build, random_batch, tiny_dictionary


def _pruned(d):
    model = build("prunable_roberta", d).eval()
    model.prune_structure([torch.tensor([1, 3]), torch.tensor([], dtype=torch.long), torch.arange(4)],
                          [torch.arange(0, 48, 3), torch.arange(48), torch.tensor([], dtype=torch.long)])
    return model


def test_full_size_model_adopts_pruned_sizes_and_outputs():
    d = tiny_dictionary()
    pruned = _pruned(d)
    fresh = build("prunable_roberta", d).eval()  # as fairseq-train builds it: no per-layer sizes
    fresh.load_state_dict(pruned.state_dict(), strict=True)
    assert [l.num_heads for l in fresh.layers] == [2, 0, 4]
    assert [l.ffn_dim for l in fresh.layers] == [16, 48, 0]
    # the sizes are in the config, so checkpoints of the new run rebuild
    assert fresh.args.encoder_layer_heads == "2,0,4"
    assert fresh.args.encoder_layer_ffn_dims == "16,48,0"
    tokens = random_batch(d, [9, 6])
    head = "sentence_classification_head"
    assert torch.allclose(fresh(tokens, classification_head_name=head)[0],
                          pruned(tokens, classification_head_name=head)[0], atol=1e-6)
    # the restored parameters are the ones an optimizer would see
    assert sum(p.numel() for p in fresh.parameters()) == sum(p.numel() for p in pruned.parameters())


def test_unpruned_state_dict_changes_nothing():
    d = tiny_dictionary()
    model = build("prunable_roberta", d)
    other = build("prunable_roberta", d)
    other.load_state_dict(model.state_dict(), strict=True)
    assert other.args.encoder_layer_heads is None and other.args.encoder_layer_ffn_dims is None


def test_explicit_sizes_are_not_overridden():
    d = tiny_dictionary()
    pruned = _pruned(d)
    explicit = build("prunable_roberta", d, encoder_layer_heads="4,4,4", encoder_layer_ffn_dims="48,48,48")
    with pytest.raises(RuntimeError, match="size mismatch"):
        explicit.load_state_dict(pruned.state_dict(), strict=True)
