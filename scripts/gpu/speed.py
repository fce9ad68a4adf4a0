"""The speed part of the bench on a GPU: every method's compressed structure against its unpruned
model at batch 1 and 32, by the bench's timing protocol (user_dir/bench/timing.py: warm-up pass,
interleaved rounds; on a GPU each pass is timed by CUDA events after a synchronisation).

    python scripts/gpu/speed.py --out results/gpu/speed.json [--device cuda] [--dtypes fp32,fp16]

The bench's trained checkpoints take hours to make, so the models here have the real shapes and
random weights; speed does not depend on the weights once the kept sizes are fixed:
- encoders: MiniLM (6 layers, 384 wide, 12 heads, FFN 1536) on 128-token inputs; ``kprune-50``
  keeps half of every layer's heads and FFN neurons (a Kprune result's structure); ``ltp-topk-50``
  is LTP with physical token removal keeping half the tokens by the end (its top-k mode: a fixed
  share, where learned thresholds would depend on trained weights); ``trbert-50`` is TR-BERT's
  reduction at two points keeping half of the tokens each (``attention_topk``);
- SRP: ``srp_iwslt_de_en`` (the paper's model) and the same model sliced to half its parameters by
  SRP's own slicing (groups chosen by magnitude, ``user_dir.srp.magnitude``), a teacher-forced
  forward of 20 source and 20 target tokens.
Speed-up = median of the per-round throughput ratios to the unpruned model. ``--tiny`` shrinks every
shape for a smoke test on a CPU.
"""
import argparse
import json
import sys
import time
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import user_dir  # noqa: E402,F401  (registers the plugin's models)
from fairseq.data import Dictionary  # noqa: E402
from fairseq.models import ARCH_CONFIG_REGISTRY, ARCH_MODEL_REGISTRY  # noqa: E402

from user_dir.bench import timing  # noqa: E402

HEAD = "sentence_classification_head"
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def dictionary(size: int, prefix: str = "w") -> Dictionary:
    d = Dictionary()
    for i in range(size - d.nspecial):
        d.add_symbol(f"{prefix}{i}")
    return d


def encoder(arch: str, d: Dictionary, shape: dict, **options):
    """A sentence classifier of ``arch`` built as fairseq-train builds it (random weights)."""
    cls = ARCH_MODEL_REGISTRY[arch]
    parser = argparse.ArgumentParser(argument_default=argparse.SUPPRESS)
    cls.add_args(parser)
    args = parser.parse_args([])
    for key, value in {**shape, **options}.items():
        setattr(args, key, value)
    ARCH_CONFIG_REGISTRY[arch](args)
    task = SimpleNamespace(source_dictionary=d, max_positions=lambda: shape["max_positions"])
    model = cls.build_model(args, task)
    model.register_classification_head(HEAD, num_classes=2)
    return model


def encoders(d: Dictionary, shape: dict, layers: int):
    base = encoder("prunable_roberta", d, shape)
    kprune = encoder("prunable_roberta", d, shape)
    kprune.load_state_dict(base.state_dict())
    heads, ffn = shape["encoder_attention_heads"], shape["encoder_ffn_embed_dim"]
    kprune.prune_structure([torch.arange(heads // 2)] * layers, [torch.arange(ffn // 2)] * layers)
    ltp = encoder("ltp_roberta", d, shape, prune_mode="topk", masking_mode="hard", token_keep_rate=0.5)
    trbert = encoder("trbert_roberta", d, shape, trbert_select="attention_topk", trbert_keep_ratios="0.5,0.5")
    for m in (ltp, trbert):  # the same encoder weights: only the token reduction differs
        m.load_state_dict(base.state_dict(), strict=False)
    return {"base": base, "kprune-50": kprune, "ltp-topk-50": ltp, "trbert-50": trbert}


def encoder_batches(d: Dictionary, bsz: int, length: int, examples: int, device) -> list:
    g = torch.Generator().manual_seed(bsz)
    out = []
    for _ in range(max(1, examples // bsz)):
        tokens = torch.randint(d.nspecial, len(d), (bsz, length), generator=g)
        tokens[:, 0], tokens[:, -1] = d.bos(), d.eos()
        out.append(tokens.to(device))
    return out


def srp_models(tiny: bool):
    from user_dir.srp import magnitude
    from user_dir.srp.model import SRPModel

    arch = "srp_tiny" if tiny else "srp_iwslt_de_en"
    task = SimpleNamespace(source_dictionary=dictionary(60 if tiny else 8848, "s"),
                           target_dictionary=dictionary(50 if tiny else 6632, "t"))

    def build():
        torch.manual_seed(0)
        cfg = Namespace(arch=arch, max_source_positions=64, max_target_positions=64,
                        share_decoder_input_output_embed=True, weighted_layernorm=True)
        ARCH_CONFIG_REGISTRY[arch](cfg)
        return SRPModel.build_model(cfg, task)

    base, pruned = build(), build()
    pruned.load_state_dict(base.state_dict())
    magnitude.prune(pruned, 0.5)
    return task, {"base": base.eval(), "srp-50": pruned.eval()}


def srp_batches(task, bsz: int, examples: int, device, length: int = 20) -> list:
    g = torch.Generator().manual_seed(bsz)
    sd, td = task.source_dictionary, task.target_dictionary
    out = []
    for _ in range(max(1, examples // bsz)):
        src = torch.randint(sd.nspecial, len(sd), (bsz, length), generator=g)
        src[:, -1] = sd.eos()
        prev = torch.randint(td.nspecial, len(td), (bsz, length), generator=g)
        prev[:, 0] = td.eos()
        lengths = torch.full((bsz,), length)
        out.append({"nsentences": bsz, "src": src.to(device), "len": lengths.to(device), "prev": prev.to(device)})
    return out


def timed(models: dict, batches: list, run, protocol, device) -> dict:
    runners = {name: (lambda m: (lambda b: run(m, b)))(m) for name, m in models.items()}
    out = timing.time_models(runners, batches, protocol, device=device)
    return {name: {"throughput": r["throughput"], "speedup": r["speedup"]} for name, r in out.items()}


@torch.inference_mode()
def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    p.add_argument("--dtypes", default="fp32,fp16", help="comma-separated: fp32, fp16, bf16 (default: %(default)s)")
    p.add_argument("--batch-sizes", default="1,32")
    p.add_argument("--examples", type=int, default=64, help="examples per timing pass (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--min-seconds", type=float, default=0.5, help="a timing pass lasts at least this long")
    p.add_argument("--tiny", action="store_true", help="tiny shapes: a smoke test of this script on a CPU")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available to torch")
    dtypes = [t for t in args.dtypes.split(",") if t]
    bad = [t for t in dtypes if t not in DTYPES]
    if bad:
        p.error(f"--dtypes: unknown {bad}; allowed: {', '.join(DTYPES)}")
    device = torch.device(args.device)
    sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    protocol = timing.Protocol(threads=1, rounds=args.rounds, min_seconds=args.min_seconds)
    layers = 4 if args.tiny else 6
    shape = dict(encoder_layers=layers, encoder_embed_dim=32 if args.tiny else 384,
                 encoder_ffn_embed_dim=64 if args.tiny else 1536, encoder_attention_heads=4 if args.tiny else 12,
                 max_positions=64 if args.tiny else 512)
    length = 32 if args.tiny else 128
    d = dictionary(100 if args.tiny else 30522)
    started = time.time()
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "protocol": protocol.as_dict(), "encoder_length": length,
              "srp_length": 20, "encoders": {}, "srp": {}}
    enc_models = encoders(d, shape, layers)
    srp_task, srp = srp_models(args.tiny)
    for name in dtypes:
        dtype = DTYPES[name]
        for group in (enc_models, srp):
            for m in group.values():
                m.to(device=device, dtype=dtype).eval()
        result["encoders"][name], result["srp"][name] = {}, {}
        for bsz in sizes:
            batches = encoder_batches(d, bsz, length, args.examples, device)
            result["encoders"][name][f"b{bsz}"] = timed(
                enc_models, batches, lambda m, b: m(b, features_only=True, classification_head_name=HEAD),
                protocol, device)
            batches = srp_batches(srp_task, bsz, args.examples, device)
            result["srp"][name][f"b{bsz}"] = timed(
                srp, batches, lambda m, b: m(b["src"], b["len"], b["prev"]), protocol, device)
            for group in ("encoders", "srp"):
                line = ", ".join(f"{k} {v['speedup']['median']:.2f}x"
                                 for k, v in result[group][name][f"b{bsz}"].items() if k != "base")
                print(f"{name} batch {bsz} {group}: {line}", flush=True)
    result["seconds"] = round(time.time() - started, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"written {args.out} ({result['seconds']} s)")
    return result


if __name__ == "__main__":
    main()
