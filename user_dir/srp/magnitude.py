"""The naive structured baseline of SRP: the same groups and counts, chosen by weight magnitude.

    python -m user_dir.srp.magnitude BASE.pt --compression-rate 0.5 --out PRUNED.pt [--data DATA]

Groups are SRP's: embedding (residual-stream) dimensions per side, FFN neurons, per-head q·k and v·o
dimensions. Counts are SRP's: ``--compression-rate c`` (the fraction of the original parameters kept,
exactly SRP's option) gives, through SRP's own ``compression_rate.py``, how many groups of each type go
(the counts that two-stage or single-stage SRP removes at that rate: they depend only on the rate, the
architecture and the vocabulary sizes). Granularity is SRP's too (``selection.select``): embedding dims
per side, FFN neurons globally over all layers of both sides, q·k and v·o dims per attention module and
per head (every head loses the same count). So the pruned shapes — and the parameter count — equal an
SRP model's at the same rate except for how the FFN neurons spread over the layers, which is each
method's own choice. Taking the counts from the rate, not from an SRP checkpoint, keeps the baseline
independent of SRP's run: copying SRP's per-layer FFN widths would hand it SRP's choices.

**Score of a group** (lowest removed): the L2 norm (``--norm l1``: L1) of *every weight entry the
slicing removes with the group*, i.e. the entries ``connectivity.build_gates`` attaches to its
connectivity vector, which are exactly the entries SRP freezes and then cuts:

* embedding dim j of a side: column j of its token embedding (the tied output projection is the same
  tensor), entry j of every layer-norm weight and bias of that side, input column j of every q, k, v and
  fc1 that reads the side's residual stream (for the encoder: also the decoder's cross-attention k and
  v), output row j and bias entry j of every out_proj and fc2 that writes it;
* FFN neuron i: row i and bias i of fc1, column i of fc2;
* q·k dim: the row and bias entry of q_proj and of k_proj;
* v·o dim: the row and bias entry of v_proj, the column of out_proj.

The selected groups are then cut by SRP's slicing code (``slicing.slice_selected``), and the model's
output equals that of the same model with the selected connectivity set to 0 (pruning safety). The
result is an ordinary srp checkpoint: stock ``fairseq-generate --user-dir user_dir`` loads it and
``scripts/srp/finetune.sh`` fine-tunes it. Layer norm: ``--weighted-layernorm`` (default, as SRP's
pruning runs in scripts/srp) normalises over the kept dims; ``--plain-layernorm`` keeps the
checkpoint's setting (without the flag: the original ``LN(x ⊙ c)`` over the full width).
"""
import argparse
import json
import logging
import sys
from typing import Dict, List

import torch

from .compression_rate import Counts, kept_fraction, parameter_split, target_counts
from .connectivity import KINDS, Gate
from .selection import select
from .shapes import ModelShapes
from .slicing import slice_selected

logger = logging.getLogger(__name__)

NORMS = ("l2", "l1")


@torch.no_grad()
def group_norms(gates: List[Gate], norm: str = "l2") -> Dict[str, torch.Tensor]:
    """Per gate, the norm of each group's attached weight entries (a vector of the gate's size)."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}; got {norm!r}")
    out = {}
    for g in gates:
        total = torch.zeros(g.size, dtype=torch.float64)
        for param, dim in g.params:
            w = param.detach().double()
            w = w.abs() if norm == "l1" else w * w
            others = [d for d in range(w.dim()) if d != dim]
            total += (w.sum(dim=others) if others else w).cpu()
        out[g.name] = total.sqrt() if norm == "l2" else total
    return out


def srp_counts(model, rate: float) -> Counts:
    """The groups SRP removes in total at ``rate`` (what ``PruningController._select`` computes)."""
    original = ModelShapes.from_arch(model.cfg)
    split = parameter_split(original, len(model.encoder.dictionary), len(model.decoder.dictionary),
                            bool(model.cfg.share_decoder_input_output_embed))
    return target_counts(original, kept_fraction(rate, split), 1, 1)


def select_by_magnitude(model, rate: float, norm: str = "l2") -> Dict[str, int]:
    """Mark in every gate's ``sel`` the groups of lowest norm, SRP's counts and granularity; returns
    the number of groups selected per kind."""
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"--compression-rate must be in (0, 1], got {rate}")
    gates = model.gates()
    scores = group_norms(gates, norm)
    return select(gates, scores, KINDS, srp_counts(model, rate), ModelShapes.from_arch(model.cfg))


def set_weighted_layernorm(model, weighted: bool) -> None:
    from .weighted_layernorm import SRPLayerNorm

    if bool(model.cfg.weighted_layernorm) == weighted:
        return
    if any(int(side.ln_width.item()) != side.embed_tokens.weight.size(1) for side in (model.encoder, model.decoder)):
        raise ValueError("the checkpoint's embedding dims are already pruned with the other layer-norm variant; "
                         "pass --plain-layernorm to keep it")
    from .model import set_cfg

    set_cfg(model.cfg, "weighted_layernorm", weighted)
    for m in model.modules():
        if isinstance(m, SRPLayerNorm):
            m.weighted = weighted


def prune(model, rate: float, norm: str = "l2") -> Dict[str, int]:
    """Select by magnitude and slice, in place; returns the groups removed per kind."""
    if bool(model.srp_progress[1].item()):
        raise ValueError("the checkpoint is in the middle of an SRP shrinking phase (connectivity between 0 "
                         "and 1); prune a finished model")
    model.reset_pruning_state()
    chosen = select_by_magnitude(model, rate, norm)
    slice_selected(model)
    model.eval()
    return chosen


def prune_checkpoint(path: str, rate: float, out: str, data: str = None, norm: str = "l2",
                     weighted_layernorm: bool = True) -> dict:
    """Load an srp checkpoint, prune it by magnitude, write a fairseq checkpoint; returns a summary."""
    import user_dir  # noqa: F401  (registers srp; lets torch.load read fairseq checkpoints)
    from fairseq import checkpoint_utils

    from .counting import parameters
    from .model import SRPModel

    raw = torch.load(path, map_location="cpu")
    cfg = raw.get("cfg")
    if not isinstance(cfg, dict) or "model" not in cfg:
        raise ValueError(f"{path}: not a fairseq checkpoint with a model config")
    data = data or cfg.get("task", {}).get("data")
    models, _cfg, _task = checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides={"data": data})
    model = models[0]
    if not isinstance(model, SRPModel):
        raise ValueError(f"{path}: a {type(model).__name__}; the magnitude baseline prunes srp models (--arch srp_*)")
    before = parameters(model)
    if weighted_layernorm:
        set_weighted_layernorm(model, True)
    chosen = prune(model, rate, norm)
    shapes = model.current_shapes()
    raw["model"] = model.state_dict()
    raw["cfg"]["model"]["srp_shapes"] = shapes.to_json() if model.is_pruned() else ""
    raw["cfg"]["model"]["weighted_layernorm"] = bool(model.cfg.weighted_layernorm)
    raw["last_optimizer_state"] = None  # Adam moments of the unpruned weights fit neither shape nor model
    checkpoint_utils.torch_persistent_save(raw, out)
    return {"checkpoint": path, "out": out, "compression_rate": rate, "norm": norm,
            "weighted_layernorm": bool(model.cfg.weighted_layernorm), "removed": chosen,
            "parameters_before": before, "parameters_after": parameters(model),
            "shapes": json.loads(shapes.to_json())}


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m user_dir.srp.magnitude",
                                description=__doc__.split("\n\n")[0],
                                epilog="The definition of the baseline: docs/srp.md, 'Magnitude baseline'.")
    p.add_argument("checkpoint", help="the srp checkpoint to prune (usually the unpruned base model)")
    p.add_argument("--compression-rate", type=float, required=True, metavar="C",
                   help="fraction of the original parameters kept, 0 < C <= 1: SRP's --compression-rate, "
                        "giving the same number of groups of each type to remove")
    p.add_argument("--out", required=True, help="where to write the pruned checkpoint")
    p.add_argument("--data", default=None,
                   help="binarised data folder with the dictionaries (default: the checkpoint's own)")
    p.add_argument("--norm", choices=NORMS, default="l2",
                   help="norm of a group's weight entries; the lowest are removed (default: %(default)s)")
    ln = p.add_mutually_exclusive_group()
    ln.add_argument("--weighted-layernorm", dest="weighted_layernorm", action="store_true", default=True,
                    help="layer norms over the kept embedding dims, as SRP's pruning runs (default)")
    ln.add_argument("--plain-layernorm", dest="weighted_layernorm", action="store_false",
                    help="keep the checkpoint's layer-norm variant")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(message)s")
    summary = prune_checkpoint(args.checkpoint, args.compression_rate, args.out, args.data, args.norm,
                               args.weighted_layernorm)
    json.dump(summary, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
