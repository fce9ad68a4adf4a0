"""Checkpoint files of a whole method chain on the tiny encoder's data, and their exports.

pretrained tiny BERT -> fine-tune -> kprune 0.5 (a layer without heads, one without FFN) -> ltp soft
-> ltp hard, plus the same fine-tuned model as a stock fairseq ``roberta``: written once per session
(in-process, see ``checkpoints.py``), read-only for the tests.
"""
from types import SimpleNamespace

import pytest
import torch

from tests.export.checkpoints import sentence_argv, write

KPRUNE = ("--encoder-layer-heads", "0,3", "--encoder-layer-ffn-dims", "40,0")
LTP = ("--final-token-threshold", "0", "--ltp-score-length", "16")


@pytest.fixture(scope="session")
def chain(tiny_encoder, tmp_path_factory):  # tiny_encoder: tests/conftest.py
    enc = tiny_encoder
    root = tmp_path_factory.mktemp("chain")
    base, model = write(root / "base/checkpoint_best.pt",
                        sentence_argv(enc, "prunable_roberta_minilm", restore=enc.checkpoint))
    stock, _ = write(root / "stock/checkpoint_best.pt", sentence_argv(enc, "roberta", restore=enc.checkpoint),
                     weights=model.state_dict())
    kprune, _ = write(root / "kprune/checkpoint_pruned.pt",
                      sentence_argv(enc, "prunable_roberta_minilm", *KPRUNE, restore=enc.checkpoint),
                      extra_state={"kprune": {"method": "kprune", "path": str(base), "settings": {"constraint": 0.5}}})
    soft, _ = write(root / "soft/checkpoint_last.pt",
                    sentence_argv(enc, "ltp_roberta_minilm", *KPRUNE, *LTP, "--masking-mode", "soft",
                                  "--optimizer", "ltp_adam", "--lambda-threshold", "0.01",
                                  criterion="ltp_sentence_prediction", restore=kprune))
    hard, hard_model = write(root / "hard/checkpoint_best.pt",
                             sentence_argv(enc, "ltp_roberta_minilm", *KPRUNE, *LTP,
                                           criterion="ltp_sentence_prediction", restore=soft))
    # a learned threshold in the middle of the tiny model's scores: examples keep different counts
    state = torch.load(hard, weights_only=False)
    state["model"]["encoder.sentence_encoder.ltp_threshold_delta"] = torch.tensor([0.0, 0.07])
    torch.save(state, hard)
    return SimpleNamespace(enc=enc, data=enc.data_dir, base=base, stock=stock, kprune=kprune, soft=soft, hard=hard)


@pytest.fixture(scope="session")
def exported(chain, tmp_path_factory):
    """The fine-tuned and the Kprune model exported by the console script's main."""
    from user_dir.export.cli import main

    root = tmp_path_factory.mktemp("exports")
    out = {}
    for name in ("base", "kprune"):
        assert main(["--path", str(getattr(chain, name)), "--out", str(root / name)]) == 0
        out[name] = root / name
    return out
