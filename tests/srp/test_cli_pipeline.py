"""The original's pipeline through the stock fairseq tools on tiny data: base training, stage 1 and
stage 2 with --srp, fine-tuning, fairseq-generate; the final parameter count matches the rate."""
import re
from argparse import Namespace

import pytest
import torch

from tests.conftest import USER_DIR, run_cli
from tests.srp.conftest import train_args
from user_dir.srp.compression_rate import kept_fraction, parameter_split, target_counts
from user_dir.srp.shapes import ModelShapes

RATE = 0.5


def _load(path):
    import user_dir  # noqa: F401  (allowlists what fairseq checkpoints hold)

    return torch.load(path, map_location="cpu")


def _n_params(state):
    model = state["model"]
    names = [k for k in model if k.endswith(("weight", "bias")) and "output_projection" not in k]
    return sum(model[k].numel() for k in names)


def _shapes(state):
    cfg = state["cfg"]["model"]
    return ModelShapes.from_json(cfg["srp_shapes"])


@pytest.mark.integration
def test_two_stage_pipeline(corpus, tmp_path):
    base, s1, s2, ft = (tmp_path / n for n in ("base", "stage1", "stage2", "finetune"))
    run_cli(train_args(corpus, base, "--max-epoch", 2))
    prune = ["--srp", "--compression-rate", RATE, "--pruning-period", 2, "--decreasing", "sa",
             "--weighted-layernorm", "--max-epoch", 3]
    out1 = run_cli(train_args(corpus, s1, *prune, "--pruning-stage", 1,
                              "--pretrained-model", base / "checkpoint_last.pt")).stdout
    assert "kd_loss" in out1 and "sliced the selected groups" in out1
    out2 = run_cli(train_args(corpus, s2, *prune, "--pruning-stage", 2,
                              "--pretrained-model", s1 / "checkpoint_last.pt")).stdout
    assert "sliced the selected groups" in out2
    # fine-tuning: stock --restore-file of the pruned checkpoint (the model adopts its shapes)
    run_cli(train_args(corpus, ft, "--max-epoch", 1, "--restore-file", s2 / "checkpoint_last.pt",
                       "--reset-optimizer", "--reset-dataloader", "--reset-meters", "--weighted-layernorm"))

    base_state, s1_state, final = (_load(p / "checkpoint_last.pt") for p in (base, s1, ft))
    original = ModelShapes.from_arch(Namespace(**base_state["cfg"]["model"]))
    vocab = [base_state["model"][f"{s}.embed_tokens.weight"].size(0) for s in ("encoder", "decoder")]
    counts = target_counts(original, kept_fraction(RATE, parameter_split(original, *vocab, True)), 1, 1)
    # stage 1 cut embedding dims only, stage 2 the rest, to the same targets
    shapes1 = _shapes(s1_state)
    assert shapes1.encoder.embed_dim == original.encoder.embed_dim - counts.emb["encoder"]
    assert all(layer.ffn == 64 and layer.self_qk == 16 for layer in shapes1.encoder.layers)
    shapes = _shapes(final)
    for side in ("encoder", "decoder"):
        s, o = getattr(shapes, side), getattr(original, side)
        assert s.embed_dim == o.embed_dim - counts.emb[side]
        per_head = o.embed_dim // o.heads - counts.head[side]
        for layer in s.layers:
            assert layer.self_qk == layer.self_vo == per_head
            assert layer.cross_qk in (None, per_head)
    total_ffn = sum(layer.ffn for s in (shapes.encoder, shapes.decoder) for layer in s.layers)
    assert total_ffn == 4 * 64 - counts.fc
    ratio = _n_params(final) / _n_params(base_state)
    assert abs(ratio - RATE) < 0.02, ratio
    assert final["model"]["encoder.embed_tokens.weight"].size(1) == shapes.encoder.embed_dim

    # the pruned checkpoint in stock fairseq-generate, with the srp task and with plain translation
    for task in ("srp_translation", "translation"):
        gen = run_cli(["fairseq-generate", corpus, "--user-dir", USER_DIR, "--task", task,
                       "--path", ft / "checkpoint_last.pt", "--gen-subset", "test", "--beam", 2,
                       "--batch-size", 16, "--remove-bpe", "--scoring", "sacrebleu", "--cpu"]).stdout
        assert re.search(r"BLEU = \d", gen), gen[-2000:]
        assert len(re.findall(r"^H-\d+", gen, flags=re.M)) == 24

    # the size report of scripts/srp/test.sh: parameters, FLOPs over the test pairs, fvcore agrees
    from user_dir.srp.report import report

    r = report(str(ft / "checkpoint_last.pt"), str(corpus), "test", fvcore=True)
    assert r["parameters"] == _n_params(final)
    assert r["fvcore_check"]["ours"] == r["fvcore_check"]["fvcore"] > 0
    base_r = report(str(base / "checkpoint_last.pt"), str(corpus), "test")
    assert 0.3 < r["flops_per_sentence"] / base_r["flops_per_sentence"] < 0.7
