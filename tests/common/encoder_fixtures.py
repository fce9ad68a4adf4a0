"""Shared test fixtures for the encoder methods (LTP, TR-BERT, Kprune): a tiny random BERT written
to disk, its fairseq conversion, and tiny sentence_prediction data in the real layout.

Everything goes through the production code paths (``bert_conversion.convert``,
``sentence_data`` tokenisation, ``fairseq-preprocess``), so a method's tests exercise the same
files a user gets from ``prepare-minilm.sh`` / ``prepare-sentiment.sh``, only ~1000x smaller.

Use in a test module (or your own conftest.py)::

    from tests.common.encoder_fixtures import tiny_encoder  # noqa: F401  (pytest fixture)

    @pytest.mark.integration
    def test_something(tiny_encoder, tmp_path, cli):
        cli(["fairseq-train", *tiny_encoder.train_args(tmp_path / "ckpt", max_update=4)])
        cli(["fairseq-validate", *tiny_encoder.validate_args(tmp_path / "ckpt/checkpoint_last.pt")])

or build one by hand: ``enc = build_tiny_encoder(tmp_path)``. ``tiny_encoder`` is session-scoped
(built once per pytest worker, in about a second); treat its files as read-only.
"""
import json
import logging
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "scripts" / "data") not in sys.path:
    sys.path.insert(0, str(REPO / "scripts" / "data"))

import sentence_data  # noqa: E402  (scripts/data/sentence_data.py)

from user_dir.common.bert_conversion import convert  # noqa: E402

TINY_SHAPE = {"layers": 2, "dim": 32, "heads": 4, "ffn": 64, "positions": 64}

# The sentence templates' words; every word is a whole WordPiece so tokenisation is predictable.
POSITIVE = ["good", "great", "wonderful", "fun", "moving", "charming"]
NEGATIVE = ["bad", "awful", "boring", "dull", "terrible", "tedious"]
SUBJECTS = ["the movie", "this film", "the plot", "the acting", "the story", "the ending"]
VERBS = ["was", "is", "seemed", "felt"]
ADVERBS = ["very", "really", "quite", "rather"]
FILLERS = ["and", "i", "think", "overall", "with", "a", "cast", "of", "actors", "in", "it",
           "the", "director", "made", "long", "scenes", "music", "for", "two", "hours"]
PUNCT = [".", "!", ","]
# BERT special tokens deliberately out of fairseq's order (and an [unused0] among them) so the
# converter's re-ordering is actually tested.
SPECIALS = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SUFFIXES = ["##s", "##ly", "##ing", "##ed"]


def tiny_vocab():
    words = []
    for group in (POSITIVE, NEGATIVE, [w for s in SUBJECTS for w in s.split()], VERBS, ADVERBS, FILLERS):
        for w in group:
            if w not in words:
                words.append(w)
    letters = [c for c in "abcdefghijklmnopqrstuvwxyz" if c not in words]
    return SPECIALS + words + PUNCT + letters + SUFFIXES + ["##" + c for c in "aeiot"]


def write_tiny_bert(bert_dir, layers=2, dim=32, heads=4, ffn=64, positions=64, seed=0,
                    mlm_head=False, hidden_act="gelu", vocab=None):
    """Write a random BERT (model.safetensors, vocab.txt, config.json) to ``bert_dir``.

    Weights are drawn larger than BERT's 0.02 init so every layer changes the hidden states
    visibly (a mapping error cannot hide behind near-identity layers). ``mlm_head=True`` writes a
    ``BertForMaskedLM``-style checkpoint (``bert.`` prefix + ``cls.predictions.*``).
    """
    from safetensors.torch import save_file

    bert_dir = Path(bert_dir)
    bert_dir.mkdir(parents=True, exist_ok=True)
    vocab = vocab or tiny_vocab()
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, std=0.1, mean=0.0):
        return torch.randn(*shape, generator=g) * std + mean

    t = {
        "embeddings.word_embeddings.weight": rnd(len(vocab), dim, std=0.5),
        "embeddings.position_embeddings.weight": rnd(positions, dim, std=0.5),
        "embeddings.token_type_embeddings.weight": rnd(2, dim, std=0.5),
        "embeddings.LayerNorm.weight": rnd(dim, mean=1.0),
        "embeddings.LayerNorm.bias": rnd(dim),
        "embeddings.position_ids": torch.arange(positions).unsqueeze(0),  # HF stores this buffer
        "pooler.dense.weight": rnd(dim, dim),
        "pooler.dense.bias": rnd(dim),
    }
    shapes = {
        "attention.self.query": (dim, dim), "attention.self.key": (dim, dim),
        "attention.self.value": (dim, dim), "attention.output.dense": (dim, dim),
        "intermediate.dense": (ffn, dim), "output.dense": (dim, ffn),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name, shape in shapes.items():
            t[p + name + ".weight"] = rnd(*shape, std=shape[1] ** -0.5)
            t[p + name + ".bias"] = rnd(shape[0])
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + ln + ".weight"] = rnd(dim, mean=1.0)
            t[p + ln + ".bias"] = rnd(dim)
    if mlm_head:
        t = {"bert." + k: v for k, v in t.items()}
        t.update({
            "cls.predictions.transform.dense.weight": rnd(dim, dim, std=dim ** -0.5),
            "cls.predictions.transform.dense.bias": rnd(dim),
            "cls.predictions.transform.LayerNorm.weight": rnd(dim, mean=1.0),
            "cls.predictions.transform.LayerNorm.bias": rnd(dim),
            "cls.predictions.bias": rnd(len(vocab)),
        })
    save_file({k: v.contiguous() for k, v in t.items()}, str(bert_dir / "model.safetensors"))
    (bert_dir / "vocab.txt").write_text("".join(v + "\n" for v in vocab), encoding="utf-8")
    config = {
        "architectures": ["BertForMaskedLM" if mlm_head else "BertModel"], "model_type": "bert",
        "hidden_size": dim, "num_hidden_layers": layers, "num_attention_heads": heads,
        "intermediate_size": ffn, "max_position_embeddings": positions, "vocab_size": len(vocab),
        "hidden_act": hidden_act, "layer_norm_eps": 1e-12, "type_vocab_size": 2,
        "position_embedding_type": "absolute", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "pad_token_id": 0,
    }
    (bert_dir / "config.json").write_text(json.dumps(config, indent=1))
    return bert_dir


def tiny_sentence(rng, max_words=40):
    """A templated review sentence and its label (1 iff its adjective is positive)."""
    label = rng.random() < 0.5
    adj = rng.choice(POSITIVE if label else NEGATIVE)
    words = rng.choice(SUBJECTS).split() + [rng.choice(VERBS)]
    if rng.random() < 0.5:
        words.append(rng.choice(ADVERBS))
    words.append(adj)
    # filler clauses of varying length give the batches mixed lengths (token pruning needs them)
    n_fill = rng.choice([0, 0, 2, 5, 10, 20])
    if n_fill:
        words += [","] + [rng.choice(FILLERS) for _ in range(n_fill)]
    words.append(rng.choice([".", "!"]))
    return " ".join(words[:max_words]), "1" if label else "0"


def write_tiny_text(text_dir, vocab_file, sizes=(96, 32, 32), seed=0, max_words=40):
    """Write sentence_data's text layout ({split}.input0/.label, label.dict.txt) for tiny data."""
    rng = random.Random(seed)
    splits = {s: [tiny_sentence(rng, max_words) for _ in range(n)]
              for s, n in zip(sentence_data.SPLITS, sizes)}
    tok = sentence_data.wordpiece_tokenizer(vocab_file)
    return sentence_data.write_splits(splits, tok, text_dir)


def fairseq_preprocess(text_dir, srcdict, dest):
    """In-process equivalent of scripts/lib/encoder.sh's ``binarise`` (saves two CLI start-ups)."""
    from fairseq import options
    from fairseq_cli import preprocess

    text_dir, dest = Path(text_dir), Path(dest)
    for key, dictionary in (("input0", srcdict), ("label", text_dir / "label.dict.txt")):
        parser = options.get_preprocessing_parser()
        args = parser.parse_args([
            "--only-source", "--srcdict", str(dictionary), "--workers", "1",
            "--trainpref", str(text_dir / f"train.{key}"), "--validpref", str(text_dir / f"valid.{key}"),
            "--testpref", str(text_dir / f"test.{key}"), "--destdir", str(dest / key),
        ])
        try:
            preprocess.main(args)
        finally:  # preprocess.main adds a FileHandler per call; do not leak them across fixtures
            for h in list(preprocess.logger.handlers):
                if isinstance(h, logging.FileHandler):
                    preprocess.logger.removeHandler(h)
                    h.close()
    return dest


@dataclass
class TinyEncoder:
    """Paths and command-line pieces of a tiny converted encoder + data."""
    root: Path
    bert_dir: Path      # model.safetensors, vocab.txt, config.json
    model_dir: Path     # converted: model.pt, dict.txt, vocab.txt
    data_dir: Path      # sentence_prediction layout: input0/, label/ (train, valid, test)
    arch: str = "prunable_roberta_minilm"
    shape: dict = field(default_factory=lambda: dict(TINY_SHAPE))

    @property
    def checkpoint(self):
        return self.model_dir / "model.pt"

    def model_args(self, arch=None):
        """--arch and the dimension flags that make a RoBERTa arch match the tiny BERT."""
        s = self.shape
        return ["--arch", arch or self.arch, "--encoder-layers", str(s["layers"]),
                "--encoder-embed-dim", str(s["dim"]), "--encoder-ffn-embed-dim", str(s["ffn"]),
                "--encoder-attention-heads", str(s["heads"]), "--max-positions", str(s["positions"])]

    def task_args(self):
        return [str(self.data_dir), "--user-dir", str(REPO / "user_dir"), "--task", "sentence_prediction",
                "--init-token", "0", "--separator-token", "2", "--num-classes", "2",
                "--max-positions", str(self.shape["positions"])]

    def train_args(self, save_dir, max_update=4, arch=None, restore=None, lr="1e-3", batch_size=16,
                   extra=()):
        """A complete ``fairseq-train`` argument list (without the program name): restore the
        converted checkpoint, fine-tune ``max_update`` updates on CPU, save to ``save_dir``."""
        return [
            *self.task_args(), *self.model_args(arch),
            "--restore-file", str(restore or self.checkpoint),
            "--reset-optimizer", "--reset-dataloader", "--reset-meters", "--reset-lr-scheduler",
            "--criterion", "sentence_prediction", "--optimizer", "adam", "--lr", str(lr),
            "--lr-scheduler", "fixed", "--batch-size", str(batch_size), "--max-update", str(max_update),
            "--max-epoch", "100", "--required-batch-size-multiple", "1", "--num-workers", "0",
            "--best-checkpoint-metric", "accuracy", "--maximize-best-checkpoint-metric",
            "--no-epoch-checkpoints", "--save-dir", str(save_dir), "--cpu", "--seed", "1",
            "--log-format", "simple", "--log-interval", "1", *extra,
        ]

    def validate_args(self, path, subset="test", batch_size=16, extra=()):
        """A ``fairseq-validate`` argument list scoring checkpoint ``path`` on ``subset``."""
        return [str(self.data_dir), "--user-dir", str(REPO / "user_dir"), "--task", "sentence_prediction",
                "--criterion", "sentence_prediction", "--path", str(path), "--valid-subset", subset,
                "--batch-size", str(batch_size), "--num-workers", "0", "--cpu", "--log-format", "simple",
                # fairseq-validate's default multiple (8) drops a split's last partial batch
                "--required-batch-size-multiple", "1", *extra]


def build_tiny_encoder(root, arch="prunable_roberta_minilm", seed=0, sizes=(96, 32, 32), **shape):
    """Write a tiny BERT, convert it, and make tiny binarised data under ``root``."""
    root = Path(root)
    full_shape = dict(TINY_SHAPE, **shape)
    bert_dir = write_tiny_bert(root / "bert", seed=seed, **full_shape)
    model_dir = root / "model"
    convert(bert_dir, model_dir, arch=arch, log=lambda *_: None)
    write_tiny_text(root / "text", bert_dir / "vocab.txt", sizes=sizes, seed=seed,
                    max_words=full_shape["positions"] - 12)
    data_dir = fairseq_preprocess(root / "text", model_dir / "dict.txt", root / "data")
    return TinyEncoder(root=root, bert_dir=bert_dir, model_dir=model_dir, data_dir=data_dir,
                       arch=arch, shape=full_shape)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    """Session-wide tiny converted encoder + data (read-only; copy before modifying)."""
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny_encoder"))


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory):
    """Just a tiny random BERT folder (model.safetensors, vocab.txt, config.json)."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def tiny_classifier(tiny_encoder, tmp_path_factory):
    """``tiny_encoder`` fine-tuned for one update: the cheapest checkpoint that the methods and
    tools accept as a fine-tuned sentence classifier (read-only)."""
    from tests.conftest import run_cli

    save = tmp_path_factory.mktemp("tiny_classifier")
    run_cli(["fairseq-train", *tiny_encoder.train_args(save, max_update=1, extra=["--disable-validation"])])
    return save / "checkpoint_last.pt"
