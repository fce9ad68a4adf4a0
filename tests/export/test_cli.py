"""fairseq-compress-export on checkpoint files: the export folder, the model card, the method chain,
``--info`` and ``--check-parity``, for sentence and translation checkpoints."""
import json
import subprocess

import pytest

from tests.conftest import fairseq_env
from user_dir.export.cli import main


def _card(folder):
    return json.loads((folder / "model_card.json").read_text())


def test_composed_chain_exported_with_parity(chain, tmp_path, capsys):
    out = tmp_path / "ltp"
    assert main(["--path", str(chain.hard), "--out", str(out), "--check-parity", str(chain.data),
                 "--subset", "test"]) == 0
    assert {p.name for p in out.iterdir()} == {"model.onnx", "model_card.json", "parity.json", "dict.txt",
                                               "label_dict.txt", "vocab.txt"}
    card = _card(out)
    assert card["method_chain_text"] == ("pretrained encoder (prunable_roberta_minilm) -> fine-tune -> kprune 0.5 -> "
                                         "ltp soft (lambda 0.01, final threshold 0) -> ltp hard")
    assert [s["checkpoint"] for s in card["method_chain"]][-3:] == [str(chain.kprune), str(chain.soft), str(chain.hard)]
    assert card["layers"] == [{"heads": 0, "ffn": 40}, {"heads": 3, "ffn": 0}]
    pruning = card["token_pruning"]
    assert pruning["method"] == "ltp" and pruning["pruning_layers"] == [1]
    assert pruning["thresholds"] == [None, pytest.approx(0.07)]
    assert card["flops"]["macs_per_example"] is None and card["flops"]["macs_all_tokens"] > 0
    assert card["vocabulary"]["labels"] == ["0", "1"]
    assert card["vocabulary"]["tokenizer"] == {"kind": "wordpiece", "files": ["vocab.txt"], "lowercase": True,
                                               "source": str(chain.enc.model_dir)}
    assert card["inputs"]["src_tokens"]["pad"] == 1 and card["outputs"]["logits"]["shape"] == ["batch", 2]
    parity = card["parity"]
    assert parity["passed"] and parity["examples"] == 32 and parity["argmax_agreement"] == 1.0
    assert parity["max_abs_diff"] < 1e-4 and 0 < parity["macs_per_example"] < card["flops"]["macs_all_tokens"]
    assert json.loads((out / "parity.json").read_text()) == parity
    assert "parity on test (32 examples)" in capsys.readouterr().out


def test_stock_roberta_file(chain, tmp_path):
    out = tmp_path / "stock"
    assert main(["--path", str(chain.stock), "--out", str(out), "--check-parity", str(chain.data)]) == 0
    card = _card(out)
    assert card["architecture"]["family"] == "roberta" and "prunable_roberta twin" in card["notes"][0]
    assert card["parity"]["passed"]


def test_kprune_card_counts_its_layers(exported):
    card = _card(exported["kprune"])
    flops = card["flops"]
    assert card["method_chain_text"].endswith("fine-tune -> kprune 0.5")
    assert flops["macs_per_example"] == flops["macs_all_tokens"] < flops["unpruned_architecture_macs"]
    assert 0 < flops["relative_to_unpruned"] < 1 and flops["flops_per_example"] == 2 * flops["macs_per_example"]
    assert card["parameters"] < _card(exported["base"])["parameters"]


def test_info_prints_the_card_and_writes_nothing(chain, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["--info", "--path", str(chain.kprune), "--length", "20"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["flops"]["length"] == 20 and card["layers"][0]["heads"] == 0
    assert "files" not in card and not list(tmp_path.iterdir())


def test_translation_checkpoint(tmp_path):
    from tests.export.checkpoints import translation_argv, write
    from tests.srp.synthetic import make_corpus

    data = make_corpus(tmp_path / "corpus", n_train=40, n_valid=8, n_test=8)
    ckpt, _ = write(tmp_path / "srp/checkpoint_best.pt", translation_argv(data))
    out = tmp_path / "export"
    assert main(["--path", str(ckpt), "--out", str(out), "--check-parity", str(data)]) == 0
    assert {"encoder.onnx", "decoder.onnx", "model_card.json", "dict.de.txt", "dict.en.txt"} <= {
        p.name for p in out.iterdir()}
    card = _card(out)
    assert card["task"] == "translation" and card["method_chain_text"] == "train"
    assert card["shapes"]["decoder"]["layers"][0]["cross_qk"] == 16
    parity = card["parity"]
    assert parity["passed"] and parity["identical_hypotheses"] == 1.0
    assert parity["bleu_pytorch"] == parity["bleu_onnxruntime"]


@pytest.mark.integration
def test_console_script(chain):
    script = subprocess.run([str(p) for p in ["fairseq-compress-export", "--info", "--path", chain.kprune]],
                            env=fairseq_env(), capture_output=True, text=True)
    assert script.returncode == 0, script.stderr[-2000:]
    assert json.loads(script.stdout)["method_chain_text"].endswith("kprune 0.5")
