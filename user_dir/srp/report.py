"""Size and cost of an srp checkpoint: parameters and FLOPs per sentence on a data split.

    python -m user_dir.srp.report CKPT --data DATA [--subset test] [--fvcore]

prints one JSON object: parameters (connectivity vectors excluded), the kept sizes, and the FLOPs of a
teacher-forced forward averaged over the sentence pairs of the split (each pair with its own source
and target lengths, eos included), optionally cross-checked with fvcore on the mean-length pair.
"""
import argparse
import json
import sys

import numpy as np


def load(ckpt, data):
    import user_dir  # noqa: F401  (registers srp; lets torch.load read fairseq checkpoints)
    from fairseq import checkpoint_utils

    models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([ckpt], arg_overrides={"data": data})
    model = models[0]
    model.eval()
    return model, task


def split_lengths(task, subset):
    task.load_dataset(subset)
    ds = task.dataset(subset)
    return np.asarray(ds.src_sizes, dtype=np.int64), np.asarray(ds.tgt_sizes, dtype=np.int64)


def mean_flops(model, src_sizes, tgt_sizes) -> float:
    from .counting import flops_per_sentence

    # a pair's FLOPs are a polynomial in its two lengths; evaluate it once per distinct pair
    pairs, counts = np.unique(np.stack([src_sizes, tgt_sizes], 1), axis=0, return_counts=True)
    total = sum(int(n) * flops_per_sentence(model, s, t)["total"] for (s, t), n in zip(pairs, counts))
    return total / float(counts.sum())


def report(ckpt, data, subset="test", fvcore=False) -> dict:
    from .counting import fvcore_check, flops_per_sentence, parameters

    model, task = load(ckpt, data)
    src, tgt = split_lengths(task, subset)
    out = {
        "checkpoint": ckpt,
        "parameters": parameters(model),
        "shapes": model.current_shapes().to_json(),
        "subset": subset,
        "sentences": int(len(src)),
        "mean_src_len": float(src.mean()),
        "mean_tgt_len": float(tgt.mean()),
        "flops_per_sentence": mean_flops(model, src, tgt),
    }
    if fvcore:
        s, t = int(round(src.mean())), int(round(tgt.mean()))
        out["fvcore_check"] = {"src_len": s, "tgt_len": t, "ours": flops_per_sentence(model, s, t)["total"],
                               "fvcore": fvcore_check(model, s, t)["total"]}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--data", required=True, help="binarised data folder (dictionaries, the split)")
    parser.add_argument("--subset", default="test")
    parser.add_argument("--fvcore", action="store_true", help="also count with fvcore (mean lengths)")
    args = parser.parse_args(argv)
    json.dump(report(args.checkpoint, args.data, args.subset, args.fvcore), sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
