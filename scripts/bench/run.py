#!/usr/bin/env python
"""The reproduction suite: every method beside its paper's baselines, on the shared harness.

    python scripts/bench/run.py                 # every method, in the order below
    METHODS="kprune ltp" python scripts/bench/run.py
    python scripts/bench/run.py --list          # the methods and what each compares

Every training, pruning and measuring step is resumable (user_dir/bench/steps.py): rerunning skips
what is done and continues what was interrupted; ``FORCE=<step>`` reruns one step. Results go to
results/<method>.{json,md,png} (committed), step folders and logs to checkpoints/bench/.
"""
import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from user_dir.bench.steps import stop_children_on_sigterm  # noqa: E402

METHODS = {
    "srp": "SRP (two stages, rates 0.7/0.5/0.3) vs magnitude structured pruning, De-En translation",
    "kprune": "Kprune (with/without KPWT) vs Kwon et al.'s retraining-free pruning, constraints 0.4-0.8",
    "ltp": "LTP (both regulariser norms, 3 lambdas each) vs top-k and manual-threshold token pruning",
    "export": "the sentiment models (baseline, Kprune, LTP, composed) as ONNX: parity with fairseq on the "
              "whole test split, onnxruntime speed-up against the unpruned export",
    "trbert": "TR-BERT (3 alphas, long reviews) vs residual-strategy selection without RL and attention "
              "top-k, at the same kept ratios",
    "compose": "Kprune 50 % then LTP (sentiment) and then TR-BERT (reviews), against the single methods at "
               "matched FLOPs",
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default=os.environ.get("METHODS", " ".join(METHODS)),
                   help="methods to run, space or comma separated (default: all; env METHODS)")
    p.add_argument("--list", action="store_true", help="list the methods and exit")
    args = p.parse_args(argv)
    if args.list:
        for name, what in METHODS.items():
            print(f"{name:8s} {what}")
        return 0
    chosen = [m for m in args.methods.replace(",", " ").split() if m]
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        p.error(f"--methods/METHODS: unknown {', '.join(unknown)}; allowed: {', '.join(METHODS)}")
    stop_children_on_sigterm()
    failed = []
    for name in chosen:
        start = time.time()
        print(f"=================== bench: {name} ===================", flush=True)
        try:
            importlib.import_module(name).run()
            print(f"[bench] {name}: finished in {(time.time() - start) / 60:.1f} min", flush=True)
        except Exception:
            traceback.print_exc()
            failed.append(name)
    if failed:
        print(f"bench failed for: {' '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
