"""fairseq-kprune --method kwon end to end on the tiny fine-tuned encoder of test_cli.py, then the
stock fairseq-validate on its output."""
import json
import re
import sys

import pytest
import torch

from tests.common.encoder_fixtures import REPO, tiny_encoder  # noqa: F401  (pytest fixture)
from tests.conftest import run_cli
from tests.kprune.test_cli import _accuracy, _model_cfg, finetuned  # noqa: F401  (pytest fixture)


@pytest.mark.integration
def test_kwon_prune_then_validate(tiny_encoder, finetuned, tmp_path):
    enc = tiny_encoder
    out = tmp_path / "kwon"
    proc = run_cli([sys.executable, "-m", "user_dir.kprune", str(enc.data_dir), "--user-dir", str(REPO / "user_dir"),
                    "--path", str(finetuned), "--method", "kwon", "--constraint", "0.5", "--cpu",
                    "--save-dir", str(out)])
    log = proc.stdout
    for line in (r"kwon fisher: mask gradients of \d+ examples", r"kwon search: keep \d+/8 heads and \d+/128 neurons",
                 r"mask-tuning teacher at constraint 0\.2929", r"layer 1 neurons: rearranged",
                 r"layer 1 ffn\s*: tuned", r"pruning time \(Kwon et al\.: fisher \+ search \+ rearrange \+ rescale\)"):
        assert re.search(line, log), line

    info = json.loads((out / "kprune_log.json").read_text())
    assert info["method"] == "kwon" and info["settings"]["method"] == "kwon"
    assert "lam_pred" not in info["settings"]  # Kprune's options do not apply
    assert info["flops_after"] <= 0.5 * info["flops_before"]
    assert set(info["stage_seconds"]) == {"fisher", "search", "rearrange", "rescale"}
    assert info["loop_seconds"] == pytest.approx(sum(info["stage_seconds"].values()))
    assert info["fisher_samples"] == info["examples"]  # one gradient per example of the sample
    assert info["masked_vs_sliced_max_abs_diff"] < 1e-4
    assert info["rescale"]["fits"]

    state = torch.load(out / "checkpoint_pruned.pt", weights_only=True)
    recorded = state["extra_state"]["kprune"]
    assert recorded["method"] == "kwon" and recorded["stage_seconds"] == info["stage_seconds"]
    assert _model_cfg(state)["encoder_layer_heads"] == ",".join(map(str, info["heads_after"]))
    assert _model_cfg(state)["encoder_layer_ffn_dims"] == ",".join(map(str, info["ffn_after"]))

    acc = _accuracy(run_cli(["fairseq-validate", *enc.validate_args(out / "checkpoint_pruned.pt")]).stdout)
    assert 0.0 <= acc <= 100.0
