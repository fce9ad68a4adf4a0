"""Encoders for prepare-own-data.sh: which tokeniser an encoder folder asks for, tokenising texts
into the space-separated symbols that ``fairseq-preprocess --srcdict DIR/dict.txt`` binarises,
truncation to the model's positions, and what the fine-tuning command needs to know about the
folder's pretrained checkpoint.

Two kinds of folder:
  wordpiece  vocab.txt + dict.txt (+ model.pt): a BERT converted by convert_bert_to_fairseq.py,
             e.g. the embedded MiniLM in checkpoints/minilm. Lowercased unless the vocabulary has
             upper-case entries (a cased BERT).
  gpt2       encoder.json + vocab.bpe + dict.txt (+ model.pt): fairseq's RoBERTa files; text is
             encoded with fairseq's own GPT-2 BPE (fairseq.data.encoders.gpt2_bpe_utils) into BPE
             ids, exactly as fairseq's RoBERTa GLUE recipe does (multiprocessing_bpe_encoder).
"""
from dataclasses import dataclass
from pathlib import Path

import sentence_data
from own_data_rows import DataError

WORDPIECE_FILES = ("vocab.txt", "dict.txt")
GPT2_FILES = ("encoder.json", "vocab.bpe", "dict.txt")
MINILM_ARCH = "prunable_roberta_minilm"
DEFAULT_POSITIONS = 512


@dataclass
class Encoder:
    dir: Path
    kind: str               # "wordpiece" | "gpt2"
    lowercase: bool = None  # wordpiece only

    @property
    def dict_txt(self):
        return self.dir / "dict.txt"

    def describe(self):
        if self.kind == "gpt2":
            return f"{self.dir} (GPT-2 BPE, fairseq RoBERTa)"
        return f"{self.dir} (WordPiece, {'lowercased' if self.lowercase else 'cased'})"


def detect(folder):
    """The Encoder of ``folder``, or DataError naming the files that are missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"--encoder {folder}: no such folder")
    if all((folder / f).is_file() for f in GPT2_FILES):
        return Encoder(folder, "gpt2")
    if all((folder / f).is_file() for f in WORDPIECE_FILES):
        return Encoder(folder, "wordpiece", lowercase=not vocab_is_cased(folder / "vocab.txt"))
    raise DataError(f"--encoder {folder}: needs {' + '.join(WORDPIECE_FILES)} (a converted BERT, "
                    f"from convert_bert_to_fairseq.py) or {' + '.join(GPT2_FILES)} (fairseq RoBERTa)")


def vocab_is_cased(vocab_file):
    """True when a WordPiece vocabulary has upper-case entries other than [SPECIAL] tokens."""
    with open(vocab_file, encoding="utf-8") as f:
        for line in f:
            tok = line.strip()
            if not (tok.startswith("[") and tok.endswith("]")) and tok != tok.lower():
                return True
    return False


def tokenize(encoder, texts):
    """One list of symbols per text (WordPiece pieces, [UNK] as <unk>; or GPT-2 BPE ids)."""
    if encoder.kind == "wordpiece":
        tok = sentence_data.wordpiece_tokenizer(encoder.dir / "vocab.txt", lowercase=encoder.lowercase)
        lines, _ = sentence_data.tokenize_lines(tok, texts)
        return [line.split() for line in lines]
    from fairseq.data.encoders.gpt2_bpe_utils import get_encoder

    bpe = get_encoder(str(encoder.dir / "encoder.json"), str(encoder.dir / "vocab.bpe"))
    try:
        return [[str(i) for i in bpe.encode(t.strip())] for t in texts]
    except KeyError as e:
        raise DataError(f"--encoder {encoder.dir}: encoder.json has no entry for BPE symbol {e} "
                        "(encoder.json and vocab.bpe do not belong together)") from None


def truncate(a, b, max_tokens):
    """Cut one example to fit the model: a single text to ``max_tokens`` symbols (<s> and </s>
    come on top); a pair to ``max_tokens - 2`` symbols together (fairseq adds <s>, </s>, the
    separator </s> and </s>), always shortening the longer text first. Returns (a, b, cut)."""
    if b is None:
        return a[:max_tokens], None, len(a) > max_tokens
    budget = max_tokens - 2
    if len(a) + len(b) <= budget:
        return a, b, False
    a, b = list(a), list(b)
    while len(a) + len(b) > budget:
        (a if len(a) >= len(b) else b).pop()
    return a, b, True


def dict_symbols(dict_txt):
    """The symbols listed in a fairseq dict.txt (``symbol count [#fairseq:overwrite]`` lines);
    anything else, <unk> included, is binarised as <unk>."""
    symbols = set()
    with open(dict_txt, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.endswith(" #fairseq:overwrite"):
                line = line[: -len(" #fairseq:overwrite")]
            if line.strip():
                symbols.add(line.rsplit(" ", 1)[0])
    return symbols


@dataclass
class Checkpoint:
    """What the fine-tuning command needs: restore file, arch, positions, shape flags."""
    path: Path
    exists: bool
    arch: str
    positions: int
    model_args: tuple = ()
    known: bool = False     # read from the checkpoint's cfg (False: assumed)


def checkpoint_info(encoder):
    """Read arch and shape from ``DIR/model.pt``'s cfg (converted checkpoints record every
    dimension); fall back to roberta_base for a GPT-2 folder and MiniLM's arch otherwise."""
    path = encoder.dir / "model.pt"
    fallback = "roberta_base" if encoder.kind == "gpt2" else MINILM_ARCH
    info = Checkpoint(path, path.is_file(), fallback, DEFAULT_POSITIONS)
    if not info.exists:
        return info
    try:
        import torch

        model = torch.load(path, map_location="cpu", weights_only=True, mmap=True)["cfg"]["model"]
        info.arch = model.get("arch") or model["_name"]
        info.positions = int(model["max_positions"])
        info.model_args = (
            "--encoder-layers", str(model["encoder_layers"]),
            "--encoder-embed-dim", str(model["encoder_embed_dim"]),
            "--encoder-ffn-embed-dim", str(model["encoder_ffn_embed_dim"]),
            "--encoder-attention-heads", str(model["encoder_attention_heads"]))
        info.known = True
    except Exception:  # an older or foreign checkpoint (pickled args): keep the assumptions
        pass
    return info


def encoder_json(encoder, checkpoint):
    """The ``encoder`` entry of data.json."""
    out = {"dir": str(encoder.dir), "kind": encoder.kind, "dict": str(encoder.dict_txt),
           "checkpoint": str(checkpoint.path) if checkpoint.exists else None,
           "arch": checkpoint.arch, "max_positions": checkpoint.positions}
    if encoder.kind == "wordpiece":
        out["lowercase"] = encoder.lowercase
    return out
