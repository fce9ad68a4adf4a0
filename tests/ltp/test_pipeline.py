"""The LTP pipeline with the stock fairseq CLIs on tiny data: a tiny random BERT converted to fairseq,
fine-tuned a few updates, LTP soft stage, hard stage, fairseq-validate; and the baselines' scripts."""
import json

import pytest
import torch

from tests.common.encoder_fixtures import build_tiny_encoder
from user_dir.ltp.validate_log import parse

pytestmark = pytest.mark.integration
LAYERS = 4  # top-k needs 4 (its first 3 layers keep everything)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("ltp_pipeline")
    enc = build_tiny_encoder(root, layers=LAYERS)
    return enc, root


@pytest.fixture(scope="module")
def finetuned(tiny):
    from tests.conftest import run_cli
    enc, root = tiny
    run_cli(["fairseq-train", *enc.train_args(root / "ft", max_update=6)])
    return root / "ft" / "checkpoint_best.pt"


def _script(enc, name, save_dir, **env):
    """argv running scripts/ltp/NAME with the tiny model's shape and small settings."""
    shape = " ".join(enc.model_args()[2:])  # the dimension flags (not --arch)
    base = dict(DATA=enc.data_dir, SAVE_DIR=save_dir, MAX_POSITIONS=enc.shape["positions"], BATCH=16,
                EPOCHS=1, LR="1e-3", THREADS=1, EXTRA_ARGS=f"{shape} --log-interval 1")
    base.update(env)
    return ["env", *[f"{k}={v}" for k, v in base.items()], "bash", f"scripts/ltp/{name}"]


def _delta(checkpoint):
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    return state["model"]["encoder.sentence_encoder.ltp_threshold_delta"], state["cfg"]["model"]


def test_soft_then_hard_then_validate(tiny, finetuned, cli):
    enc, root = tiny
    # the soft stage's own fairseq-validate is the same step as the hard stage's, tested below; it
    # trains in fp16 (fairseq's memory-efficient wrapper runs on CPU): the thresholds must still learn.
    # A small fixed loss scale: fairseq's CPU path crashes on an fp16 overflow (it calls .cuda())
    shape = " ".join(enc.model_args()[2:])
    fp16 = "--memory-efficient-fp16 --fp16-init-scale 4 --fp16-scale-window 1000"
    soft = cli(_script(enc, "soft.sh", root / "soft", RESTORE=finetuned, THRESHOLD_LR="2e-3", LAMBDA="0.5",
                       VALIDATE=0, EXTRA_ARGS=f"{shape} --log-interval 1 {fp16}"))
    assert "loss_scale=" in soft.stdout  # the fp16 optimizer wrapper was in charge
    soft_delta, soft_cfg = _delta(root / "soft" / "checkpoint_last.pt")
    assert soft_cfg.masking_mode == "soft" and soft_cfg.memory_efficient_fp16
    assert soft_delta[0] == 0 and (soft_delta[1:] > 0).all(), soft_delta  # learned, pushed up by lambda

    cli(_script(enc, "hard.sh", root / "hard", SOFT=root / "soft" / "checkpoint_last.pt"))
    hard_delta, hard_cfg = _delta(root / "hard" / "checkpoint_best.pt")
    assert hard_cfg.masking_mode == "hard"
    assert torch.equal(hard_delta, soft_delta)  # frozen in the hard stage

    result = json.loads((root / "hard" / "result.json").read_text())
    for subset in ("valid", "test"):
        figures = result[subset]
        assert 0 <= figures["accuracy"] <= 100
        assert 0 < figures["rel_flops"] < 1
        keep = [figures[f"keep_l{i}"] for i in range(LAYERS)]
        assert keep[0] == 1 and keep == sorted(keep, reverse=True) and keep[-1] < 1
        # the thresholds the validation reports are the schedule plus the learned delta
        assert figures["thr_l1"] == pytest.approx(0.01 * 1 / LAYERS + float(soft_delta[1]), abs=1e-5)

    # the bench's harness (user_dir/bench) measures the same accuracy, FLOPs and kept tokens in-process
    measure = root / "measure.json"
    cli(["python", "-m", "user_dir.bench.compare", enc.data_dir, "--model", f"base={finetuned}",
         "--model", f"ltp={root / 'hard' / 'checkpoint_best.pt'}", "--batch-sizes", "4", "--rounds", "1",
         "--out", measure])
    measured = json.loads(measure.read_text())["models"]
    for subset in ("valid", "test"):
        # fairseq logs accuracy with one decimal
        assert measured["ltp"][subset]["accuracy"] == pytest.approx(result[subset]["accuracy"], abs=0.051)
        assert measured["ltp"][subset]["relative_flops"] == pytest.approx(result[subset]["rel_flops"], abs=1e-3)
        for i in range(LAYERS):
            assert measured["ltp"][subset][f"kept_l{i}"] == pytest.approx(result[subset][f"keep_l{i}"], abs=1e-3)

    # the original's masking-only inference scores exactly the same
    masked = cli(["fairseq-validate", *enc.validate_args(root / "hard" / "checkpoint_best.pt", subset="valid,test",
                                                       extra=["--criterion", "ltp_sentence_prediction",
                                                              "--model-overrides",
                                                              "{'ltp_physical_removal': False}"])])
    masked_figures = parse(masked.stdout.splitlines())
    for subset in ("valid", "test"):
        for key in ("accuracy", "loss", "rel_flops", "keep_l3"):
            assert masked_figures[subset][key] == result[subset][key], (subset, key)


def _train_log_figures(save_dir):
    """The end-of-training validation that fairseq-train itself logs (same metrics as fairseq-validate)."""
    return parse((save_dir / "train.log").read_text().splitlines())["valid"]


def test_topk_and_manual_threshold_baselines(tiny, finetuned, cli):
    enc, root = tiny
    # VALIDATE=0: fairseq-train's own validation already reports the figures checked here
    cli(_script(enc, "topk.sh", root / "topk", RESTORE=finetuned, KEEP_RATE="0.3", VALIDATE=0))
    topk = _train_log_figures(root / "topk")
    # last layer keeps round(0.3 n) of n tokens; the first three keep all
    assert [topk[f"keep_l{i}"] for i in range(3)] == [1, 1, 1]
    assert 0.25 < topk["keep_l3"] < 0.35

    cli(_script(enc, "manual-threshold.sh", root / "manual", RESTORE=finetuned, FINAL_THRESHOLD="0.02",
                VALIDATE=0))
    manual_delta, manual_cfg = _delta(root / "manual" / "checkpoint_best.pt")
    assert manual_cfg.masking_mode == "hard" and torch.equal(manual_delta, torch.zeros(LAYERS))
    manual = _train_log_figures(root / "manual")
    assert manual["thr_l2"] == pytest.approx(0.02 * 2 / LAYERS) and manual["rel_flops"] < 1


def test_bad_data_folder_is_refused_before_training(tiny, cli, tmp_path):
    enc, _ = tiny
    (tmp_path / "input0").mkdir()
    proc = cli(_script(enc, "soft.sh", tmp_path / "out", DATA=tmp_path, RESTORE=tmp_path / "x.pt"),
               check=False)
    assert proc.returncode == 2
    assert f"DATA={tmp_path} is not a sentence_prediction data folder (input0/dict.txt missing" in proc.stdout
    assert "fairseq" not in proc.stdout and not (tmp_path / "out").exists()


def test_checkpoint_of_another_architecture_is_refused(tiny, finetuned, cli, tmp_path):
    enc, _ = tiny
    # bare fairseq-train without the tiny shape flags builds the real MiniLM shape and refuses the
    # tiny checkpoint (the scripts avoid this: they restore with the checkpoint's own shape flags)
    args = enc.train_args(tmp_path / "out", arch="ltp_roberta_minilm", restore=finetuned,
                          extra=["--criterion", "ltp_sentence_prediction"])
    shape = set(enc.model_args()[2:])
    args = [a for i, a in enumerate(args) if not (a in shape and a.startswith("--encoder")) and
            not (i and args[i - 1].startswith("--encoder") and args[i - 1] in shape)]
    proc = cli(["fairseq-train", *args], check=False)
    assert proc.returncode != 0
    assert (f"checkpoint encoder has {LAYERS} layers of width 32, but --arch ltp_roberta_minilm builds 6 layers "
            f"of width 384") in proc.stdout
    assert "train_inner" not in proc.stdout


def test_an_interrupted_stage_resumes_from_its_last_checkpoint(tiny, finetuned, cli):
    """A rerun into a folder holding checkpoint_last.pt continues (optimizer, schedule, epoch) instead
    of restarting from RESTORE; RESUME=0 starts over."""
    enc, root = tiny
    save = root / "resume"
    cli(_script(enc, "topk.sh", save, RESTORE=finetuned, KEEP_RATE="0.5", VALIDATE=0, EPOCHS=1))
    first = torch.load(save / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    assert first["extra_state"]["train_iterator"]["epoch"] == 2  # fairseq stores the next epoch
    # as if a 2-epoch run had been stopped after its first epoch
    again = cli(_script(enc, "topk.sh", save, RESTORE=finetuned, KEEP_RATE="0.5", VALIDATE=0, EPOCHS=2))
    assert "resuming from" in again.stdout and "begin training epoch 2" in again.stdout
    assert "begin training epoch 1" not in again.stdout
    second = torch.load(save / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    assert second["optimizer_history"][-1]["num_updates"] == 2 * first["optimizer_history"][-1]["num_updates"]
    assert "begin training epoch 1" in (save / "train.log").read_text()  # the log of the first sitting is kept
    fresh = cli(_script(enc, "topk.sh", save, RESTORE=finetuned, KEEP_RATE="0.5", VALIDATE=0, EPOCHS=1, RESUME=0))
    assert "resuming from" not in fresh.stdout and "begin training epoch 1" in fresh.stdout
