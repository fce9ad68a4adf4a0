"""The two data preparation scripts end to end on tiny local inputs (no network)."""
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

sys.path.insert(0, str(REPO / "scripts" / "data"))
import de_en_offline as deo  # noqa: E402
import mt_text  # noqa: E402

SAMPLE = Path(__file__).with_name("sample_trans_de_en.txt")
OFFLINE = REPO / "scripts" / "data" / "prepare-de-en-offline.sh"
IWSLT = REPO / "scripts" / "data" / "prepare-iwslt14.sh"


def _run(script, env, **kw):
    """run_cli with extra environment variables (run_cli itself takes none)."""
    pairs = [f"{k}={v}" for k, v in {"PYTHON": sys.executable, **env}.items()]
    return run_cli(["env", *pairs, "bash", script], **kw)


def _load(prefix, dict_path):
    from fairseq.data import Dictionary, data_utils

    d = Dictionary.load(str(dict_path))
    ds = data_utils.load_indexed_dataset(str(prefix), d)
    assert ds is not None, prefix
    return d, [d.string(ds[i]) for i in range(len(ds))]


def _lines(path):
    return Path(path).read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("script", [OFFLINE, IWSLT])
def test_scripts_parse(script):
    subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.integration
def test_offline_pipeline_on_a_local_dictionary(tmp_path):
    out, cache = tmp_path / "data-bin", tmp_path / "cache"
    env = {"DE_EN_DICT": SAMPLE, "DE_EN_OUT": out, "DE_EN_CACHE": cache, "DE_EN_VALID": 3,
           "DE_EN_TEST": 3, "DE_EN_VOCAB": 150, "DE_EN_WORKERS": 1, "DE_EN_SEED": 7}
    first = _run(OFFLINE, env)
    assert "up to date" not in first.stdout

    stats = json.loads((out / "stats.json").read_text())
    assert stats["pairs"] == 33
    assert stats["split_sizes"] == {"train": 27, "valid": 3, "test": 3}
    for split, n in stats["split_sizes"].items():
        for lang in ("de", "en"):
            d, sents = _load(out / f"{split}.de-en.{lang}", out / f"dict.{lang}.txt")
            assert len(sents) == n
            bpe = _lines(cache / "bpe" / f"{split}.{lang}")
            if split == "train":
                # the binarised text is the BPE text; removing the markers (fairseq's
                # --remove-bpe) gives back the lowercased Moses-tokenised text
                assert sents == bpe
                assert [mt_text.remove_bpe(x) for x in sents] == _lines(cache / "tok" / f"train.{lang}")
            else:  # pieces never seen in train are <unk> in the dictionary
                assert [len(x.split()) for x in sents] == [len(x.split()) for x in bpe]
            assert all(x == x.lower() for x in bpe)
    assert _lines(out / "dict.de.txt") == _lines(out / "dict.en.txt")  # joined dictionary
    # the raw split holds every extracted pair exactly once
    raw = [p for s in ("train", "valid", "test")
           for p in zip(_lines(cache / "raw" / f"{s}.de"), _lines(cache / "raw" / f"{s}.en"))]
    with open(SAMPLE, encoding="utf-8") as f:
        assert sorted(raw) == sorted(deo.extract_pairs(f)[0])

    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    second = _run(OFFLINE, env)
    assert "up to date" in second.stdout
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == before


@pytest.mark.integration
def test_offline_script_reports_a_missing_dictionary(tmp_path):
    proc = _run(OFFLINE, {"DE_EN_DICT": tmp_path / "nope", "DE_EN_OUT": tmp_path / "o"}, check=False)
    assert proc.returncode != 0 and "is not a file" in proc.stdout


# ---------------------------------------------------------------- IWSLT'14 on a fake archive
TEST_SETS = ["TED.dev2010", "TEDX.dev2012", "TED.tst2010", "TED.tst2011", "TED.tst2012"]


def _fake_iwslt_archive(path):
    """A de-en.tgz shaped like the real one: train.tags with talk metadata, dev/test XML."""
    de_words = "Haus Baum Garten Stadt Fluss Berg Wasser Licht Tisch Stuhl".split()
    en_words = "house tree garden town river mountain water light table chair".split()
    de, en = [], []
    for talk in range(3):
        meta = [f"<url>http://www.ted.com/talks/{talk}.html</url>", f"<keywords>talk {talk}</keywords>",
                f"<speaker>Speaker {talk}</speaker>", f"<talkid>{talk}</talkid>"]
        de += meta + [f"<title>Vortrag Nummer {talk}</title>",
                      f"<description>Beschreibung {talk}</description>"]
        en += meta + [f"<title>Talk number {talk}</title>", f"<description>Description {talk}</description>"]
        for i in range(20):
            w = (talk * 20 + i) % 10
            de.append(f"Das {de_words[w]} ist schön, sagte Anna {talk * 20 + i}.")
            en.append(f"The {en_words[w]} is nice, Anna said {talk * 20 + i}.")
    # a pair that clean-corpus-n drops: length ratio above 1.5
    de.append("Ja.")
    en.append("Yes , well , I do not really think so at all .")
    files = {"de-en/train.tags.de-en.de": de, "de-en/train.tags.de-en.en": en}
    for k, name in enumerate(TEST_SETS):
        for lang, text in (("de", f"Satz {name} ist hier’s."), ("en", f"Sentence {name} is here’s.")):
            files[f"de-en/IWSLT14.{name}.de-en.{lang}.xml"] = [
                '<?xml version="1.0" encoding="UTF-8"?>', "<mteval>", f'<doc docid="{k}">',
                f'<seg id="1"> {text} </seg>', f'<seg id="2">{text.upper()}</seg>', "</doc>", "</mteval>"]
    src = path.parent / "src"
    for name, lines in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    with tarfile.open(path, "w:gz") as tar:
        tar.add(src / "de-en", arcname="de-en")
    return len([x for x in de if not x.startswith(("<url>", "<keywords>", "<talkid>"))])


@pytest.mark.integration
def test_iwslt_recipe_on_a_fake_archive(tmp_path):
    tgz, out, cache = tmp_path / "de-en.tgz", tmp_path / "data-bin", tmp_path / "cache"
    n_lines = _fake_iwslt_archive(tgz)
    env = {"IWSLT14_TGZ": tgz, "IWSLT14_OUT": out, "IWSLT14_CACHE": cache,
           "IWSLT14_BPE_TOKENS": 60, "IWSLT14_WORKERS": 1, "IWSLT14_URL": "http://127.0.0.1:9/x"}
    _run(IWSLT, env)
    prep = cache / "iwslt14.tokenized.de-en"
    tok = {s: [mt_text.remove_bpe(x) for x in _lines(prep / f"{s}.en")] for s in ("train", "valid", "test")}
    # metadata: <url>/<keywords>/<talkid> lines dropped, <speaker> kept, title text kept
    kept = n_lines - 1  # the unbalanced pair is cleaned away
    assert len(tok["valid"]) == kept // 23 and len(tok["train"]) == kept - kept // 23
    assert "talk number 1" in tok["train"] + tok["valid"]
    assert not any("ted.com" in x for x in tok["train"] + tok["valid"])
    assert not any(x.startswith("yes") for x in tok["train"] + tok["valid"])
    # test: the five dev/test sets in the recipe's order, tokenised, escaped, lowercased, ’ -> '
    assert tok["test"] == [x for name in TEST_SETS
                           for x in [f"sentence {name.lower()} is here &apos;s ."] * 2]
    for split, n in (("train", len(tok["train"])), ("test", 10)):
        for lang in ("de", "en"):
            _, sents = _load(out / f"{split}.de-en.{lang}", out / f"dict.{lang}.txt")
            assert len(sents) == n
    assert "up to date" in _run(IWSLT, env).stdout


@pytest.mark.integration
def test_iwslt_recipe_fails_early_without_internet(tmp_path):
    env = {"IWSLT14_TGZ": tmp_path / "none.tgz", "IWSLT14_OUT": tmp_path / "out",
           "IWSLT14_CACHE": tmp_path / "cache", "IWSLT14_URL": "http://127.0.0.1:9/de-en.tgz"}
    proc = _run(IWSLT, env, check=False, timeout=120)
    assert proc.returncode != 0
    assert "could not download" in proc.stdout and "prepare-de-en-offline.sh" in proc.stdout
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()
