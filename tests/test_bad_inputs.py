"""Every bad input counted: one table of refusals across the four methods, the data scripts and the
report tool, each run through the tool's real entry point (in this process where the tool is Python:
the stock ``fairseq_cli.train.cli_main``, ``fairseq-kprune``'s and ``fairseq-compress-report``'s
``main``, ``prepare-own-data``'s ``main``; shell scripts as commands). Each must fail before any
update with a message that names the option or file, and leave no checkpoint or JSON (whole or
partial) in the output folder. docs/bad-inputs.md lists the same cases, row for row (checked here).
"""
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List

import pytest

from tests.common.encoder_fixtures import REPO
from tests.common.interrupt import partial_files
from tests.conftest import fairseq_env
from tests.srp.conftest import corpus, train_args  # noqa: F401  (the SRP corpus fixture)

pytestmark = pytest.mark.integration
DOC = REPO / "docs" / "bad-inputs.md"


@dataclass
class Env:
    enc: object      # tests.common.encoder_fixtures.TinyEncoder: data, pretrained (masked_lm) checkpoint
    clf: Path        # a fine-tuned tiny classifier
    corpus: Path     # a binarised De-En-like translation folder
    tmp: Path
    out: Path        # the output folder every case must leave without checkpoints

    def file(self, name, content=b""):
        path = self.tmp / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path


@dataclass
class Case:
    tool: str
    option: str       # the option or file the refusal is about (as the docs' table lists it)
    value: str        # the bad value, in words
    argv: Callable[[Env], List[str]]
    message: str      # a part of the error message (it names the option or the file)

    @property
    def id(self):
        return f"{self.tool} {self.option} {self.value}"


# ---- command lines of the tools -----------------------------------------------------------------
def srp(*extra):
    return lambda e: train_args(e.corpus, e.out, *[x(e) if callable(x) else x for x in extra])


def encoder_train(arch, criterion, optimizer, *extra):
    def argv(e):
        return ["fairseq-train", *e.enc.task_args(), *e.enc.model_args(arch), "--criterion", criterion,
                "--optimizer", optimizer, "--lr", "1e-4", "--batch-size", "8", "--max-update", "2",
                "--required-batch-size-multiple", "1", "--num-workers", "0", "--save-dir", str(e.out),
                "--cpu", "--no-progress-bar", *[str(x(e)) if callable(x) else str(x) for x in extra]]
    return argv


def ltp(*extra):
    return encoder_train("ltp_roberta_minilm", "ltp_sentence_prediction", "ltp_adam",
                         "--masking-mode", "soft", *extra)


def trbert(*extra):
    return encoder_train("trbert_roberta_minilm", "trbert", "adam", "--trbert-stage", "joint",
                         "--guide-rate", "0", *extra)


def kprune(*extra, data=None, path=None):
    def argv(e):
        return ["fairseq-kprune", str(data(e) if data else e.enc.data_dir), "--path", str(path(e) if path else e.clf),
                "--save-dir", str(e.out), "--cpu", "--num-tokens", "200", "--no-progress-bar",
                *[str(x(e)) if callable(x) else str(x) for x in extra]]
    return argv


def report(*extra, data=None):
    def argv(e):
        return ["fairseq-compress-report", str(data(e) if data else e.enc.data_dir),
                *[str(x(e)) if callable(x) else str(x) for x in extra]]
    return argv


def own_data(*extra):
    def argv(e):
        args = [str(x(e)) if callable(x) else str(x) for x in extra]
        if "--train" not in args:
            args = ["--train", str(good_tsv(e))] + args
        if "--encoder" not in args:
            args += ["--encoder", str(e.enc.model_dir)]
        if "--out" not in args:
            args += ["--out", str(e.out / "data")]
        return ["prepare-own-data.sh", *args]
    return argv


def script(name, **env):
    def argv(e):
        values = {k: (v(e) if callable(v) else v) for k, v in env.items()}
        return ["env", *[f"{k}={v}" for k, v in values.items()], "bash", f"scripts/{name}"]
    return argv


def good_tsv(e):
    rows = "".join(f"{i % 2}\tthe movie was {'good' if i % 2 else 'bad'} and fun {i}\n" for i in range(20))
    return e.file("good.tsv", rows)


def other_dictionary(e):
    """The tiny data with three more words in its dictionary (a checkpoint of it cannot be loaded)."""
    data = e.tmp / "other-dict"
    shutil.copytree(e.enc.data_dir, data)
    with open(data / "input0" / "dict.txt", "a") as f:
        f.write("zzzfoo 1\nzzzbar 1\nzzzbaz 1\n")
    return data


def three_labels(e):
    data = e.tmp / "three-labels"
    shutil.copytree(e.enc.data_dir, data)
    (data / "label" / "dict.txt").write_text("0 10\n1 10\n2 10\n")
    return data


def empty_train(e):
    from fairseq.data import indexed_dataset

    data = e.tmp / "empty-train"
    shutil.copytree(e.enc.data_dir, data)
    for key in ("input0", "label"):  # what fairseq-preprocess writes for an empty text file
        builder = indexed_dataset.make_builder(str(data / key / "train.bin"), impl="mmap", vocab_size=100)
        builder.finalize(str(data / key / "train.idx"))
    return data


def on_data(data, argv):
    """``argv`` with the tiny data folder replaced by ``data(e)``."""
    return lambda e: [str(data(e)) if a == str(e.enc.data_dir) else a for a in map(str, argv(e))]


def text_file(e):
    return e.file("notes.pt", "not a checkpoint\n")


def missing(name):
    return lambda e: e.tmp / "missing" / name


CASES = [
    # SRP: fairseq-train --task srp_translation
    Case("fairseq-train (SRP)", "--compression-rate", "0 (out of range)",
         srp("--srp", "--pretrained-model", text_file, "--compression-rate", 0),
         "--compression-rate 0.0 is not valid: allowed values are a fraction"),
    Case("fairseq-train (SRP)", "--compression-rate", "1.5 (out of range)",
         srp("--srp", "--pretrained-model", text_file, "--compression-rate", 1.5), "--compression-rate 1.5 is not valid"),
    Case("fairseq-train (SRP)", "--compression-rate", "abc (not a number)",
         srp("--compression-rate", "abc"), "argument --compression-rate: invalid float value: 'abc'"),
    Case("fairseq-train (SRP)", "--pruning-stage", "3 (no such stage)",
         srp("--srp", "--pretrained-model", text_file, "--pruning-stage", 3), "--pruning-stage 3 is not valid"),
    Case("fairseq-train (SRP)", "--pruning-iter", "0", srp("--srp", "--pretrained-model", text_file, "--pruning-iter", 0),
         "--pruning-iter 0 is not valid"),
    Case("fairseq-train (SRP)", "--pruning-period", "0", srp("--srp", "--pretrained-model", text_file, "--pruning-period", 0),
         "--pruning-period 0 is not valid"),
    Case("fairseq-train (SRP)", "--srp-score-max-tokens", "0",
         srp("--srp", "--pretrained-model", text_file, "--srp-score-max-tokens", 0), "--srp-score-max-tokens 0 is not valid"),
    Case("fairseq-train (SRP)", "--decreasing", "linear (unknown schedule)", srp("--decreasing", "linear"),
         "argument --decreasing: invalid choice: 'linear'"),
    Case("fairseq-train (SRP)", "--pretrained-model", "missing file", srp("--srp", "--pretrained-model", missing("ckpt.pt")),
         "missing/ckpt.pt: no such file"),
    Case("fairseq-train (SRP)", "--pretrained-model", "a text file", srp("--srp", "--pretrained-model", text_file),
         "notes.pt: not a readable fairseq checkpoint"),
    Case("fairseq-train (SRP)", "--pretrained-model", "a RoBERTa classifier (another method's file)",
         srp("--srp", "--pretrained-model", lambda e: e.clf), "; SRP prunes srp models (--arch srp_*)"),
    Case("fairseq-train (SRP)", "--srp", "without --pretrained-model", srp("--srp"), "--srp needs --pretrained-model"),
    Case("fairseq-train (SRP)", "--optimizer", "adam while pruning",
         srp("--pretrained-model", lambda e: e.clf, "--optimizer", "adam"), "SRP pruning needs --optimizer srp_adam"),
    Case("fairseq-train (SRP)", "--prob-kd", "-1", srp("--prob-kd", -1), "--prob-kd must be >= 0"),
    Case("fairseq-train (SRP)", "--lambda-threshold", "given (an LTP option)", srp("--lambda-threshold", 0.1),
         "unrecognized arguments: --lambda-threshold 0.1"),
    Case("fairseq-train (any)", "--restore-file", "missing file", srp("--restore-file", missing("base.pt")),
         "missing/base.pt: no such checkpoint (fairseq-train would start from random weights"),
    # LTP: fairseq-train --arch ltp_roberta* --criterion ltp_sentence_prediction
    Case("fairseq-train (LTP)", "--final-token-threshold", "1.5 (out of range)", ltp("--final-token-threshold", 1.5),
         "--final-token-threshold must be in [0, 1]"),
    Case("fairseq-train (LTP)", "--temperature", "0", ltp("--temperature", 0), "--temperature must be > 0"),
    Case("fairseq-train (LTP)", "--threshold-lr", "-1", ltp("--threshold-lr", -1), "--threshold-lr must be > 0"),
    Case("fairseq-train (LTP)", "--token-keep-rate", "1.2", ltp("--token-keep-rate", 1.2), "--token-keep-rate must be <= 1"),
    Case("fairseq-train (LTP)", "--prune-mode", "bogus", ltp("--prune-mode", "bogus"),
         "argument --prune-mode: invalid choice: 'bogus'"),
    Case("fairseq-train (LTP)", "--ltp-score-length", "0", ltp("--ltp-score-length", 0),
         "--ltp-score-length must be a positive integer"),
    Case("fairseq-train (LTP)", "--lambda-threshold", "-0.1", ltp("--lambda-threshold", -0.1),
         "--lambda-threshold must be a finite number >= 0"),
    Case("fairseq-train (LTP)", "--optimizer", "adam in the soft stage", ltp("--optimizer", "adam"),
         "use --optimizer ltp_adam"),
    Case("fairseq-train (LTP)", "--prune-mode", "topk with --masking-mode soft", ltp("--prune-mode", "topk"),
         "use --masking-mode hard with it"),
    Case("fairseq-train (LTP)", "--trbert-rollouts", "given (a TR-BERT option)", ltp("--trbert-rollouts", 4),
         "unrecognized arguments: --trbert-rollouts 4"),
    Case("fairseq-train (LTP)", "--restore-file", "a checkpoint of another dictionary",
         on_data(other_dictionary, ltp("--restore-file", lambda e: e.clf, "--reset-optimizer")),
         "entries, the dictionary of this run (DATA/input0/dict.txt) has"),
    # TR-BERT: fairseq-train --arch trbert_roberta* --criterion trbert
    Case("fairseq-train (TR-BERT)", "--trbert-stage", "finetune (no such stage)", trbert("--trbert-stage", "finetune"),
         "argument --trbert-stage: invalid choice: 'finetune'"),
    Case("fairseq-train (TR-BERT)", "--trbert-rollouts", "1", trbert("--trbert-rollouts", 1), "--trbert-rollouts must be >= 2"),
    Case("fairseq-train (TR-BERT)", "--guide-rate", "1.5", trbert("--guide-rate", 1.5), "--guide-rate must be in [0, 1]"),
    Case("fairseq-train (TR-BERT)", "--alpha", "-1", trbert("--alpha", -1), "--alpha must be a finite number >= 0"),
    Case("fairseq-train (TR-BERT)", "--trbert-kd", "without --teacher-path", trbert("--trbert-kd"),
         "--trbert-kd needs a teacher: pass --teacher-path"),
    Case("fairseq-train (TR-BERT)", "--teacher-path", "missing file", trbert("--trbert-kd", "--teacher-path", missing("t.pt")),
         "missing/t.pt: no such checkpoint"),
    Case("fairseq-train (TR-BERT)", "--trbert-scores", "missing file",
         trbert("--trbert-stage", "rl", "--guide-rate", 0.5, "--trbert-scores", missing("s.pt")), "missing/s.pt: no such file"),
    Case("fairseq-train (TR-BERT)", "--trbert-reduce-layers", "1,5 (beyond the layers)", trbert("--trbert-reduce-layers", "1,5"),
         "--trbert-reduce-layers 1,5: layer(s) [5] out of range"),
    Case("fairseq-train (TR-BERT)", "--trbert-reduce-layers", "a (not integers)", trbert("--trbert-reduce-layers", "a"),
         "--trbert-reduce-layers must be comma-separated integers"),
    Case("fairseq-train (TR-BERT)", "--trbert-score-layer", "9 (beyond the layers)",
         trbert("--trbert-scores", "online", "--teacher-path", lambda e: e.clf, "--trbert-score-layer", 9),
         "--trbert-score-layer 9: the hidden state"),
    Case("fairseq-train (TR-BERT)", "--lambda-threshold", "given (an LTP option)", trbert("--lambda-threshold", 0.1),
         "unrecognized arguments: --lambda-threshold 0.1"),
    Case("fairseq-train (TR-BERT)", "--criterion", "trbert with an LTP model",
         trbert("--arch", "ltp_roberta_minilm", "--optimizer", "ltp_adam"),
         "--criterion trbert needs a TR-BERT model"),
    Case("fairseq-train (LTP)", "--criterion", "ltp_sentence_prediction with a plain encoder",
         encoder_train("prunable_roberta_minilm", "ltp_sentence_prediction", "adam"),
         "--criterion ltp_sentence_prediction needs an LTP model"),
    # Kprune: fairseq-kprune
    Case("fairseq-kprune", "--constraint", "1.5 (out of range)", kprune("--constraint", 1.5),
         "argument --constraint: must be in (0, 1)"),
    Case("fairseq-kprune", "--constraint", "half (not a number)", kprune("--constraint", "half"),
         "argument --constraint: invalid"),
    Case("fairseq-kprune", "--num-tokens", "0", kprune("--constraint", 0.5, "--num-tokens", 0), "argument --num-tokens: must be > 0"),
    Case("fairseq-kprune", "--lam-pred", "-1", kprune("--constraint", 0.5, "--lam-pred", -1), "argument --lam-pred: must be >= 0"),
    Case("fairseq-kprune", "--kwon-damp", "given with --method kprune", kprune("--constraint", 0.5, "--kwon-damp", 2),
         "--kwon-damp: only for --method kwon, not --method kprune"),
    Case("fairseq-kprune", "--path", "missing file", kprune("--constraint", 0.5, path=missing("ft.pt")),
         "no such checkpoint file"),
    Case("fairseq-kprune", "--path", "a text file", kprune("--constraint", 0.5, path=text_file),
         "is not a readable fairseq checkpoint"),
    Case("fairseq-kprune", "--path", "a pretrained (not fine-tuned) encoder",
         kprune("--constraint", 0.5, path=lambda e: e.enc.checkpoint), "was trained for task 'masked_lm'"),
    Case("fairseq-kprune", "DATA", "missing folder", kprune("--constraint", 0.5, data=missing("data")),
         "data: no such directory"),
    Case("fairseq-kprune", "DATA", "a translation folder", kprune("--constraint", 0.5, data=lambda e: e.corpus),
         "is not a sentence_prediction data directory"),
    Case("fairseq-kprune", "DATA", "an empty training split", kprune("--constraint", 0.5, data=empty_train),
         "is empty (--train-subset)"),
    Case("fairseq-kprune", "DATA", "another dictionary than the checkpoint's",
         kprune("--constraint", 0.5, data=other_dictionary), "does not fit the dictionary in"),
    Case("fairseq-kprune", "DATA", "3 classes for a 2-class checkpoint", kprune("--constraint", 0.5, data=three_labels),
         "predicts 2 classes, but"),
    # the report tool: fairseq-compress-report
    Case("fairseq-compress-report", "DATA", "missing folder", report("--path", lambda e: e.clf, data=missing("d")),
         "DATA: no such directory"),
    Case("fairseq-compress-report", "--path", "missing file", report("--path", missing("a.pt")), "--path: no such checkpoint file"),
    Case("fairseq-compress-report", "--batch-sizes", "1,x (not integers)", report("--path", lambda e: e.clf, "--batch-sizes", "1,x"),
         "--batch-sizes: comma-separated positive integers"),
    Case("fairseq-compress-report", "--rounds", "0", report("--path", lambda e: e.clf, "--rounds", 0),
         "--threads and --rounds must be at least 1"),
    Case("fairseq-compress-report", "--max-examples", "0", report("--path", lambda e: e.clf, "--max-examples", 0),
         "--max-examples must be at least 1"),
    Case("fairseq-compress-report", "--subsets", "a split the data lacks", report("--path", lambda e: e.clf, "--subsets", "dev"),
         "--subsets: no split 'dev'"),
    # the data scripts: scripts/data/prepare-own-data.sh
    Case("prepare-own-data.sh", "--train", "missing file", own_data("--train", missing("t.tsv")), "missing/t.tsv: no such file"),
    Case("prepare-own-data.sh", "--train", "a .xlsx file", own_data("--train", lambda e: e.file("t.xlsx", "x")),
         "unknown file type"),
    Case("prepare-own-data.sh", "--train", "an empty file", own_data("--train", lambda e: e.file("empty.tsv")),
         "no examples (empty file, or only a header)"),
    Case("prepare-own-data.sh", "--train", "one class only",
         own_data("--train", lambda e: e.file("one.tsv", "".join(f"1\tgood movie {i}\n" for i in range(10)))),
         "only one label '1' in the data"),
    Case("prepare-own-data.sh", "--train", "not UTF-8", own_data("--train", lambda e: e.file("l1.tsv", b"1\tcaf\xe9\n0\tbad\n")),
         "not UTF-8 text"),
    Case("prepare-own-data.sh", "--valid-fraction", "1.5", own_data("--valid-fraction", 1.5),
         "--valid-fraction 1.5: must be between 0 and 1"),
    Case("prepare-own-data.sh", "--valid-fraction", "given with --valid",
         own_data("--valid", good_tsv, "--valid-fraction", 0.2), "--valid-fraction: only without --valid"),
    Case("prepare-own-data.sh", "--max-tokens", "2", own_data("--max-tokens", 2), "--max-tokens 2: must be at least 4"),
    Case("prepare-own-data.sh", "--out", "an existing file", own_data("--out", lambda e: e.file("out.txt", "x")),
         "exists and is not a folder"),
    Case("prepare-own-data.sh", "--encoder", "missing folder", own_data("--encoder", missing("enc")), "missing/enc: no such folder"),
    # the method scripts
    Case("scripts/ltp/soft.sh", "DATA", "missing folder", script("ltp/soft.sh", DATA=missing("data")),
         "is not a sentence_prediction data folder"),
    Case("scripts/kprune/prune.sh", "BASELINE", "missing file",
         script("kprune/prune.sh", DATA=lambda e: e.enc.data_dir, BASELINE=missing("b.pt"), SAVE_DIR=lambda e: e.out),
         "missing/b.pt not found"),
]


# ---- running a case ---------------------------------------------------------------------------------
class Updated(AssertionError):
    pass


def _run_in_process(argv, monkeypatch, capsys):
    """(exit code or exception, output) of a Python tool run in this process."""
    from fairseq.optim import FairseqOptimizer

    def no_update(*_args, **_kwargs):
        raise Updated("an optimizer step was taken before the error")

    monkeypatch.setattr(FairseqOptimizer, "step", no_update)
    monkeypatch.setattr(sys, "argv", argv)
    tool = argv[0]
    error = None
    try:
        if tool == "fairseq-train":
            from fairseq_cli import train
            train.cli_main()
        elif tool == "fairseq-kprune":
            from user_dir.kprune.cli import cli_main
            cli_main(argv[1:])
        elif tool == "fairseq-compress-report":
            from user_dir.bench.report_cli import main
            error = main(argv[1:])
        elif tool == "prepare-own-data.sh":
            sys.path.insert(0, str(REPO / "scripts" / "data"))
            import own_data
            error = own_data.main(argv[1:])
        else:
            raise AssertionError(f"unknown tool {tool}")
    except Updated:
        raise
    except SystemExit as e:
        error = e.code if e.code is not None else 0
        if isinstance(error, str):  # sys.exit("message")
            print(error, file=sys.stderr)
            error = 1
    except Exception as e:  # noqa: BLE001  (any error type is a refusal; its message is what counts)
        error = e
        while e is not None:  # the chain a traceback would show (fairseq re-raises load errors)
            print(f"{type(e).__name__}: {e}", file=sys.stderr)
            e = e.__cause__ or e.__context__
    out = capsys.readouterr()
    return error, out.out + out.err


@pytest.fixture(scope="module")
def env_base(tiny_encoder, tiny_classifier, corpus):
    return tiny_encoder, tiny_classifier, corpus


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_before_training(case, env_base, tmp_path, monkeypatch, capsys):
    enc, clf, corpus_dir = env_base
    e = Env(enc, clf, corpus_dir, tmp_path, tmp_path / "out")
    e.out.mkdir()
    argv = [str(a) for a in case.argv(e)]
    if argv[0] in ("env",):
        proc = subprocess.run(argv, cwd=REPO, env=fairseq_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=300)
        error, output = proc.returncode, proc.stdout
    else:
        error, output = _run_in_process(argv, monkeypatch, capsys)
    assert error not in (None, 0), f"accepted: {' '.join(argv)}\n{output[-3000:]}"
    assert case.message in output, f"{case.id}: expected {case.message!r} in:\n{output[-3000:]}"
    # it names the option, or the file or folder it is about
    named = [case.option] + [a.split("=", 1)[-1] for a in argv if "/" in a]
    assert any(n in output for n in named), f"the message names neither {case.option} nor a file:\n{output[-2000:]}"
    leftovers = [p for p in e.out.rglob("*") if p.is_file() and p.suffix in (".pt", ".json")]
    assert not leftovers and not partial_files(e.out), leftovers


def test_there_are_at_least_40_and_the_docs_list_each():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    rows = {tuple(cell.strip().strip("`") for cell in line.strip().strip("|").split("|")[:3])
            for line in DOC.read_text().splitlines() if line.startswith("|")}
    missing_rows = [c.id for c in CASES if (c.tool, c.option, c.value) not in rows]
    assert not missing_rows, f"docs/bad-inputs.md lacks rows for: {missing_rows}"


def markdown_rows() -> str:
    """The docs table's rows (``python -m tests.test_bad_inputs`` prints them)."""
    def cell(text):
        return text.replace("|", "\\|")
    return "\n".join(f"| {cell(c.tool)} | `{cell(c.option)}` | {cell(c.value)} | {cell(c.message.strip())} |"
                     for c in CASES)


if __name__ == "__main__":
    print(markdown_rows())
