"""Bad input gets a clear error naming the option before any training step.

The stock ``fairseq-train`` entry point runs in-process here (same code path as the command, without
paying its start-up for each case); nothing may be trained or written before the error."""
import sys

import pytest

from tests.srp.conftest import train_args


def _train(argv, monkeypatch):
    from fairseq_cli import train

    monkeypatch.setattr(sys, "argv", [str(a) for a in argv])
    train.cli_main()


CASES = [
    (["--compression-rate", 0], ValueError, r"--compression-rate 0.0 is not valid: allowed values are a fraction"),
    (["--compression-rate", 1.5], ValueError, r"--compression-rate 1.5 is not valid"),
    (["--pruning-stage", 3], ValueError, r"--pruning-stage 3 is not valid: allowed values are 0 \(all"),
    (["--pruning-iter", 0], ValueError, r"--pruning-iter 0 is not valid"),
    (["--pruning-iter", 3, "--pruning-period", 2], ValueError, r"--pruning-period 2 is not valid: allowed values are at least --pruning-iter"),
    (["--warming-up", -1], ValueError, r"--warming-up -1 is not valid"),
    (["--srp-score-batches", 0], ValueError, r"--srp-score-batches 0 is not valid"),
]


@pytest.mark.parametrize("extra,exc,message", CASES, ids=[" ".join(map(str, c[0])) for c in CASES])
def test_bad_values(corpus, base_checkpoint, tmp_path, monkeypatch, extra, exc, message):
    argv = train_args(corpus, tmp_path / "out", "--srp", "--pretrained-model", base_checkpoint, *extra)
    with pytest.raises(exc, match=message):
        _train(argv, monkeypatch)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_unknown_schedule(corpus, base_checkpoint, tmp_path, monkeypatch, capsys):
    argv = train_args(corpus, tmp_path / "out", "--srp", "--pretrained-model", base_checkpoint,
                      "--decreasing", "linear")
    with pytest.raises(SystemExit):
        _train(argv, monkeypatch)
    err = capsys.readouterr().err
    assert "--decreasing" in err and "invalid choice: 'linear'" in err and "'sa', 'sg', 'ea', 'eg'" in err


@pytest.mark.parametrize("extra,exc,message", [
    (["--pretrained-model", "/nonexistent/ckpt.pt", "--srp"], FileNotFoundError,
     r"--pretrained-model /nonexistent/ckpt.pt: no such file"),
    (["--srp"], ValueError, r"--srp needs --pretrained-model"),
    (["--srp", "PRETRAINED", "--arch", "srp_small"], ValueError,
     r"--pretrained-model .* is of another architecture \(srp_tiny\): encoder_embed_dim=32 \(this run: 64\)"),
    (["--srp", "PRETRAINED", "--criterion", "label_smoothed_cross_entropy"], ValueError,
     r"--srp distils .* needs --criterion srp \(got --criterion label_smoothed_cross_entropy\)"),
    (["PRETRAINED", "--share-all-embeddings"], ValueError, r"--share-all-embeddings is not supported"),
    (["--srp", "PRETRAINED", "--optimizer", "adam"], ValueError,
     r"SRP pruning needs --optimizer srp_adam .* got --optimizer adam"),
], ids=["missing-pretrained", "srp-without-pretrained", "other-arch", "criterion", "share-all",
        "optimizer"])
def test_unsupported(corpus, base_checkpoint, tmp_path, monkeypatch, extra, exc, message):
    extra = [a for e in extra for a in (["--pretrained-model", base_checkpoint] if e == "PRETRAINED" else [e])]
    argv = train_args(corpus, tmp_path / "out", *extra)
    # a later flag wins in argparse: --arch/--criterion/--optimizer overrides of the defaults
    with pytest.raises(exc, match=message):
        _train(argv, monkeypatch)
    written = list((tmp_path / "out").glob("*.pt")) if (tmp_path / "out").exists() else []
    assert not written, "a checkpoint was written before the error"


def test_pretrained_of_other_vocabulary(corpus, base_checkpoint, tmp_path, monkeypatch):
    from tests.srp.synthetic import make_corpus

    other = make_corpus(tmp_path / "other", n_train=40, seed=5)
    (other / "dict.en.txt").write_text((corpus / "dict.en.txt").read_text() + "extra1 1\nextra2 1\n")
    argv = train_args(other, tmp_path / "out", "--srp", "--pretrained-model", base_checkpoint)
    with pytest.raises(ValueError, match=r"has a decoder vocabulary of \d+ entries; the dictionary of this run has"):
        _train(argv, monkeypatch)


def test_original_task_name_is_an_alias(corpus, tmp_path, monkeypatch):
    _train(train_args(corpus, tmp_path / "out", "--task", "SRPtranslation", "--max-update", 1), monkeypatch)
    assert (tmp_path / "out" / "checkpoint_last.pt").exists()
