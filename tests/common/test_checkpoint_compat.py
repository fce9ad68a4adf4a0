"""fairseq checkpoints, and the loaded state fairseq broadcasts to other ranks, pass torch's safe loader."""
import argparse
import io

import numpy as np
import torch
from omegaconf import OmegaConf

import user_dir  # noqa: F401  (registers the allowlist)
from user_dir.common.checkpoint_compat import allow_fairseq_checkpoints


def _round_trip(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, map_location="cpu", weights_only=True)


def test_the_broadcast_state_of_a_loaded_checkpoint_passes_the_safe_loader():
    """As fairseq/distributed/utils.py _broadcast_object_slow sends it: cfg already a DictConfig."""
    allow_fairseq_checkpoints()
    cfg = OmegaConf.create({"model": {"_name": "ltp_roberta_minilm", "encoder_layers": 6, "dropout": 0.1,
                                      "arch": None, "layer_sizes": [1, 2]},
                            "optimization": {"lr": [2e-5], "clip_norm": 0.0, "sentence_avg": False},
                            "task": {"data": "data-bin/x", "num_classes": 2}})
    state = {"cfg": cfg, "args": argparse.Namespace(arch="x", lr=[1e-3]), "model": {"w": torch.ones(2)},
             "optimizer_history": [{"num_updates": 3, "best": np.float64(85.5)}],
             "meters": {"_bleu_counts_0": np.array([12, 7, 3], dtype=np.int64)},  # --eval-bleu meters
             "extra_state": {"train_iterator": {"epoch": 2}}}
    # fairseq/distributed/utils.py broadcast_object: tensors go separately, placeholders in their stead
    from fairseq.distributed.utils import _put_tensors_in_obj, _split_tensors_from_obj

    tensors = []
    sent = _split_tensors_from_obj(state, tensors)
    assert tensors, "the state's tensors are sent apart from it"
    loaded = _put_tensors_in_obj(_round_trip(sent), tensors)
    assert torch.equal(loaded["model"]["w"], torch.ones(2))
    assert OmegaConf.to_container(loaded["cfg"]) == OmegaConf.to_container(cfg)
    assert loaded["cfg"].model.encoder_layers == 6 and loaded["args"].lr == [1e-3]
    assert float(loaded["optimizer_history"][0]["best"]) == 85.5
    assert loaded["meters"]["_bleu_counts_0"].tolist() == [12, 7, 3]


class NotAllowed:
    pass


def test_anything_else_is_still_refused():
    allow_fairseq_checkpoints()
    buf = io.BytesIO()
    torch.save({"x": NotAllowed()}, buf)
    buf.seek(0)
    try:
        torch.load(buf, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError
        assert "NotAllowed" in str(e)
    else:
        raise AssertionError("an arbitrary class was unpickled by the safe loader")
