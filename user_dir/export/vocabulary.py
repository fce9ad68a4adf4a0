"""The vocabulary files an export ships, so that DIR alone turns text into the model's inputs.

* sentence models: the fairseq dictionary (``dict.txt``: token ids are 4 + line index, after
  ``<s> <pad> </s> <unk>``), the label dictionary (class index -> label) and the tokenizer the data
  was made with: a BERT WordPiece ``vocab.txt`` (the embedded MiniLM, converted BERTs) or fairseq
  RoBERTa's GPT-2 BPE files. The data folder does not hold the tokenizer, so it is looked up in
  ``--vocab``, the data folder's ``data.json`` (``prepare-own-data.sh``), and the folders of the
  checkpoints of the method chain (the pretrained encoder's folder, e.g. ``checkpoints/minilm``).
* translation models: both fairseq dictionaries and the data folder's BPE model (``spm.model`` or
  subword-nmt codes) when it has one.
"""
import json
import os
import shutil
from pathlib import Path
from typing import List, Optional

REPO = str(Path(__file__).resolve().parents[2])
WORDPIECE = ("vocab.txt",)
GPT2 = ("encoder.json", "vocab.bpe")
BPE_MODELS = ("spm.model", "sentencepiece.bpe.model", "code", "codes", "bpecodes")


def is_lowercase_vocab(vocab_txt: str) -> bool:
    """True unless a WordPiece entry other than a [SPECIAL] token has upper-case letters (cased BERT)."""
    with open(vocab_txt, encoding="utf-8") as f:
        return not any(t != t.lower() for t in (line.strip() for line in f)
                       if not (t.startswith("[") and t.endswith("]")))


def _tokenizer_in(folder: str) -> Optional[dict]:
    if all(os.path.isfile(os.path.join(folder, f)) for f in GPT2):
        return {"kind": "gpt2", "folder": folder, "files": list(GPT2)}
    if all(os.path.isfile(os.path.join(folder, f)) for f in WORDPIECE):
        return {"kind": "wordpiece", "folder": folder, "files": list(WORDPIECE),
                "lowercase": is_lowercase_vocab(os.path.join(folder, WORDPIECE[0]))}
    return None


def find_tokenizer(data: str, chain: List[dict], vocab: Optional[str] = None) -> Optional[dict]:
    """Where the tokenizer files are (see the module docstring), or None."""
    candidates = []
    if vocab:
        candidates.append(os.path.dirname(vocab) if os.path.isfile(vocab) else vocab)
    try:
        info = json.loads(Path(data, "data.json").read_text(encoding="utf-8"))
        candidates.append((info.get("encoder") or {}).get("dir"))
    except (OSError, ValueError, AttributeError):
        pass
    candidates += [os.path.dirname(step["checkpoint"]) for step in chain]
    for folder in candidates:
        if folder and os.path.isdir(folder):
            found = _tokenizer_in(folder)
            if found:
                return found
    return None


def copy_sentence_vocabulary(data: str, dest: str, tokenizer: Optional[dict]) -> dict:
    from user_dir.common.data_classes import label_spec

    shutil.copyfile(os.path.join(data, "input0", "dict.txt"), os.path.join(dest, "dict.txt"))
    spec = label_spec(data)
    out = {"dict": "dict.txt", "regression": spec.regression, "labels": spec.labels}
    if not spec.regression:
        shutil.copyfile(os.path.join(data, "label", "dict.txt"), os.path.join(dest, "label_dict.txt"))
        out["label_dict"] = "label_dict.txt"
    if tokenizer is None:
        out["tokenizer"] = None
        out["tokenizer_note"] = ("no tokenizer files found: pass --vocab (a BERT vocab.txt or the folder of "
                                 "fairseq RoBERTa's encoder.json/vocab.bpe) to ship them")
        return out
    for name in tokenizer["files"]:
        shutil.copyfile(os.path.join(tokenizer["folder"], name), os.path.join(dest, name))
    out["tokenizer"] = {k: v for k, v in tokenizer.items() if k != "folder"}
    out["tokenizer"]["source"] = tokenizer["folder"]
    return out


def copy_translation_vocabulary(data: str, dest: str, task) -> dict:
    src, tgt = task.cfg.source_lang, task.cfg.target_lang
    out = {"source_lang": src, "target_lang": tgt, "source_dict": f"dict.{src}.txt",
           "target_dict": f"dict.{tgt}.txt", "bpe": []}
    for name in (out["source_dict"], out["target_dict"]):
        shutil.copyfile(os.path.join(data, name), os.path.join(dest, name))
    for name in BPE_MODELS:
        if os.path.isfile(os.path.join(data, name)):
            shutil.copyfile(os.path.join(data, name), os.path.join(dest, name))
            out["bpe"].append(name)
    out["note"] = ("input: source text prepared as the training data was (tokenised, then the BPE above); "
                   "output: target BPE symbols, joined by removing '@@ ' (fairseq-generate --remove-bpe)")
    return out
