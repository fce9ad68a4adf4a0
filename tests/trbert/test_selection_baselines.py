"""The inference-time selection modes behind TR-BERT's baselines at the same kept ratio:
``--trbert-select policy_topk`` (the policy-initialisation stage's residual-strategy selection,
without RL) and ``attention_topk`` (top-k by received attention, no policy at all)."""
import json

import pytest
import torch

from tests.common.encoder_fixtures import build_tiny_encoder
from tests.trbert.helpers import HEAD, build, random_batch, tiny_dictionary, tiny_trbert
from user_dir.bench.sentence import SentenceModel, forward_with_cost, parse_spec
from user_dir.common.prunable_encoder import PrunableTransformerEncoder
from user_dir.trbert.flops import layer_macs, policy_macs
from user_dir.trbert.rollouts import ReductionControl

LENGTHS = [40, 7, 33, 12, 25, 40, 5, 18, 29, 9, 38, 14, 21, 36, 11, 27]


def _model(select="policy", ratios=None, seed=0, **kw):
    model = tiny_trbert(tiny_dictionary(), seed=seed, trbert_select=select, trbert_keep_ratios=ratios, **kw)
    return model.eval()


def _run(model, tokens):
    control = ReductionControl("greedy")
    logits, _ = model(tokens, classification_head_name=HEAD, reduction=control)
    return logits, control


def _kept_positions(point, row):
    """Input positions of the real tokens that leave a reduction point, in order."""
    return point.positions[row][point.keep[row]].tolist()


def _received_by_hand(layer, x):
    """Σ_heads Σ_queries softmax(q k^T / sqrt(d_h)) of one unpadded example x (T, C), from the weights."""
    attn = layer.self_attn
    heads, dh = attn.num_heads, attn.head_dim
    q = (x @ attn.q_proj.weight.T + attn.q_proj.bias).view(-1, heads, dh).transpose(0, 1)
    k = (x @ attn.k_proj.weight.T + attn.k_proj.bias).view(-1, heads, dh).transpose(0, 1)
    probs = torch.softmax(q @ k.transpose(1, 2) / dh ** 0.5, dim=-1)  # (H, T_query, T_key)
    return probs.sum(dim=(0, 1))


def test_attention_topk_is_top_k_by_received_attention_computed_by_hand():
    ratios = [0.5, 0.4]
    model = _model("attention_topk", "0.5,0.4", seed=1)
    d = tiny_dictionary()
    tokens = random_batch(d, [30, 22, 9, 17], seed=3)
    logits, control = _run(model, tokens)
    enc = model.sentence_encoder
    assert [p.layer for p in control.points] == [1, 2] and all(p.logits is None for p in control.points)
    for row, n in enumerate([30, 22, 9, 17]):
        # the encoder by hand, one example, no padding: layer 0, top-k, layer 1, top-k, layer 2
        x, _ = enc.forward_embedding(tokens[row:row + 1, :n])
        positions = torch.arange(n)
        x_before = x
        for idx, layer in enumerate(enc.layers):
            if idx in (1, 2):  # reduction before layer idx, scored by layer idx - 1's attention
                received = _received_by_hand(enc.layers[idx - 1], x_before[0])
                trace = control.points[idx - 1]
                live = trace.received[row][:positions.numel()]
                assert torch.allclose(live, received, atol=1e-5)
                active = received[1:]  # <s> (slot 0) is not ranked: it always stays
                k = round(ratios[idx - 1] * active.numel())
                top = 1 + torch.sort(active, descending=True, stable=True).indices[:k]
                keep = torch.cat([torch.tensor([0]), top.sort().values])
                x, positions = x[:, keep], positions[keep]
                assert _kept_positions(trace, row) == positions.tolist()
            x_before = x
            x, _ = PrunableTransformerEncoder.forward_layer(enc, layer, x, torch.zeros(1, x.size(1), dtype=torch.bool))
        ref = model.classification_heads[HEAD](x)
        assert torch.allclose(logits[row], ref[0], atol=1e-5)


@pytest.mark.parametrize("select", ["policy_topk", "attention_topk"])
def test_every_example_keeps_round_r_n_of_its_active_tokens(select):
    ratios = [0.37, 0.55]
    model = _model(select, ratios, seed=2)
    tokens = random_batch(tiny_dictionary(), LENGTHS, seed=4)
    _, control = _run(model, tokens)
    n = torch.tensor(LENGTHS) - 1  # active at the first point: every real token but <s>
    for point, r in zip(control.points, ratios):
        assert torch.equal(point.active.sum(1), n)
        expected = torch.tensor([round(r * int(a)) for a in n])
        assert torch.equal(point.kept - 1, expected)
        assert point.keep[:, 0].all()  # <s> always stays
        n = point.kept - 1
    assert len(set(control.points[1].kept.tolist())) > 3


@pytest.mark.parametrize("select", ["policy_topk", "attention_topk"])  # policy: test_model.py
def test_batch_of_16_equals_one_at_a_time(select):
    model = _model(select, "0.6,0.5", seed=3)
    tokens = random_batch(tiny_dictionary(), LENGTHS, seed=2)
    logits, control = _run(model, tokens)
    for row, n in enumerate(LENGTHS):
        one_logits, one = _run(model, tokens[row:row + 1, :n])
        assert torch.equal(one.kept_counts()[0], control.kept_counts()[row])
        for p_one, p_batch in zip(one.points, control.points):
            assert _kept_positions(p_one, 0) == _kept_positions(p_batch, row)
        assert torch.allclose(one_logits[0], logits[row], atol=1e-5)


@pytest.mark.parametrize("select", ["policy_topk", "attention_topk"])
def test_keep_ratios_of_one_reproduce_the_unreduced_model(select):
    plain = build("prunable_roberta", tiny_dictionary()).eval()
    model = _model(select, "1.0,1.0")
    model.load_state_dict(plain.state_dict(), strict=True)  # the policies are filled in
    tokens = random_batch(tiny_dictionary(), LENGTHS[:6], seed=5)
    logits, control = _run(model, tokens)
    assert all(torch.equal(p.kept, p.entering) for p in control.points)
    assert torch.allclose(logits, plain(tokens, classification_head_name=HEAD)[0], atol=1e-5)


def test_policy_topk_at_the_policys_own_count_reproduces_policy_mode():
    model = _model("policy", seed=4)
    tokens = random_batch(tiny_dictionary(), LENGTHS[:8], seed=6)
    enc = model.sentence_encoder
    for row, n in enumerate(LENGTHS[:8]):
        one = tokens[row:row + 1, :n]
        enc.select, enc.keep_ratios = "policy", None
        ref_logits, ref = _run(model, one)
        ratios = [float(p.kept[0] - 1) / float(p.active.sum()) if p.active.any() else 1.0 for p in ref.points]
        enc.select, enc.keep_ratios = "policy_topk", ratios
        logits, control = _run(model, one)
        for p, q in zip(control.points, ref.points):
            assert _kept_positions(p, 0) == _kept_positions(q, 0)
        assert torch.allclose(logits, ref_logits, atol=1e-6)


def test_flops_count_the_policies_only_where_they_run():
    d = tiny_dictionary()
    tokens = random_batch(d, [20, 11, 6], seed=7)
    macs = {}
    for select in ("policy_topk", "attention_topk"):
        model = _model(select, "0.5,0.5", seed=5)
        sm = SentenceModel(select, "-", model, task=None, head=HEAD)
        _, cost, kept = forward_with_cost(sm, tokens)
        layers = model.layers
        n0 = torch.tensor([20.0, 11.0, 6.0], dtype=torch.float64)
        n1, n2 = kept["kept_l1"], kept["kept_l2"]
        expected = layer_macs(n0, layers[0]) + layer_macs(n1, layers[1]) + layer_macs(n2, layers[2])
        if select == "policy_topk":
            policies = model.sentence_encoder.policies
            expected = expected + policy_macs(n0, policies[0]) + policy_macs(n1, policies[1])
        assert torch.allclose(cost, expected)
        macs[select] = cost
    assert (macs["policy_topk"] > macs["attention_topk"]).all()


def test_training_passes_still_sample_the_policies():
    model = _model("attention_topk", "0.5,0.5").train()
    tokens = random_batch(tiny_dictionary(), [20, 11, 6], seed=7)
    _, extra = model(tokens, classification_head_name=HEAD)
    assert extra["trbert"].mode == "sample" and all(p.logits is not None for p in extra["trbert"].points)


@pytest.mark.parametrize("overrides, message", [
    (dict(trbert_select="topk"), "--trbert-select 'topk' is unknown; allowed: policy, policy_topk, attention_topk"),
    (dict(trbert_select="attention_topk"), "--trbert-select attention_topk needs --trbert-keep-ratios: one kept "
                                           "ratio per reduction point (2, before layers [1, 2])"),
    (dict(trbert_select="policy_topk", trbert_keep_ratios="0.5"), "--trbert-keep-ratios 0.5: needs one ratio per "
                                                                  "reduction point (2, before layers [1, 2]), got 1"),
    (dict(trbert_select="policy_topk", trbert_keep_ratios="1.5,0.2"), "--trbert-keep-ratios 1.5,0.2: ratios must "
                                                                      "be in [0, 1]"),
    (dict(trbert_select="attention_topk", trbert_keep_ratios="a,b"), "--trbert-keep-ratios must be comma-separated"),
])
def test_bad_selection_options_name_the_option(overrides, message):
    with pytest.raises(ValueError) as err:
        build("trbert_roberta", **overrides)
    assert message in str(err.value)


def test_keep_ratios_accept_the_override_forms():
    for value in ("0.5,0.25", [0.5, 0.25], (0.5, 0.25), " 0.5, 0.25"):
        assert build("trbert_roberta", trbert_select="policy_topk",
                     trbert_keep_ratios=value).sentence_encoder.keep_ratios == [0.5, 0.25]
    # the harness's model specs: a quoted value keeps its commas
    _, _, overrides = parse_spec("m=ckpt.pt:trbert_select=attention_topk,trbert_keep_ratios='0.5,0.25'")
    assert overrides == {"trbert_select": "attention_topk", "trbert_keep_ratios": "0.5,0.25"}


@pytest.mark.integration
def test_harness_measures_a_fine_tuned_model_with_attention_topk(tmp_path, cli):
    """A fine-tuned prunable_roberta checkpoint, rebuilt as trbert_roberta_minilm (no policies in
    it) with attention_topk, through python -m user_dir.bench.compare and user_dir.trbert.keep_ratios."""
    enc = build_tiny_encoder(tmp_path / "enc", layers=4)  # reduction points 1 and 2
    cli(["fairseq-train", *enc.train_args(tmp_path / "ft", max_update=6)])
    ft = tmp_path / "ft" / "checkpoint_best.pt"
    attn = f"{ft}:arch=trbert_roberta_minilm,trbert_select=attention_topk"
    out = tmp_path / "measure.json"
    cli(["python", "-m", "user_dir.bench.compare", enc.data_dir, "--model", f"base={ft}",
         "--model", f"half={attn},trbert_keep_ratios='0.5,0.5'",
         "--model", f"all={attn},trbert_keep_ratios='1.0,1.0'", "--splits", "valid,test", "--batch-sizes", "1,16",
         "--timing-limit", "1:4,16:4", "--rounds", "1", "--threads", "1", "--out", out])
    models = json.loads(out.read_text())["models"]
    for split in ("valid", "test"):
        base, half, full = models["base"][split], models["half"][split], models["all"][split]
        # keeping everything is the fine-tuned model, and no policy cost is counted
        assert full["accuracy"] == base["accuracy"] and full["relative_flops"] == pytest.approx(1.0, abs=1e-12)
        assert full["kept_l1"] == full["kept_l2"] == 1.0
        assert half["relative_flops"] < 0.75 and 0.4 < half["kept_l1"] < 0.65 and half["kept_l2"] < half["kept_l1"]
    assert models["half"]["overrides"]["trbert_keep_ratios"] == "0.5,0.5"
    assert models["half"]["b1"]["throughput"]["median"] > 0 and models["half"]["b16"]["throughput"]["median"] > 0

    # the kept ratios of a model, pooled over dev+test: ~0.5 at each point, round(0.5 n) per example
    ratios = tmp_path / "ratios.json"
    proc = cli(["python", "-m", "user_dir.trbert.keep_ratios", enc.data_dir, "--model", f"half={attn},"
                "trbert_keep_ratios='0.5,0.5'", "--splits", "valid,test", "--out", ratios])
    got = json.loads(ratios.read_text())["models"]["half"]
    assert got["examples"] == 64 and got["reduce_layers"] == [1, 2]
    assert all(abs(r - 0.5) < 0.05 for r in got["keep_ratios"]) and "half 0." in proc.stdout
    assert len(got["padding_b32"]) == 2 and all(0.0 <= x < 1.0 for x in got["padding_b32"])

    # paired per-example correctness: the harness's accuracies, and keeping every token = the base
    paired = tmp_path / "paired.json"
    cli(["python", "-m", "user_dir.bench.paired_accuracy", enc.data_dir, "--model", f"base={ft}",
         "--model", f"half={attn},trbert_keep_ratios='0.5,0.5'", "--model", f"all={attn},trbert_keep_ratios='1.0,1.0'",
         "--pair", "half:base", "--pair", "all:base", "--out", paired])
    got = json.loads(paired.read_text())
    for name in ("base", "half", "all"):
        pooled = sum(models[name][s]["accuracy"] * models[name][s]["examples"] for s in ("valid", "test")) / 64
        assert got["accuracy"][name] == pytest.approx(pooled, abs=1e-9) and len(got["correct"][name]) == 64
    same = got["pairs"][1]
    assert (same["a"], same["b"], same["a_only"], same["b_only"], same["p"]) == ("all", "base", 0, 0, 1.0)
    half = got["pairs"][0]
    assert half["a_correct"] - half["b_correct"] == half["a_only"] - half["b_only"] and 0 < half["p"] <= 1
    bad = cli(["python", "-m", "user_dir.bench.paired_accuracy", enc.data_dir, "--model", f"base={ft}",
               "--pair", "base:other"], check=False)
    assert bad.returncode != 0 and "--pair 'base:other'" in bad.stdout

    bad = cli(["python", "-m", "user_dir.bench.compare", enc.data_dir, "--model", f"base={ft}",
               "--model", f"x={ft}:arch=trbert_roberta_minilm,trbert_select=attention_topk", "--splits", "test",
               "--batch-sizes", ""], check=False)
    assert bad.returncode != 0 and "--trbert-select attention_topk needs --trbert-keep-ratios" in bad.stdout


def test_keep_ratios_report_the_padding_of_the_batches_by_hand():
    """Keeping every token: the batch after each point is as padded as the input batch, i.e.
    1 − Σ n / Σ (batch size × longest), here over two batches."""
    from user_dir.trbert.keep_ratios import batch_padding, kept_and_active
    d = tiny_dictionary()
    samples = [{"net_input": {"src_tokens": random_batch(d, lengths, seed=2)}, "nsentences": len(lengths)}
               for lengths in ([20, 11, 6], [8, 8])]
    sm = SentenceModel("all", "-", _model("policy_topk", "1.0,1.0"), task=None, head=HEAD)
    got = kept_and_active(sm, samples)
    assert got["examples"] == 5 and got["slots"] == [3 * 20 + 2 * 8] * 2
    assert got["kept"] == [20 + 11 + 6 + 8 + 8 - 5] * 2  # real tokens except <s>
    assert batch_padding(got) == [pytest.approx(1 - 53 / 76)] * 2
