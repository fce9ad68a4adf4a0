"""The composition Kprune then TR-BERT (issue: compose both structured and token pruning): TR-BERT's
scripts take a Kprune checkpoint (non-uniform heads and FFN widths per layer) as the fine-tuned
model, its residual scores, policy RL and joint stages run on it, and stock fairseq-validate scores
the result with the pruned shapes kept."""
import json
import re

import pytest
import torch

from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.integration


def _env(enc, **extra):
    env = {"DATA": str(enc.data_dir), "THREADS": "1", "MAX_POSITIONS": str(enc.shape["positions"]),
           "BATCH": "8", "UPDATE_FREQ": "1", "VALIDATE": "0", **extra}
    return ["env", *(f"{k}={v}" for k, v in env.items())]


def test_trbert_stages_on_a_kprune_model(tiny_encoder, tiny_classifier, tmp_path):
    enc = tiny_encoder
    pruned_dir = tmp_path / "kprune"
    run_cli(["fairseq-kprune", enc.data_dir, "--user-dir", REPO / "user_dir", "--path", tiny_classifier,
             "--constraint", "0.5", "--num-tokens", "2000", "--save-dir", pruned_dir, "--cpu", "--no-progress-bar"])
    pruned = pruned_dir / "checkpoint_pruned.pt"
    kept = json.loads((pruned_dir / "kprune_log.json").read_text())

    out = tmp_path / "trbert"
    base = _env(enc, FINETUNED=pruned, OUT=out, REDUCE_LAYERS="1", SCORE_LAYER="2")
    run_cli([*base, "bash", "scripts/trbert/scores.sh"])
    run_cli([*base, "MAX_UPDATE=3", "LR=1e-3", "ROLLOUTS=2", "bash", "scripts/trbert/rl.sh"])
    run_cli([*base, f"INIT_FROM={out / 'rl' / 'checkpoint_last.pt'}", f"TEACHER={pruned}", "KD=1",
             "MAX_UPDATE=2", "LR=1e-4", "ROLLOUTS=2", "bash", "scripts/trbert/joint.sh"])

    joint = out / "joint" / "checkpoint_last.pt"
    state = torch.load(joint, map_location="cpu", weights_only=False)
    before = torch.load(pruned, map_location="cpu", weights_only=False)["model"]
    for name, tensor in before.items():  # the Kprune shapes survive both TR-BERT stages
        if name.endswith(("self_attn.q_proj.weight", "fc1.weight")):
            assert state["model"][name].shape == tensor.shape, name
    assert any(k.endswith("fc1.weight") and v.shape[0] < enc.shape["ffn"] for k, v in before.items()), kept
    log = run_cli(["fairseq-validate", *enc.validate_args(joint)]).stdout
    accuracy = float(re.search(r"valid on 'test' subset .*?accuracy ([0-9.]+)", log).group(1))
    assert 0 <= accuracy <= 100
