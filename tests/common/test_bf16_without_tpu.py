"""fairseq 0.12 turns --bf16 into --tpu; without torch_xla the plugin unties them in every section
that copied the flag, and leaves a real TPU set-up (torch_xla installed) alone."""
import importlib.util

from fairseq import options
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

import user_dir  # noqa: F401  (registers the plugin)
from user_dir.common import bf16_without_tpu


def _cfg(*flags):
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [
        "unused-data", "--task", "sentence_prediction", "--num-classes", "2", "--arch", "ltp_roberta_minilm",
        "--criterion", "ltp_sentence_prediction", "--optimizer", "adam", "--lr", "1e-3", *flags])
    return convert_namespace_to_omegaconf(args)


def _flags(cfg):
    return [cfg.common.tpu, cfg.distributed_training.tpu, cfg.optimizer.tpu, cfg.model.tpu]


def test_bf16_runs_on_the_gpu_or_cpu_without_torch_xla(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch_xla" else object())
    cfg = _cfg("--bf16")
    assert _flags(cfg) == [True] * 4  # what fairseq made of --bf16
    assert bf16_without_tpu.untie(cfg)
    # also the copies: distributed_training.tpu skips the data-parallel set-up, optimizer.tpu fused Adam
    assert _flags(cfg) == [False] * 4 and cfg.common.bf16


def test_a_tpu_set_up_and_runs_without_bf16_are_left_alone(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())  # torch_xla installed
    cfg = _cfg("--bf16")
    assert not bf16_without_tpu.untie(cfg) and _flags(cfg) == [True] * 4
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    cfg = _cfg("--tpu")  # an explicit --tpu without --bf16 is the user's to keep
    assert not bf16_without_tpu.untie(cfg) and cfg.common.tpu
