"""Refused inputs name what is supported; the export folder is written whole or not at all."""
import json

import pytest
import torch

from user_dir.export.cli import main


def _error(capsys):
    return capsys.readouterr().err


def test_a_file_that_is_not_a_checkpoint(tmp_path, capsys):
    junk = tmp_path / "notes.pt"
    junk.write_text("not a model\n")
    assert main(["--path", str(junk), "--out", str(tmp_path / "out")]) == 2
    err = _error(capsys)
    assert "not a readable fairseq checkpoint" in err and "supported: sentence prediction" in err
    assert not (tmp_path / "out").exists()


def test_a_pickle_without_a_model(tmp_path, capsys):
    path = tmp_path / "state.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    assert main(["--info", "--path", str(path)]) == 2
    err = _error(capsys)
    assert "is not a fairseq model checkpoint (it holds weights;" in err and "supported: sentence" in err


def test_missing_checkpoint(tmp_path, capsys):
    assert main(["--info", "--path", str(tmp_path / "nope.pt")]) == 2
    assert "no such checkpoint file" in _error(capsys)


def _rewrite(src, dst, **model_cfg):
    from user_dir.common.checkpoint_info import cfg_set

    state = torch.load(src, weights_only=False)
    for key, value in model_cfg.items():  # a Namespace for legacy (argparse) architectures
        cfg_set(state["cfg"]["model"], key, value)
    torch.save(state, dst)
    return dst


def test_unknown_architecture(chain, tmp_path, capsys):
    path = _rewrite(chain.base, tmp_path / "lstm.pt", _name="lstm", arch="lstm")
    assert main(["--info", "--path", str(path)]) == 2
    err = _error(capsys)
    assert "holds a 'lstm' model" in err
    assert "roberta*, prunable_roberta*, ltp_roberta*, trbert_roberta*" in err and "srp* and transformer*" in err


def test_pretrained_encoder_without_a_head(chain, capsys):
    """The converted BERT is a masked_lm checkpoint: no classifier to export."""
    assert main(["--info", "--path", str(chain.enc.checkpoint)]) == 2
    assert "trained for task 'masked_lm'" in _error(capsys)


def test_data_folder_gone(chain, tmp_path, capsys):
    state = torch.load(chain.base, weights_only=False)
    state["cfg"]["task"]["data"] = str(tmp_path / "moved-away")
    path = tmp_path / "moved.pt"
    torch.save(state, path)
    assert main(["--info", "--path", str(path)]) == 2
    assert "pass --data DIR" in _error(capsys)
    assert main(["--info", "--path", str(path), "--data", str(chain.data)]) == 0


def test_failure_leaves_no_folder_and_keeps_the_previous_export(chain, exported, tmp_path, monkeypatch):
    import shutil

    from user_dir.export import sentence_graph

    def broken(model, head, dictionary, path, exporter="torchscript"):
        with open(path, "wb") as f:
            f.write(b"half a model")
        raise RuntimeError("exporter died")

    monkeypatch.setattr(sentence_graph, "export_sentence", broken)
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError, match="exporter died"):
        main(["--path", str(chain.base), "--out", str(fresh)])
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a temporary sibling

    previous = tmp_path / "previous"
    shutil.copytree(exported["kprune"], previous)
    before = {p.name: p.read_bytes() for p in previous.iterdir()}
    with pytest.raises(RuntimeError, match="exporter died"):
        main(["--path", str(chain.base), "--out", str(previous)])
    assert {p.name: p.read_bytes() for p in previous.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["previous"]


def test_an_earlier_export_is_replaced(chain, exported, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(exported["kprune"], out)
    assert main(["--path", str(chain.base), "--out", str(out)]) == 0
    assert json.loads((out / "model_card.json").read_text())["method_chain_text"].endswith("fine-tune")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_foreign_folder_is_not_overwritten(chain, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("important")
    assert main(["--path", str(chain.base), "--out", str(out)]) == 2
    assert "not an export" in _error(capsys) and (out / "thesis.tex").read_text() == "important"


def test_out_is_required_without_info(chain):
    with pytest.raises(SystemExit) as e:
        main(["--path", str(chain.base)])
    assert e.value.code == 2
