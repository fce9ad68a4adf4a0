"""A tiny synthetic translation corpus, binarised with the stock ``fairseq-preprocess``.

The target is a word-by-word mapping of the source, so a few updates of a tiny model learn something;
the content does not matter to the tests, only that the data goes through the real fairseq pipeline.
"""
import random
from pathlib import Path

from tests.conftest import run_cli

N_WORDS = 24


def _word(prefix, w, bpe):
    # with bpe, two-digit words are written as two subwords in subword-nmt notation ("z1@@ 3")
    return f"{prefix}{w // 10}@@ {w % 10}" if bpe and w >= 10 else f"{prefix}{w}"


def _pair(rng, bpe=False):
    n = rng.randint(3, 8)
    src = [rng.randrange(N_WORDS) for _ in range(n)]
    return (" ".join(_word("q", w, bpe) for w in src),
            " ".join(_word("z", (w * 7) % N_WORDS, bpe) for w in src))


def make_corpus(root: Path, n_train=240, n_valid=24, n_test=24, seed=0, bpe=False) -> Path:
    """``bpe``: words of two digits split into subwords with "@@ " markers, so that
    ``--remove-bpe`` has something to remove."""
    rng = random.Random(seed)
    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("valid", n_valid), ("test", n_test)):
        pairs = [_pair(rng, bpe) for _ in range(n)]
        (raw / f"{split}.de").write_text("".join(p[0] + "\n" for p in pairs))
        (raw / f"{split}.en").write_text("".join(p[1] + "\n" for p in pairs))
    out = root / "bin"
    run_cli(["fairseq-preprocess", "--source-lang", "de", "--target-lang", "en",
             "--trainpref", raw / "train", "--validpref", raw / "valid", "--testpref", raw / "test",
             "--destdir", out, "--workers", "1"])
    return out
