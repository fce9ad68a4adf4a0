"""fairseq-compress-report on tiny models: one table, JSON and plot; bad input is refused early."""
import json

import pytest

from tests.common.encoder_fixtures import build_tiny_encoder

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    from tests.conftest import run_cli
    root = tmp_path_factory.mktemp("report")
    enc = build_tiny_encoder(root, layers=4)
    run_cli(["fairseq-train", *enc.train_args(root / "ft", max_update=6)])
    return enc, root / "ft" / "checkpoint_best.pt"


def test_table_json_and_plot_of_a_baseline_and_a_token_pruned_version(finetuned, tmp_path, cli):
    enc, ckpt = finetuned
    out = cli(["fairseq-compress-report", enc.data_dir, "--path", f"base={ckpt}",
               "--path", f"ltp={ckpt}:arch=ltp_roberta_minilm,final_token_threshold=0.05,masking_mode=hard",
               "--batch-sizes", "1,32", "--rounds", "1", "--max-examples", "8",
               "--json", tmp_path / "r.json", "--plot", tmp_path / "r.png"]).stdout
    lines = [l for l in out.splitlines() if l.startswith(("model", "base", "ltp"))]
    assert lines[0].split(" | ")[0].strip() == "model" and "speed-up b32" in lines[0]
    assert lines[1].startswith("base") and lines[2].startswith("ltp")
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert rows[0]["relative_flops"] == 1.0 and rows[0]["speedup_b1"] == 1.0
    assert 0 < rows[1]["relative_flops"] < 1  # the thresholds removed tokens
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, message", [
    (["--path", "missing.pt"], "--path: no such checkpoint file: missing.pt"),
    (["--batch-sizes", "1,x"], "--batch-sizes: comma-separated positive integers"),
    (["--threads", "0"], "--threads and --rounds must be at least 1"),
])
def test_bad_input_is_refused_before_loading(finetuned, cli, args, message):
    enc, ckpt = finetuned
    argv = ["fairseq-compress-report", enc.data_dir] + (args if "--path" in args else ["--path", ckpt] + args)
    proc = cli(argv, check=False)
    assert proc.returncode == 2 and message in proc.stdout


def test_missing_data_folder_is_named(finetuned, cli):
    _, ckpt = finetuned
    proc = cli(["fairseq-compress-report", "no/such/folder", "--path", ckpt], check=False)
    assert proc.returncode == 2 and "DATA: no such directory: no/such/folder" in proc.stdout
