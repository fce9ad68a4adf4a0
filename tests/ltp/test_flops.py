"""LTP's MAC formula: hand values, per-example accounting, and torch's own op counter."""
import torch
from torch.utils.flop_counter import FlopCounterMode

from tests.common.prunable_factory import build, random_batch, tiny_dictionary
from user_dir.ltp.flops import LayerDims, layer_macs, unpruned_macs


def test_layer_macs_by_hand():
    # 2*d*n_a^2 + 4*d^2*n_a + 2*d*d_ff*n_f with d = 4, d_ff = 16, n_a = 10, n_f = 5
    assert layer_macs(LayerDims(4, 4, 16), 10, 5) == 800 + 640 + 640
    # d_ff = 4d: the FFN term is the original's 8 d^2 n_f
    d, n_a, n_f = 384, 27, 11
    assert layer_macs(LayerDims(d, d, 4 * d), n_a, n_f) == 2 * d * n_a ** 2 + 4 * d * d * n_a + 8 * d * d * n_f
    # a structurally pruned layer: 2 heads of 8 in a d = 32 model
    assert layer_macs(LayerDims(32, 16, 20), 3, 2) == 2 * 16 * 9 + 4 * 32 * 16 * 3 + 2 * 32 * 20 * 2


def _pruning_model(**kw):
    d = tiny_dictionary()
    model = build("ltp_roberta", d, encoder_layers=6, max_positions=64, prune_mode="topk",
                  token_keep_rate=0.3, **kw).eval()
    return d, model


def test_relative_flops_sums_per_example_counts():
    d, model = _pruning_model()
    lengths = [20, 6, 13]
    with torch.no_grad():
        model(random_batch(d, lengths, seed=3))
    stats = model.ltp_encoder.last_stats
    dims = LayerDims(32, 32, 48)
    rates = [1, 1, 1, 1 - 0.7 / 3, 1 - 1.4 / 3, 0.3]
    spent = full = 0
    for n in lengths:
        n_a = n
        for r in rates:
            n_f = max(1, round(n * r))
            spent += layer_macs(dims, n_a, n_f)
            n_a = n_f
        full += 6 * layer_macs(dims, n, n)
    got_spent, got_full = stats.macs(model.ltp_encoder.layer_dims())
    assert got_full == full == float(unpruned_macs([dims] * 6, torch.tensor(lengths)).sum())
    assert got_spent == spent < full


def test_formula_matches_torch_op_counter_on_one_example():
    """For one example (no padding) the counted matmuls are exactly the formula's."""
    d, model = _pruning_model(encoder_layer_heads="4,3,4,2,4,1", encoder_layer_ffn_dims="48,10,48,48,5,48")
    enc = model.ltp_encoder
    for layer in enc.layers:  # unfused attention everywhere, so the counter sees both matmuls
        layer.attention_block = (lambda x, pad, need_probs=False, _f=layer.attention_block: _f(x, pad, True))
    tokens = random_batch(d, [19], seed=4)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        enc(tokens)
    counts = counter.get_flop_counts()
    prefix = type(enc).__name__ + ".layers."
    # attention modules and FFN linears only: LTP's own score computation is not in the formula
    counted = sum(sum(ops.values()) for name, ops in counts.items()
                  if name.startswith(prefix) and name.endswith((".self_attn", ".fc1", ".fc2")))
    spent, _ = enc.last_stats.macs(enc.layer_dims())
    assert counted == 2 * spent  # the counter reports FLOPs = 2 x MACs
    assert enc.last_stats.n_out[-1].item() < 19
