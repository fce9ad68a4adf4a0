"""Pruning safety: with the selected c at exactly 0, the gated model and the sliced model agree.

Every group type alone and all together, both layer-norm variants, full-sequence and incremental
decoding, a module whose q·k dims are all pruned and a layer whose FFN is entirely pruned.
"""
import pytest
import torch

from tests.srp.helpers import batch, build, copy_model, randomize
from user_dir.srp.slicing import slice_selected

TOL = 1e-5


def _select(model, kinds, seed=3, extremes=True):
    g_ = torch.Generator().manual_seed(seed)
    gates = model.gates()
    for g in gates:
        g.sel.zero_()
        if g.kind not in kinds:
            continue
        if g.kind in ("qk", "vo"):  # per head, the same count in every head
            w = g.size // g.heads
            k = 1 + int(torch.randint(0, max(w - 1, 1), (1,), generator=g_))
            g.sel.copy_(torch.cat([torch.randperm(w, generator=g_) < k for _ in range(g.heads)]))
        else:
            sel = torch.rand(g.size, generator=g_) < 0.4
            sel[int(torch.randint(0, g.size, (1,), generator=g_))] = True
            if g.kind == "emb":
                sel[0] = False  # keep at least one residual dim
            g.sel.copy_(sel)
    if extremes:
        byname = {g.name: g for g in gates}
        if "qk" in kinds:  # every q·k dim of a self- and of a cross-attention module
            byname["encoder.layers.0.self_attn_qk_c"].sel.fill_(True)
            byname["decoder.layers.1.encoder_attn_qk_c"].sel.fill_(True)
            byname["decoder.layers.0.self_attn_qk_c"].sel.fill_(True)
        if "fc" in kinds:  # a whole FFN on each side
            byname["decoder.layers.1.fc_c"].sel.fill_(True)
            byname["encoder.layers.1.fc_c"].sel.fill_(True)
        if "vo" in kinds:
            byname["decoder.layers.0.encoder_attn_vo_c"].sel.fill_(True)
    for g in gates:
        g.c.copy_((~g.sel).float())


def _gated_and_sliced(weighted, kinds, tied=True, device="cpu"):
    model, task = build(weighted_layernorm=weighted, share_decoder_input_output_embed=tied)
    randomize(model)
    model.to(device).eval()
    _select(model, kinds)
    model.set_gating(True)
    sliced = copy_model(model)
    slice_selected(sliced)
    sliced.set_gating(False)
    return model, sliced, task


def _incremental(model, src, lengths, prev):
    enc = model.encoder(src, lengths)
    state = {}
    outs = []
    for t in range(prev.size(1)):
        out, _ = model.decoder(prev[:, : t + 1], encoder_out=enc, incremental_state=state)
        outs.append(out)
    return torch.cat(outs, dim=1)


KIND_SETS = [("emb",), ("fc",), ("qk",), ("vo",), ("emb", "fc", "qk", "vo")]


@pytest.mark.parametrize("weighted", [False, True], ids=["plain-ln", "weighted-ln"])
@pytest.mark.parametrize("kinds", KIND_SETS, ids=["+".join(k) for k in KIND_SETS])
def test_gated_equals_sliced(weighted, kinds, device):
    model, sliced, task = _gated_and_sliced(weighted, kinds, device=device)
    assert sum(p.numel() for p in sliced.parameters()) < sum(p.numel() for p in model.parameters())
    src, lengths, prev = (t.to(device) for t in batch(task))
    with torch.no_grad():
        full_gated = model(src, lengths, prev)[0]
        full_sliced = sliced(src, lengths, prev)[0]
        # incremental decoding without padding in the decoder input (as in generation)
        prev_np = prev[:1]
        inc_gated = _incremental(model, src[:1], lengths[:1], prev_np)
        inc_sliced = _incremental(sliced, src[:1], lengths[:1], prev_np)
    mask = prev.ne(task.target_dictionary.pad())
    assert torch.allclose(full_gated[mask], full_sliced[mask], atol=TOL, rtol=0)
    assert torch.allclose(inc_gated, inc_sliced, atol=TOL, rtol=0)
    assert torch.allclose(inc_sliced, full_sliced[:1], atol=TOL, rtol=0)
    assert full_gated.abs().max() > 0.1  # the comparison is not between zeros


def test_untied_output_projection(device):
    model, sliced, task = _gated_and_sliced(True, ("emb", "fc", "qk", "vo"), tied=False, device=device)
    assert sliced.decoder.output_projection.weight is not sliced.decoder.embed_tokens.weight
    assert sliced.decoder.output_projection.weight.size(1) == sliced.decoder.embed_tokens.weight.size(1)
    src, lengths, prev = (t.to(device) for t in batch(task))
    with torch.no_grad():
        a, b = model(src, lengths, prev)[0], sliced(src, lengths, prev)[0]
    mask = prev.ne(task.target_dictionary.pad())
    assert torch.allclose(a[mask], b[mask], atol=TOL, rtol=0)


def test_extreme_cases_really_present():
    _, sliced, _ = _gated_and_sliced(False, ("emb", "fc", "qk", "vo"))
    assert sliced.encoder.layers[0].self_attn.q_proj.weight.size(0) == 0
    assert sliced.decoder.layers[1].encoder_attn.k_proj.weight.size(0) == 0
    assert sliced.decoder.layers[1].fc1.weight.size(0) == 0
    assert sliced.decoder.layers[1].fc2.bias.abs().sum() > 0  # the FFN bias survives
    assert sliced.decoder.layers[0].encoder_attn.v_proj.weight.size(0) == 0
    # the tied output projection followed the decoder embedding
    assert sliced.decoder.output_projection.weight is sliced.decoder.embed_tokens.weight


def test_qk_all_pruned_respects_masks(device):
    """With no q·k dims, attention is uniform over the allowed keys only: a padded sentence gives
    what it gives alone, and a future target token does not change earlier outputs."""
    model, sliced, task = _gated_and_sliced(False, ("qk",), device=device)
    pad = task.source_dictionary.pad()
    src, lengths, prev = (t.to(device) for t in batch(task))
    assert src[2, 0] == pad  # row 2 is left-padded
    with torch.no_grad():
        batched = sliced(src, lengths, prev)[0]
        n_pad = int(src[2].eq(pad).sum())
        m = int(prev[2].ne(pad).sum())
        alone = sliced(src[2:3, n_pad:], lengths[2:3], prev[2:3, :m])[0]
        prev2 = prev.clone()
        prev2[0, -1] = 7 if prev[0, -1] != 7 else 8
        changed = sliced(src, lengths, prev2)[0]
    assert torch.allclose(batched[2, :m], alone[0], atol=TOL, rtol=0)
    assert torch.allclose(batched[0, :-1], changed[0, :-1], atol=TOL, rtol=0)
    assert not torch.allclose(batched[0, -1], changed[0, -1], atol=TOL, rtol=0)


def test_ungated_model_is_fairseq_transformer(device):
    """Gates off and nothing pruned, the srp model computes what fairseq's transformer computes."""
    from user_dir.srp.stock_transformer import stock_transformer_like

    model, task = build(share_decoder_input_output_embed=True, dropout=0.0)
    randomize(model)
    model.eval()
    ref = stock_transformer_like(model, task, dropout=0.0, max_source_positions=64, max_target_positions=64)
    model, ref = model.to(device), ref.to(device)
    src, lengths, prev = (t.to(device) for t in batch(task))
    with torch.no_grad():
        ours = model(src, lengths, prev)[0]
        theirs = ref(src, lengths, prev)[0]
    mask = prev.ne(task.target_dictionary.pad())
    assert torch.allclose(ours[mask], theirs[mask], atol=TOL, rtol=0)


def test_pruned_model_rebuilds_from_its_config_and_state(device):
    """Shapes in the config + plain tensors in the state dict are enough to rebuild a pruned model."""
    from argparse import Namespace

    from user_dir.srp.model import SRPModel

    _, sliced, task = _gated_and_sliced(True, ("emb", "fc", "qk", "vo"), device=device)
    cfg = Namespace(**vars(sliced.cfg))
    rebuilt = SRPModel.build_model(cfg, task)
    rebuilt.load_state_dict(sliced.state_dict(), strict=True)
    rebuilt.to(device).eval()
    src, lengths, prev = (t.to(device) for t in batch(task))
    with torch.no_grad():
        assert torch.equal(rebuilt(src, lengths, prev)[0], sliced(src, lengths, prev)[0])
    for v in sliced.state_dict().values():
        assert torch.is_tensor(v)
