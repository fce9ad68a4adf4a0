"""The class count (or regression) of a data folder, read from its label/ files."""
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO
from user_dir.common.data_classes import LabelSpecError, check_against, check_task, dictionary_labels, label_spec


def _folder(root, dict_lines=None, regression_lines=None, data_json=None):
    (root / "label").mkdir(parents=True)
    if dict_lines is not None:
        (root / "label" / "dict.txt").write_text("".join(line + "\n" for line in dict_lines))
    if regression_lines is not None:
        (root / "label" / "train.label").write_text("".join(line + "\n" for line in regression_lines))
    if data_json is not None:
        (root / "data.json").write_text(json.dumps(data_json))
    return root


def test_labels_without_fairseq_padding(tmp_path):
    # fairseq-preprocess without --srcdict pads a dictionary to a multiple of 8 with madeupwords
    d = _folder(tmp_path / "a", ["neg 40", "pos 38", "neutral 2", "madeupword0000 0", "madeupword0001 0"])
    assert dictionary_labels(d / "label" / "dict.txt") == ["neg", "pos", "neutral"]
    spec = label_spec(str(d))
    assert (spec.num_classes, spec.regression, spec.labels) == (3, False, ["neg", "pos", "neutral"])
    assert spec.describe() == "3 classes (neg, pos, neutral)"


def test_regression_width_and_data_json(tmp_path):
    spec = label_spec(str(_folder(tmp_path / "r", regression_lines=["", "0.5 1.5", "2 3"])))
    assert (spec.num_classes, spec.regression) == (2, True)
    with pytest.raises(LabelSpecError, match=r"data\.json says 4 classes .* but label/ holds 2 classes"):
        label_spec(str(_folder(tmp_path / "j", ["0 1", "1 1"], data_json={"num_classes": 4, "regression": False})))


def test_missing_and_empty(tmp_path):
    (tmp_path / "x" / "input0").mkdir(parents=True)
    with pytest.raises(LabelSpecError, match=r"has no label/ folder"):
        label_spec(str(tmp_path / "x"))
    with pytest.raises(LabelSpecError, match=r"lists no labels"):
        label_spec(str(_folder(tmp_path / "e", [])))
    with pytest.raises(LabelSpecError, match=r"neither dict\.txt .* nor"):
        label_spec(str(_folder(tmp_path / "n")))


def test_explicit_count_must_agree(tmp_path):
    d = str(_folder(tmp_path / "a", ["0 5", "1 5"]))
    spec = label_spec(d)
    check_against(spec, d, 2)
    check_against(spec, d, None)
    with pytest.raises(LabelSpecError, match=r"^NUM_CLASSES=3 disagrees with .*: it holds 2 classes \(0, 1\)"):
        check_against(spec, d, 3, what="NUM_CLASSES")
    with pytest.raises(LabelSpecError, match=r"^--regression-target: .* holds 2 classes"):
        check_against(spec, d, None, regression=True)


def test_check_task_against_the_label_dictionary():
    from fairseq.data import Dictionary

    class Task:
        def __init__(self, num_classes, symbols):
            self.cfg = type("Cfg", (), {"num_classes": num_classes, "regression_target": False, "data": "D"})()
            self._label_dictionary = Dictionary()
            for s in symbols:
                self._label_dictionary.add_symbol(s)

    check_task(Task(2, ["0", "1", "<mask>"]))  # sentence_prediction adds <mask> to every dictionary
    with pytest.raises(LabelSpecError, match=r"--num-classes=3 .* does not match D/label/dict\.txt, which has "
                                             r"2 classes \(0, 1\)"):
        check_task(Task(3, ["0", "1", "<mask>"]))


def test_command_line(tmp_path):
    d = _folder(tmp_path / "a", ["a 1", "b 1", "c 1"])
    script = REPO / "user_dir" / "common" / "data_classes.py"
    out = subprocess.run([sys.executable, script, d, "--shell"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "NUM_CLASSES=3 REGRESSION=0"
    out = subprocess.run([sys.executable, script, d, "--num-classes", "2", "--what", "NUM_CLASSES"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.startswith("error: NUM_CLASSES=2 disagrees with")
