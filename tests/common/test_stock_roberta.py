"""A RoBERTa fine-tuned by stock fairseq (``--arch roberta_base``, own head name) through every
encoder method, each result scored by stock fairseq-validate; and class counts read from the data."""
import json
import re
import shutil

import pytest
import torch

from tests.common.encoder_fixtures import build_tiny_encoder
from tests.conftest import REPO, run_cli

HEAD = "my_head"


@pytest.fixture(scope="module")
def stock(tmp_path_factory):
    """A tiny encoder + data, and a checkpoint fine-tuned from it by stock fairseq's roberta_base."""
    enc = build_tiny_encoder(tmp_path_factory.mktemp("stock_roberta"))
    save = enc.root / "stock"
    run_cli(["fairseq-train", *enc.train_args(save, max_update=6, arch="roberta_base",
                                               extra=["--classification-head-name", HEAD])])
    return enc, save / "checkpoint_last.pt"


def _validate(enc, ckpt, extra=()):
    log = run_cli(["fairseq-validate", *enc.validate_args(ckpt, extra=extra)]).stdout
    m = re.search(r"valid on 'test' subset .*?accuracy ([0-9.]+)", log)
    assert m, log[-3000:]
    return float(m.group(1))


def _env(enc, **extra):
    env = {"DATA": str(enc.data_dir), "THREADS": "1", "MAX_POSITIONS": str(enc.shape["positions"]),
           "BATCH": "16", "VALIDATE": "0", **extra}
    return ["env", *(f"{k}={v}" for k, v in env.items())]


def test_info_flags_and_prunable_equivalence(stock):
    from fairseq import checkpoint_utils

    import user_dir  # noqa: F401
    from user_dir.common.checkpoint_info import load_as_prunable, read_info, restore_flags
    from user_dir.common.prunable_roberta import PrunableRobertaModel

    enc, ckpt = stock
    info = read_info(str(ckpt))
    assert (info.family, info.head, info.heads, info.layernorm_eps) == ("roberta", HEAD, {HEAD: 2}, 1e-5)
    flags = restore_flags(info)
    assert flags[flags.index("--classification-head-name") + 1] == HEAD
    assert flags[flags.index("--encoder-layers") + 1] == str(enc.shape["layers"])

    stock_models, _, task = checkpoint_utils.load_model_ensemble_and_task(
        [str(ckpt)], arg_overrides={"data": str(enc.data_dir)})
    prunable_models, cfg, _ = load_as_prunable(str(ckpt), str(enc.data_dir))
    assert type(stock_models[0]).__name__ == "RobertaModel"
    assert isinstance(prunable_models[0], PrunableRobertaModel)
    assert cfg.criterion.classification_head_name == HEAD
    task.load_dataset("test")
    sample = task.dataset("test").collater([task.dataset("test")[i] for i in range(8)])
    tokens = sample["net_input"]["src_tokens"]
    with torch.no_grad():
        a = stock_models[0].eval()(tokens, features_only=True, classification_head_name=HEAD)[0]
        b = prunable_models[0].eval()(tokens, features_only=True, classification_head_name=HEAD)[0]
    assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


@pytest.mark.integration
def test_kprune_on_stock_roberta(stock, tmp_path):
    enc, ckpt = stock
    out = tmp_path / "kprune"
    run_cli(["fairseq-kprune", enc.data_dir, "--user-dir", REPO / "user_dir", "--path", ckpt,
             "--constraint", "0.5", "--num-tokens", "2000", "--save-dir", out, "--cpu", "--no-progress-bar"])
    log = json.loads((out / "kprune_log.json").read_text())
    assert log["flops_after"] <= 0.5 * log["flops_before"] + 1e-6
    assert 0 <= _validate(enc, out / "checkpoint_pruned.pt") <= 100


@pytest.mark.integration
def test_ltp_on_stock_roberta(stock, tmp_path):
    enc, ckpt = stock
    soft = tmp_path / "soft"
    run_cli([*_env(enc, RESTORE=ckpt, SAVE_DIR=soft, EPOCHS=1), "bash", "scripts/ltp/soft.sh"])
    cfg = torch.load(soft / "checkpoint_last.pt", weights_only=False)["cfg"]
    assert cfg["criterion"]["classification_head_name"] == HEAD and cfg["task"]["num_classes"] == 2
    assert 0 <= _validate(enc, soft / "checkpoint_last.pt") <= 100


@pytest.mark.integration
def test_trbert_on_stock_roberta(stock, tmp_path):
    enc, ckpt = stock
    out = tmp_path / "trbert"
    base = _env(enc, FINETUNED=ckpt, OUT=out, REDUCE_LAYERS="1", SCORE_LAYER="2", BATCH="8", UPDATE_FREQ="1")
    run_cli([*base, "bash", "scripts/trbert/scores.sh"])
    run_cli([*base, "MAX_UPDATE=3", "LR=1e-3", "ROLLOUTS=2", "bash", "scripts/trbert/rl.sh"])
    assert 0 <= _validate(enc, out / "rl" / "checkpoint_last.pt") <= 100


@pytest.mark.integration
def test_class_count_comes_from_the_data(stock, tmp_path):
    enc, ckpt = stock
    # a NUM_CLASSES that disagrees with label/dict.txt: refused before fairseq starts
    proc = run_cli([*_env(enc, RESTORE=ckpt, SAVE_DIR=tmp_path / "soft", NUM_CLASSES=3), "bash",
                    "scripts/ltp/soft.sh"], check=False)
    assert proc.returncode == 2
    assert "NUM_CLASSES=3 disagrees with" in proc.stdout and "2 classes (0, 1)" in proc.stdout
    assert not (tmp_path / "soft").exists()
    # bare fairseq-train with a prunable architecture: a clear error at model build, no crash.pt
    args = enc.train_args(tmp_path / "ft", max_update=2)
    args[args.index("--num-classes") + 1] = "3"
    proc = run_cli(["fairseq-train", *args], check=False)
    assert proc.returncode != 0
    assert "--num-classes=3 (the model's classification head) does not match" in proc.stdout
    assert not (tmp_path / "ft" / "crash.pt").exists() and not (tmp_path / "ft" / "checkpoint_last.pt").exists()
    # the checkpoint's head against another label set, before any training step
    three = tmp_path / "three"
    shutil.copytree(enc.data_dir, three)
    (three / "label" / "dict.txt").write_text("0 10\n1 10\n2 10\n")
    proc = run_cli([*_env(enc, DATA=three, RESTORE=ckpt, SAVE_DIR=tmp_path / "soft3"), "bash",
                    "scripts/ltp/soft.sh"], check=False)
    assert proc.returncode == 2 and f"head '{HEAD}' predicts 2 classes" in proc.stdout, proc.stdout[-2000:]
    assert not (tmp_path / "soft3" / "checkpoint_last.pt").exists()
