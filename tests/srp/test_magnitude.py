"""The magnitude baseline (user_dir/srp/magnitude.py): which weights a group's norm covers, which
groups it removes, that it removes SRP's counts, that slicing is exact, and the CLI end to end."""
import json
import re
import subprocess
from argparse import Namespace

import pytest
import torch

from tests.conftest import REPO, USER_DIR, fairseq_env, run_cli
from tests.srp.helpers import FakeTask, batch, build, copy_model, randomize
from user_dir.srp import magnitude
from user_dir.srp.slicing import slice_selected

TOL = 1e-5


def _sq(t):
    return float(t.detach().double().pow(2).sum())


def test_norms_cover_exactly_the_groups_weights():
    """Every group's L2 norm, computed by hand from the module weights (not from the gate map)."""
    model, _ = build(share_decoder_input_output_embed=True)
    randomize(model)
    norms = magnitude.group_norms(model.gates(), "l2")
    enc, dec = model.encoder, model.decoder
    # encoder embedding dim j: its embedding column, the encoder's layer norms, every projection that
    # reads the encoder's residual stream (decoder cross-attention k, v included), every one that writes it
    j = 5
    total = _sq(enc.embed_tokens.weight[:, j])
    for layer in enc.layers:
        for ln in (layer.self_attn_layer_norm, layer.final_layer_norm):
            total += _sq(ln.weight[j]) + _sq(ln.bias[j])
        a = layer.self_attn
        total += sum(_sq(p.weight[:, j]) for p in (a.q_proj, a.k_proj, a.v_proj, layer.fc1))
        total += sum(_sq(p.weight[j, :]) + _sq(p.bias[j]) for p in (a.out_proj, layer.fc2))
    for layer in dec.layers:
        total += _sq(layer.encoder_attn.k_proj.weight[:, j]) + _sq(layer.encoder_attn.v_proj.weight[:, j])
    assert norms["encoder.embedding_c"][j].item() == pytest.approx(total ** 0.5, rel=1e-9)
    # decoder embedding dim j: the tied output projection is the embedding itself, counted once
    total = _sq(dec.embed_tokens.weight[:, j])
    for layer in dec.layers:
        for ln in (layer.self_attn_layer_norm, layer.encoder_attn_layer_norm, layer.final_layer_norm):
            total += _sq(ln.weight[j]) + _sq(ln.bias[j])
        s, x = layer.self_attn, layer.encoder_attn
        total += sum(_sq(p.weight[:, j]) for p in (s.q_proj, s.k_proj, s.v_proj, x.q_proj, layer.fc1))
        total += sum(_sq(p.weight[j, :]) + _sq(p.bias[j]) for p in (s.out_proj, x.out_proj, layer.fc2))
    assert norms["decoder.embedding_c"][j].item() == pytest.approx(total ** 0.5, rel=1e-9)
    # FFN neuron i: fc1 row and bias, fc2 column
    layer, i = dec.layers[1], 7
    total = _sq(layer.fc1.weight[i]) + _sq(layer.fc1.bias[i]) + _sq(layer.fc2.weight[:, i])
    assert norms["decoder.layers.1.fc_c"][i].item() == pytest.approx(total ** 0.5, rel=1e-9)
    # q·k dim: q and k rows and biases; v·o dim: v row and bias, out_proj column
    a, i = dec.layers[0].encoder_attn, 3
    total = _sq(a.q_proj.weight[i]) + _sq(a.q_proj.bias[i]) + _sq(a.k_proj.weight[i]) + _sq(a.k_proj.bias[i])
    assert norms["decoder.layers.0.encoder_attn_qk_c"][i].item() == pytest.approx(total ** 0.5, rel=1e-9)
    a = enc.layers[1].self_attn
    total = _sq(a.v_proj.weight[i]) + _sq(a.v_proj.bias[i]) + _sq(a.out_proj.weight[:, i])
    assert norms["encoder.layers.1.self_attn_vo_c"][i].item() == pytest.approx(total ** 0.5, rel=1e-9)
    # L1: the sum of absolute values of the same entries
    l1 = magnitude.group_norms(model.gates(), "l1")
    a = enc.layers[1].self_attn
    entries = (a.v_proj.weight[i], a.v_proj.bias[i], a.out_proj.weight[:, i])
    total = sum(float(t.detach().double().abs().sum()) for t in entries)
    assert l1["encoder.layers.1.self_attn_vo_c"][i].item() == pytest.approx(total, rel=1e-9)


def _zero_groups(model, chosen):
    """Zero every weight entry attached to the chosen groups ({gate name: [indices]})."""
    with torch.no_grad():
        for g in model.gates():
            for j in chosen.get(g.name, []):
                for param, dim in g.params:
                    param.select(dim, j).zero_()


def test_selection_picks_the_lowest_norms_at_srps_granularity():
    """A hand-made model whose chosen groups are all zero: exactly those are removed, FFN neurons
    chosen globally (unevenly over the layers), per-head dims chosen in every head."""
    model, _ = build(share_decoder_input_output_embed=True)
    randomize(model)
    counts = magnitude.srp_counts(model, 0.5)
    assert counts.emb == {"encoder": 10, "decoder": 10} and counts.head == {"encoder": 5, "decoder": 5}
    chosen = {"encoder.embedding_c": [0, 3, 4, 9, 11, 17, 20, 25, 30, 31],
              "decoder.embedding_c": list(range(2, 32, 3))}
    # FFN neurons (64 per layer): most from decoder layer 1, the rest spread unevenly
    fc = {"decoder.layers.1.fc_c": list(range(64)), "encoder.layers.0.fc_c": list(range(0, 30, 2))}
    rest = counts.fc - 64 - 15
    fc["decoder.layers.0.fc_c"] = list(range(rest))
    chosen.update(fc)
    # per-head dims: 2 heads of 16, 5 dims of each head, other positions in every module
    for g in model.gates():
        if g.kind in ("qk", "vo"):
            shift = sum(map(ord, g.name)) % 11
            chosen[g.name] = [h * 16 + (shift + k) % 16 for h in range(2) for k in range(5)]
    _zero_groups(model, chosen)
    removed = magnitude.select_by_magnitude(model, 0.5)
    for g in model.gates():
        expected = torch.zeros(g.size, dtype=torch.bool)
        expected[chosen.get(g.name, [])] = True
        assert torch.equal(g.sel, expected), g.name
    modules = 2 + 2 * 2  # encoder self-attention; decoder self- and cross-attention
    assert removed == {"emb": 20, "fc": counts.fc, "qk": 5 * 2 * modules, "vo": 5 * 2 * modules}


class _ScoringTask:
    """What SRP's controller needs to select (as scripts/bench/srp.py's paper-size section uses it)."""

    def __init__(self, task, samples):
        self.src_dict, self.tgt_dict = task.source_dictionary, task.target_dictionary
        self.model_cfg, self.epoch, self._samples = None, 1, samples

    def scoring_batches(self, _model):
        return self._samples

    def updates_per_epoch(self):
        return 1


def _srp_two_stages(model, task, rate):
    from user_dir.srp.criterion import SRPCriterion
    from user_dir.srp.phases import PruningController

    src, lengths, prev = batch(task)
    target = torch.cat([prev[:, 1:], prev[:, :1]], 1)
    sample = {"net_input": {"src_tokens": src, "src_lengths": lengths, "prev_output_tokens": prev},
              "target": target, "ntokens": int(target.ne(task.target_dictionary.pad()).sum())}
    crit = SRPCriterion(task, False, 0.1)
    for stage in (1, 2):
        cfg = Namespace(srp=True, pruning_stage=stage, pruning_period=1, pruning_iter=1, decreasing="sa",
                        warming_up=0, compression_rate=rate)
        PruningController(cfg, _ScoringTask(task, [sample]))._select(model, crit, 0)
        slice_selected(model)


@pytest.mark.parametrize("rate", [0.7, 0.5, 0.3])
@pytest.mark.parametrize("arch", ["srp_tiny", "srp_small"])
def test_counts_equal_srps(rate, arch):
    """The magnitude model has the shapes of SRP's two-stage model at the same rate, up to how the
    FFN neurons spread over the layers, and the same number of parameters."""
    task = FakeTask(n_src=300, n_tgt=200)
    srp, _ = build(arch, task=task, share_decoder_input_output_embed=True, weighted_layernorm=True)
    randomize(srp)
    mag = copy_model(srp)
    _srp_two_stages(srp, task, rate)
    removed = magnitude.prune(mag, rate)
    a, b = srp.current_shapes(), mag.current_shapes()
    for side in ("encoder", "decoder"):
        sa, sb = getattr(a, side), getattr(b, side)
        assert sa.embed_dim == sb.embed_dim < getattr(srp.cfg, f"{side}_embed_dim")
        for la, lb in zip(sa.layers, sb.layers):
            assert (la.self_qk, la.self_vo, la.cross_qk, la.cross_vo) == \
                (lb.self_qk, lb.self_vo, lb.cross_qk, lb.cross_vo)
    assert sum(l.ffn for s in (a.encoder, a.decoder) for l in s.layers) == \
        sum(l.ffn for s in (b.encoder, b.decoder) for l in s.layers)
    assert sum(p.numel() for p in srp.parameters()) == sum(p.numel() for p in mag.parameters())
    counts = magnitude.srp_counts(mag, rate)
    assert removed["emb"] == sum(counts.emb.values()) and removed["fc"] == counts.fc


@pytest.mark.parametrize("weighted", [False, True], ids=["plain-ln", "weighted-ln"])
def test_sliced_equals_gated(weighted):
    """The magnitude-pruned (sliced) model computes what the model with the selected connectivity
    at 0 computes: full sequence and incremental decoding, fp32."""
    from tests.srp.test_pruning_safety import _incremental

    model, task = build(share_decoder_input_output_embed=True, weighted_layernorm=weighted)
    randomize(model)
    model.eval()
    magnitude.select_by_magnitude(model, 0.5)
    sliced = copy_model(model)
    for g in model.gates():
        g.c.copy_((~g.sel).float())
    model.set_gating(True)
    slice_selected(sliced)
    assert sum(p.numel() for p in sliced.parameters()) < sum(p.numel() for p in model.parameters())
    src, lengths, prev = batch(task)
    with torch.no_grad():
        gated, cut = model(src, lengths, prev)[0], sliced(src, lengths, prev)[0]
        inc_gated = _incremental(model, src[:1], lengths[:1], prev[:1])
        inc_cut = _incremental(sliced, src[:1], lengths[:1], prev[:1])
    mask = prev.ne(task.target_dictionary.pad())
    assert torch.allclose(gated[mask], cut[mask], atol=TOL, rtol=0)
    assert torch.allclose(inc_gated, inc_cut, atol=TOL, rtol=0)
    assert gated.abs().max() > 0.1


def test_bad_input():
    model, _ = build()
    with pytest.raises(ValueError, match="compression-rate"):
        magnitude.select_by_magnitude(model, 1.5)
    with pytest.raises(ValueError, match="norm"):
        magnitude.group_norms(model.gates(), "l3")
    model.srp_progress[1] = 1
    with pytest.raises(ValueError, match="shrinking"):
        magnitude.prune(model, 0.5)


def test_cli_help():
    text = magnitude.get_parser().format_help()
    for option in ("--compression-rate", "--out", "--data", "--norm", "--weighted-layernorm", "--plain-layernorm"):
        assert option in text


@pytest.mark.integration
def test_cli_then_stock_generate_and_finetune(corpus, base_checkpoint, tmp_path):
    """The CLI on a tiny trained srp model; stock fairseq-generate on its output; finetune.sh on it,
    interrupted and continued from its checkpoint_last.pt."""
    out = tmp_path / "pruned.pt"
    proc = run_cli(["python", "-m", "user_dir.srp.magnitude", base_checkpoint, "--compression-rate", 0.5,
                    "--out", out, "--data", corpus])
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["removed"]["emb"] > 0 and summary["removed"]["fc"] > 0
    assert abs(summary["parameters_after"] / summary["parameters_before"] - 0.5) < 0.03
    import user_dir  # noqa: F401

    state = torch.load(out, map_location="cpu")
    assert state["cfg"]["model"]["srp_shapes"] and state["cfg"]["model"]["weighted_layernorm"] is True
    assert state["model"]["encoder.embed_tokens.weight"].size(1) == summary["shapes"]["encoder"]["embed_dim"]
    for task in ("srp_translation", "translation"):
        gen = run_cli(["fairseq-generate", corpus, "--user-dir", USER_DIR, "--task", task, "--path", out,
                       "--gen-subset", "test", "--beam", 2, "--batch-size", 16, "--remove-bpe",
                       "--scoring", "sacrebleu", "--cpu"]).stdout
        assert re.search(r"BLEU = \d", gen), gen[-2000:]
        assert len(re.findall(r"^H-\d+", gen, flags=re.M)) == 24

    save = tmp_path / "ft"
    env = {"DATA": str(corpus), "ARCH": "srp_tiny", "PRUNED": str(out), "SAVE_DIR": str(save), "EVAL_BLEU": "0",
           "MAX_TOKENS": "400", "THREADS": "1", "LR": "1e-3", "LOG_INTERVAL": "1"}

    def finetune(epochs):
        return subprocess.run(["bash", "scripts/srp/finetune.sh"], cwd=REPO, stdout=subprocess.PIPE,
                              env={**fairseq_env(), **env, "EPOCHS": str(epochs)}, stderr=subprocess.STDOUT,
                              text=True, timeout=600)

    first = finetune(1)
    assert first.returncode == 0, first.stdout[-4000:]
    updates = torch.load(save / "checkpoint_last.pt", map_location="cpu")["optimizer_history"][-1]["num_updates"]
    second = finetune(2)  # as a rerun of an interrupted 2-epoch run
    assert second.returncode == 0, second.stdout[-4000:]
    assert "checkpoint_last.pt exists" in second.stdout
    assert re.search(r"Loaded checkpoint .*ft/checkpoint_last\.pt \(epoch 2", second.stdout), second.stdout[-3000:]
    log = (save / "train.log").read_text()
    assert "epoch 001" in log and "epoch 002" in log  # the log kept both sittings
    final = torch.load(save / "checkpoint_last.pt", map_location="cpu")
    assert final["model"]["encoder.embed_tokens.weight"].shape == state["model"]["encoder.embed_tokens.weight"].shape
    # two epochs in all (fairseq records the epoch to come), not one epoch twice from PRUNED
    assert final["extra_state"]["train_iterator"]["epoch"] == 3
    assert final["optimizer_history"][-1]["num_updates"] == 2 * updates > 0


def test_checkpoints_with_bleu_meters_load(tmp_path):
    """--eval-bleu leaves numpy arrays (n-gram counts) in a checkpoint's meters: they must load with
    torch's default safe loader, as fairseq's own loaders call it."""
    import numpy as np

    import user_dir  # noqa: F401

    path = tmp_path / "c.pt"
    torch.save({"extra_state": {"metrics": {"valid": [("_bleu_counts", np.arange(4, dtype=np.int64))]}},
                "best": np.float64(3.5)}, path)
    state = torch.load(path, map_location="cpu")
    assert state["extra_state"]["metrics"]["valid"][0][1].tolist() == [0, 1, 2, 3]
