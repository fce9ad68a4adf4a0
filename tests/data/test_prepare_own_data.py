"""prepare-own-data.sh / scripts/data/own_data.py: a user's TSV/CSV in, a sentence_prediction folder
out (tiny converted BERT from tests/common/encoder_fixtures.py as --encoder; no MiniLM needed)."""
import json
import random
import re
import shlex
import subprocess
import sys

import pytest

from tests.common.encoder_fixtures import REPO, build_tiny_encoder, tiny_encoder, tiny_sentence  # noqa: F401
from tests.conftest import run_cli

sys.path.insert(0, str(REPO / "scripts" / "data"))
import own_data  # noqa: E402
import own_data_rows as rows_mod  # noqa: E402

SCRIPT = REPO / "scripts" / "data" / "prepare-own-data.sh"


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def _prepare(capsys, *args):
    """own_data.main in this process: (exit code, stdout, stderr)."""
    rc = own_data.main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def _decoded(data, key, split):
    """The binarised split read back through fairseq, one string per example."""
    from fairseq.data import Dictionary, data_utils

    d = Dictionary.load(str(data / key / "dict.txt"))
    ds = data_utils.load_indexed_dataset(str(data / key / split), d)
    return d, [d.string(ds[i]) for i in range(len(ds))]


# ------------------------------------------------------------------------------ unit: rows
def test_class_order_rule():
    assert rows_mod.class_order(["10", "2", "-1", "0", "2"]) == ["-1", "0", "2", "10"]
    assert rows_mod.class_order(["pos", "neg", "Neutral", "10"]) == ["10", "Neutral", "neg", "pos"]
    with pytest.raises(rows_mod.DataError, match="reserved"):
        rows_mod.class_order(["a", "<unk>"])


def test_header_rule(tmp_path):
    def read(text, name="f.tsv", regression=False):
        f = _write(tmp_path / name, text)
        return rows_mod.read_file(f, rows_mod.file_format(f), regression=regression)[0]

    assert read("Label\ttext\n1\ta\n0\tb\n").header_line == 1
    assert read("\n\nclass\tsentence\tsentence2\n1\ta\tb\n").header_line == 3
    # a real class called "y" stays data: it occurs again further down
    r = read("y\tyes it is\nn\tno\ny\tsure\n")
    assert r.header_line is None and [e.label for e in r.examples] == ["y", "n", "y"]
    assert read("sentiment\ttext\n1\ta\n").header_line is None   # not a header name: data
    # --regression: a first label that is not a float is a header
    assert read("score,text\n0.5,a\n", "f.csv", regression=True).header_line == 1
    assert read("rating\tx\n1.5\ta\n", regression=True).header_line == 1
    assert read("2.5\ta\n1.5\tb\n", regression=True).header_line is None
    with pytest.raises(rows_mod.DataError, match=r"line 2: label 'pos' is not a finite .*drop --regression"):
        rows_mod.check_mostly_bad(read("neg\ta\npos\tb\n", regression=True), "--train")


# ------------------------------------------------------------------------------ end to end, in process
def test_tsv_multiclass_header_and_carved_split(tiny_encoder, tmp_path, capsys):  # noqa: F811
    rng = random.Random(0)
    labels = ["pos", "neg", "neutral", "Zeta"]
    rows = [(rng.choice(labels), tiny_sentence(rng)[0]) for _ in range(40)]
    train = _write(tmp_path / "train.tsv", "label\ttext\n" + "".join(f"{l}\t{t}\n" for l, t in rows))
    out = tmp_path / "data-bin" / "mine"
    rc, stdout, _ = _prepare(capsys, "--train", train, "--out", out, "--encoder", tiny_encoder.model_dir)
    assert rc == 0
    info = json.loads((out / "data.json").read_text())
    classes = ["Zeta", "neg", "neutral", "pos"]  # sorted label strings (code point order)
    assert info["labels"] == classes and info["num_classes"] == 4 and not info["regression"]
    assert info["splits"] == {"train": 36, "valid": 4} and info["valid_from"] == "train"
    assert info["header_line"] == {"train": 1} and info["pairs"] is False
    assert info["encoder"]["kind"] == "wordpiece" and info["max_tokens"] == 62  # 64 positions - 2
    assert [line.split()[0] for line in _lines(out / "label" / "dict.txt")] == classes
    for split in ("train", "valid"):
        # class index as sentence_prediction computes it (label id - nspecial) = position in labels
        d, labs = _decoded(out, "label", split)
        assert labs == _lines(out / "text" / f"{split}.label")
        assert [d.index(lab) - d.nspecial for lab in labs] == [classes.index(lab) for lab in labs]
        assert _decoded(out, "input0", split)[1] == _lines(out / "text" / f"{split}.input0")
    assert not (out / "input1").exists() and not (out / "input0" / "test.idx").exists()
    assert "header (line 1) skipped" in stdout and "0: Zeta, 1: neg, 2: neutral, 3: pos" in stdout
    assert "no test split" in stdout
    assert f"RESTORE={tiny_encoder.model_dir / 'model.pt'}" in info["next"] and "NUM_CLASSES" not in info["next"]
    assert "MAX_POSITIONS=64" in info["next"] and info["next"] in stdout
    # every example once, text lowercased WordPiece of the row
    texts = _lines(out / "text" / "train.input0") + _lines(out / "text" / "valid.input0")
    assert sorted(texts) == sorted(t.lower() for _, t in rows)


def test_carved_split_is_fixed_by_the_seed(tiny_encoder, tmp_path, capsys):  # noqa: F811
    rng = random.Random(1)
    train = _write(tmp_path / "t.txt", "".join("%s\t%s\n" % tiny_sentence(rng)[::-1] for _ in range(50)))
    out, other = tmp_path / "a", tmp_path / "b"
    common = ["--train", train, "--encoder", tiny_encoder.model_dir, "--valid-fraction", "0.2"]
    assert _prepare(capsys, *common, "--out", out)[0] == 0
    first = _lines(out / "text" / "valid.input0")
    assert _prepare(capsys, *common, "--out", out)[0] == 0   # replaces its own folder
    assert _lines(out / "text" / "valid.input0") == first and len(first) == 10
    assert _prepare(capsys, *common, "--out", other, "--seed", "2")[0] == 0
    assert _lines(other / "text" / "valid.input0") != first
    assert sorted(_lines(other / "text" / "valid.input0") + _lines(other / "text" / "train.input0")) == \
        sorted(first + _lines(out / "text" / "train.input0"))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp folders left


def test_csv_quoting_pairs_valid_and_test(tiny_encoder, tmp_path, capsys):  # noqa: F811
    header = "label,sentence1,sentence2\n"
    train = _write(tmp_path / "train.csv", header + "".join(
        f'{i % 3},"the movie, the plot","it was ""{w}"""\n' for i, w in enumerate(["good", "bad"] * 6))
        + '1,"the story\nwas long",fun\n')
    valid = _write(tmp_path / "valid.csv", '0,the cast,"dull, boring"\n2,the ending,good\n')
    test = _write(tmp_path / "test.csv", header + "1,the music,great\n")
    out = tmp_path / "pairs"
    rc, stdout, _ = _prepare(capsys, "--train", train, "--valid", valid, "--test", test, "--out", out,
                             "--encoder", tiny_encoder.model_dir)
    assert rc == 0, stdout
    info = json.loads((out / "data.json").read_text())
    assert info["pairs"] is True and info["splits"] == {"train": 13, "valid": 2, "test": 1}
    assert info["labels"] == ["0", "1", "2"] and info["header_line"] == {"train": 1, "valid": None, "test": 1}
    text = out / "text"
    assert _lines(text / "train.input0")[0] == "the movie , the plot"     # quoted comma kept in the text
    # '"' is not in the tiny vocabulary: <unk>
    assert _lines(text / "train.input1")[:2] == ["it was <unk> good <unk>", "it was <unk> bad <unk>"]
    assert _lines(text / "train.input0")[-1] == "the story was long"      # line break inside quotes
    assert _lines(text / "valid.input1") == ["dull , boring", "good"]
    for split, n in info["splits"].items():
        assert _decoded(out, "input1", split)[1] == _lines(text / f"{split}.input1")
        assert len(_decoded(out, "label", split)[1]) == n
    assert "splits: train 13, valid 2, test 1" in stdout and "no test split" not in stdout


def test_regression_labels_are_float_text(tiny_encoder, tmp_path, capsys):  # noqa: F811
    train = _write(tmp_path / "sts.tsv", "score\ttext\n0.5\tthe movie\n-1e-1\tthe plot\n3\tthe story\n"
                   "4.25\tthe cast\nabc\tthe ending\n1.0\tthe music\n2\tthe acting\n")
    test = _write(tmp_path / "sts-test.tsv", "1.5\tthe film\n")
    out = tmp_path / "reg"
    rc, stdout, _ = _prepare(capsys, "--train", train, "--valid", train, "--test", test, "--out", out,
                             "--encoder", tiny_encoder.model_dir, "--regression")
    assert rc == 0
    info = json.loads((out / "data.json").read_text())
    assert info["regression"] and info["num_classes"] == 1 and info["labels"] is None
    assert info["bad_rows"] == {"train": 1, "valid": 1, "test": 0}
    assert _lines(out / "label" / "train.label") == ["0.5", "-1e-1", "3", "4.25", "1.0", "2"]
    assert _lines(out / "label" / "test.label") == ["1.5"]
    assert sorted(p.name for p in (out / "label").iterdir()) == ["test.label", "train.label", "valid.label"]
    assert "line 6: label 'abc' is not a finite number" in stdout and "task: regression" in stdout
    assert "finetune-baseline.sh" in info["next"]  # which reads "regression" from the folder


def test_bad_rows_are_reported_with_line_numbers(tiny_encoder, tmp_path, capsys):  # noqa: F811
    good = [f"{i % 2}\tthe movie was good\n" for i in range(12)]
    bad = "\tno label\n1\t\n1\ttwo\ttexts\n1\n0\t   \n1\ta\tb\tc\n0\t\t\n"
    train = _write(tmp_path / "t.tsv", "".join(good[:2]) + bad + "".join(good[2:]))
    first_bad = 3
    rc, stdout, _ = _prepare(capsys, "--train", train, "--out", tmp_path / "o", "--encoder", tiny_encoder.model_dir)
    assert rc == 0
    info = json.loads((tmp_path / "o" / "data.json").read_text())
    assert info["bad_rows"] == {"train": 7} and sum(info["splits"].values()) == 12
    n = first_bad
    assert (f"7 bad row(s) of 19 skipped (line {n}: missing label; line {n + 1}: empty text; "
            f"line {n + 2}: 3 column(s), expected 2 (label, text); line {n + 3}: 1 column(s), expected 2 "
            f"(label, text); line {n + 4}: empty text; ... and 2 more)") in stdout


def test_gpt2_bpe_encoder(tmp_path, capsys):
    """fairseq RoBERTa's files, made small: byte symbols + a few merges, ids as dict.txt symbols."""
    from fairseq.data.encoders.gpt2_bpe_utils import bytes_to_unicode

    enc_dir = tmp_path / "roberta"
    enc_dir.mkdir()
    byte_symbols = bytes_to_unicode()
    vocab = {byte_symbols[b]: b for b in range(256)}
    merges = ["o o", "g oo", "goo d", "Ġ b", "Ġb a", "Ġba d"]
    for m in merges:
        vocab[m.replace(" ", "")] = len(vocab)
    (enc_dir / "encoder.json").write_text(json.dumps(vocab))
    (enc_dir / "vocab.bpe").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    good, bad = vocab["good"], vocab["Ġbad"]
    space, g, y = vocab["Ġ"], vocab["g"], vocab["y"]
    # the id of "y" (and of a, b, d) is left out of dict.txt: binarised as <unk>
    (enc_dir / "dict.txt").write_text("".join(f"{i} {100 - k}\n" for k, i in enumerate([good, bad, space, g])))
    train = _write(tmp_path / "t.tsv", "label\ttext\n1\tgood\n0\tgood  bad\n1\tgood gy\n0\tbad\n")
    out = tmp_path / "gpt2"
    rc, stdout, _ = _prepare(capsys, "--train", train, "--valid", train, "--out", out, "--encoder", enc_dir)
    assert rc == 0
    # fairseq's GPT-2 BPE: "good" merges fully, " bad" -> "Ġbad", a first-word "bad" has no merges
    assert _lines(out / "text" / "train.input0") == [
        f"{good}", f"{good} {bad}", f"{good} {space} {g} {y}", f"{vocab['b']} {vocab['a']} {vocab['d']}"]
    _, decoded = _decoded(out, "input0", "train")
    assert decoded[:2] == [f"{good}", f"{good} {bad}"] and decoded[2] == f"{good} {space} {g} <unk>"
    info = json.loads((out / "data.json").read_text())
    assert info["encoder"]["kind"] == "gpt2" and info["encoder"]["checkpoint"] is None
    assert info["unk_percent"]["train"] > 0
    assert "ARCH=roberta_base" in info["next"] and "model.pt does not exist yet" in stdout


# ------------------------------------------------------------------------------ refusals
def test_option_errors_fail_before_writing(tiny_encoder, tmp_path, capsys):  # noqa: F811
    train = _write(tmp_path / "t.tsv", "1\tthe movie\n0\tthe plot\n")
    taken, ours = tmp_path / "taken", tmp_path / "ours"
    taken.mkdir()
    ours.mkdir()
    _write(taken / "notes.md", "mine")
    _write(ours / "data.json", '{"made_by": "prepare-own-data"}')
    _write(ours / "t.tsv", "1\tthe movie\n0\tthe plot\n")
    enc = ["--encoder", tiny_encoder.model_dir]
    cases = [
        (["--train", train, "--out", tmp_path / "o", "--shuffle"], "unrecognized arguments: --shuffle"),
        (["--out", tmp_path / "o"], "--train"),
        (["--train", tmp_path / "nope.tsv", "--out", tmp_path / "o"], "--train"),
        (["--train", train, "--test", tmp_path / "x.json", "--out", tmp_path / "o"], "--test"),
        (["--train", train, "--out", taken], "--out"),
        (["--train", train, "--valid", train, "--valid-fraction", "0.2", "--out", tmp_path / "o"], "--valid-fraction"),
        (["--train", train, "--valid-fraction", "1.5", "--out", tmp_path / "o"], "--valid-fraction"),
        (["--train", train, "--out", tmp_path / "o", "--encoder", tmp_path], "--encoder"),
        (["--train", ours / "t.tsv", "--out", ours], "--train"),   # input inside --out
    ]
    _write(tmp_path / "x.json", "{}")
    for argv, option in cases:
        rc, stdout, stderr = _prepare(capsys, *(argv if "--encoder" in argv else argv + enc))
        assert rc == 2, argv
        assert stderr.count("\n") == 1 and stderr.startswith("prepare-own-data: error:") and option in stderr, stderr
    assert not (tmp_path / "o").exists() and sorted(p.name for p in taken.iterdir()) == ["notes.md"]


def test_single_class_refused(tiny_encoder, tmp_path, capsys):  # noqa: F811
    train = _write(tmp_path / "t.tsv", "1\tthe movie\n1\tthe plot\n1\tthe cast\n")
    rc, _, stderr = _prepare(capsys, "--train", train, "--out", tmp_path / "o", "--encoder", tiny_encoder.model_dir)
    assert rc == 2 and "at least 2 classes" in stderr and not (tmp_path / "o").exists()


def test_script_refuses_a_mostly_bad_file(tiny_encoder, tmp_path):  # noqa: F811
    """Through the bash wrapper: relative paths from the caller's folder, exit code 2, nothing written."""
    _write(tmp_path / "t.csv", "label,text\n1,the movie\n0,the plot,extra\n,the cast\n1\n0,the story\n")
    enc = str(tiny_encoder.model_dir)
    proc = subprocess.run(["bash", str(SCRIPT), "--train", "t.csv", "--out", "data-bin/x", "--encoder", enc],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "--train t.csv: 3 of 5 rows are bad, refusing the file; first: line 3: 3 column(s)" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]
    proc = subprocess.run(["bash", str(SCRIPT), "--train", "t.csv", "--out", "o", "--bogus"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2 and "unrecognized arguments: --bogus" in proc.stderr


def test_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


# ------------------------------------------------------------------------------ fairseq-train on the result
def _pair_rows(rng, n):
    """3-class pairs from the fixture's sentence templates."""
    out = []
    for _ in range(n):
        (a, la), (b, lb) = tiny_sentence(rng, 12), tiny_sentence(rng, 12)
        out.append((("agree" if la == lb else "differ") if rng.random() < 0.8 else "other", a, b))
    return out


@pytest.mark.integration
def test_fairseq_train_runs_on_prepared_folders(tmp_path, capsys):
    enc = build_tiny_encoder(tmp_path / "enc", sizes=(4, 2, 2))
    rng = random.Random(3)
    for name, n in (("train", 48), ("test", 8)):
        _write(tmp_path / f"{name}.tsv", "".join("\t".join(r) + "\n" for r in _pair_rows(rng, n)))
    data = tmp_path / "data-bin" / "pairs"
    run_cli(["bash", SCRIPT, "--train", tmp_path / "train.tsv", "--test", tmp_path / "test.tsv",
             "--out", data, "--encoder", enc.model_dir])
    info = json.loads((data / "data.json").read_text())
    assert info["pairs"] and info["labels"] == ["agree", "differ", "other"]
    base = [data, "--user-dir", REPO / "user_dir", "--task", "sentence_prediction", *enc.model_args(),
            "--init-token", "0", "--separator-token", "2", "--num-classes", "3",
            "--restore-file", enc.checkpoint, "--reset-optimizer", "--reset-dataloader", "--reset-meters",
            "--criterion", "sentence_prediction", "--optimizer", "adam", "--lr", "1e-3", "--batch-size", "8",
            "--max-update", "2", "--required-batch-size-multiple", "1", "--num-workers", "0", "--cpu",
            "--save-dir", tmp_path / "ft", "--no-save", "--log-format", "simple", "--log-interval", "1"]
    log = run_cli(["fairseq-train", *base]).stdout
    assert re.search(r"num_updates[ =]2\b", log), log[-3000:]

    # regression: the printed next command itself (finetune-baseline.sh reads "regression" from the
    # folder), cut to one epoch
    reg = tmp_path / "data-bin" / "reg"
    rows = "".join(f"{rng.random() * 5:.2f}\t{tiny_sentence(rng)[0]}\n" for _ in range(24))
    assert own_data.main(["--train", str(_write(tmp_path / "r.tsv", rows)), "--out", str(reg), "--regression",
                          "--encoder", str(enc.model_dir)]) == 0
    nxt = json.loads((reg / "data.json").read_text())["next"].split(" && ")[-1]  # no "cd REPO &&"
    capsys.readouterr()
    words = shlex.split(nxt)
    assert words[-2:] == ["bash", "scripts/models/finetune-baseline.sh"]
    env = dict(w.split("=", 1) for w in words[:-2])
    env.update(EPOCHS="1", SAVE_DIR=str(tmp_path / "ft2"), THREADS="1")
    log = run_cli(["env", *(f"{k}={v}" for k, v in env.items()), "bash", "scripts/models/finetune-baseline.sh"]).stdout
    assert "--regression-target" not in log and "regression_target': True" in log, log[-3000:]
    result = json.loads((tmp_path / "ft2" / "result.json").read_text())
    assert result["dev_accuracy"] is None and result["dev_loss"] is not None
