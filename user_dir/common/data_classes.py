"""What a prepared ``sentence_prediction`` folder predicts: how many classes, or regression.

Every script and tool reads the class count from the data instead of asking for it again, and an
explicit ``--num-classes``/``NUM_CLASSES`` that disagrees with the data is refused before any
training step (fairseq itself only fails at the first loss, with ``IndexError: Target 2 is out of
bounds`` and a ``crash.pt``).

Sources, in order: ``label/dict.txt`` (classification: one line per label, as fairseq-preprocess
writes it; the ``madeupwordNNNN`` entries it pads a dictionary with are not classes), else raw
``label/{split}.label`` files (regression: one or more floats per line, as fairseq's
sentence_prediction task reads them). ``data.json`` of ``scripts/data/prepare-own-data.sh`` must agree.

    python -m user_dir.common.data_classes DATA [--num-classes N] [--regression-target] [--shell]
"""
import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from typing import List, Optional

_PADDING_SYMBOL = re.compile(r"madeupword\d+")


class LabelSpecError(ValueError):
    """The data folder's labels are missing or disagree with what was asked for."""


@dataclass
class LabelSpec:
    num_classes: int  # classes, or values per example for regression
    regression: bool
    labels: Optional[List[str]]  # class symbols in class-index order (None for regression)

    def describe(self) -> str:
        if self.regression:
            return f"regression ({self.num_classes} value{'s' if self.num_classes != 1 else ''} per example)"
        shown = ", ".join(self.labels[:8]) + (", ..." if len(self.labels) > 8 else "")
        return f"{self.num_classes} classes ({shown})"


def dictionary_labels(dict_txt: str) -> List[str]:
    """Class symbols of a fairseq label dictionary, in index order, without padding entries."""
    labels = []
    with open(dict_txt, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            symbol = line.rsplit(" ", 1)[0] if " " in line else line
            if symbol.endswith(" #fairseq:overwrite"):
                symbol = symbol[: -len(" #fairseq:overwrite")]
            if _PADDING_SYMBOL.fullmatch(symbol):
                continue
            labels.append(symbol)
    return labels


def _regression_width(label_dir: str) -> Optional[int]:
    for split in ("train", "valid", "test"):
        path = os.path.join(label_dir, f"{split}.label")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        return len(line.split())
    return None


def label_spec(data_dir: str) -> LabelSpec:
    """The label set of ``data_dir``; raises :class:`LabelSpecError` when it has none."""
    if not os.path.isdir(data_dir):
        raise LabelSpecError(f"data: no such directory: {data_dir}")
    label_dir = os.path.join(data_dir, "label")
    if not os.path.isdir(label_dir):
        raise LabelSpecError(
            f"data: {data_dir} has no label/ folder: a sentence_prediction folder needs input0/ and label/ "
            "(scripts/data/prepare-own-data.sh, or fairseq-preprocess of the labels into label/)")
    dict_txt = os.path.join(label_dir, "dict.txt")
    if os.path.isfile(dict_txt):
        labels = dictionary_labels(dict_txt)
        if not labels:
            raise LabelSpecError(f"data: {dict_txt} lists no labels")
        spec = LabelSpec(len(labels), False, labels)
    else:
        width = _regression_width(label_dir)
        if width is None:
            raise LabelSpecError(
                f"data: {label_dir} has neither dict.txt (classification) nor {{train,valid}}.label "
                "(regression targets)")
        spec = LabelSpec(width, True, None)
    _check_data_json(data_dir, spec)
    return spec


def _check_data_json(data_dir: str, spec: LabelSpec) -> None:
    path = os.path.join(data_dir, "data.json")
    if not os.path.isfile(path):
        return
    try:
        info = json.load(open(path, encoding="utf-8"))
    except (OSError, ValueError):
        return  # not ours to judge; the label files are the truth fairseq reads
    if bool(info.get("regression", spec.regression)) != spec.regression or \
            int(info.get("num_classes", spec.num_classes)) != spec.num_classes:
        raise LabelSpecError(
            f"data: {path} says {info.get('num_classes')} classes (regression: {info.get('regression')}) "
            f"but label/ holds {spec.describe()}; prepare the folder again")


def check_against(spec: LabelSpec, data_dir: str, num_classes: Optional[int] = None,
                  regression: Optional[bool] = None, what: str = "--num-classes") -> None:
    """Refuse a class count (or regression flag) that disagrees with the data."""
    if regression is not None and bool(regression) != spec.regression:
        raise LabelSpecError(
            f"{'--regression-target' if regression else what}: {data_dir} holds {spec.describe()}; "
            + ("drop --regression-target" if regression else "add --regression-target"))
    if num_classes is not None and num_classes > 0 and int(num_classes) != spec.num_classes:
        raise LabelSpecError(
            f"{what}={num_classes} disagrees with {data_dir}: it holds {spec.describe()}; "
            f"leave it out (the scripts read it from the data) or use {spec.num_classes}")


def _safe(cfg, key, default):
    try:  # task configs interpolate some fields from sections that may be absent
        return getattr(cfg, key, default)
    except Exception:
        return default


def check_task(task) -> None:
    """At model build time: the configured class count must equal the task's label dictionary.

    Called by the prunable models' ``build_model`` (LTP and TR-BERT included), so bare
    ``fairseq-train``/``fairseq-validate`` refuse a mismatch before the first step, and a
    checkpoint loaded with a data folder of another label set names both.
    """
    cfg = getattr(task, "cfg", None)
    label_dict = getattr(task, "_label_dictionary", None)
    if cfg is None or label_dict is None or _safe(cfg, "regression_target", False):
        return
    num_classes = _safe(cfg, "num_classes", None)
    # sentence_prediction's load_dictionary appends <mask> to every dictionary, the label one too
    labels = [s for s in label_dict.symbols[label_dict.nspecial:]
              if s != "<mask>" and not _PADDING_SYMBOL.fullmatch(s)]
    if num_classes is not None and num_classes > 0 and labels and num_classes != len(labels):
        shown = ", ".join(labels[:8]) + (", ..." if len(labels) > 8 else "")
        raise LabelSpecError(
            f"--num-classes={num_classes} (the model's classification head) does not match "
            f"{_safe(cfg, 'data', 'the data')}/label/dict.txt, which has {len(labels)} classes ({shown})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m user_dir.common.data_classes", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="a sentence_prediction data folder (input0/, label/)")
    p.add_argument("--num-classes", type=int, metavar="N",
                   help="the class count given by the user; refused when it disagrees with the data")
    p.add_argument("--regression-target", action="store_true", default=None,
                   help="the user asked for regression; refused on classification data")
    p.add_argument("--what", default="--num-classes", help="how to name the option in errors")
    p.add_argument("--shell", action="store_true",
                   help="print NUM_CLASSES=... REGRESSION=0|1 for a shell `eval`")
    args = p.parse_args(argv)
    try:
        spec = label_spec(args.data)
        check_against(spec, args.data, args.num_classes, args.regression_target, args.what)
    except LabelSpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.shell:
        print(f"NUM_CLASSES={spec.num_classes} REGRESSION={int(spec.regression)}")
    else:
        print(spec.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
