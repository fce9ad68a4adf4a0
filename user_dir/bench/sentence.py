"""Sentence-prediction checkpoints of every method, measured one way.

Any checkpoint trained with ``--task sentence_prediction`` loads here: stock fairseq ``roberta_*``,
this project's prunable encoders (fine-tuned or Kprune-pruned), LTP and TR-BERT models, and their
compositions. For each we get predictions on whole splits (fairseq's length-sorted batches, as
``fairseq-validate --required-batch-size-multiple 1`` makes them, so accuracies match it) and the
analytic encoder cost of every example:

    MAC per layer = 2·d_attn·n_a² + 4·d·d_attn·n_a + 2·d·d_ff·n_f

with ``n_a`` tokens entering the layer and ``n_f`` left for its FFN (they differ where LTP prunes
between attention and FFN), ``d_attn`` = heads × head size and ``d_ff`` the FFN width of that very
layer (so Kprune's per-layer sizes count), plus TR-BERT's policy networks where they run. Embeddings,
LayerNorm, softmax and the classifier are left out, as in LTP, TR-BERT and Kprune. Relative FLOPs of
a model = its summed MACs over a split / the reference model's on the same examples.
"""
import logging
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
from fairseq import checkpoint_utils, tasks, utils

from user_dir.common.checkpoint_info import cfg_get, cfg_set, criterion_section
from user_dir.common.split_batches import split_batches
from user_dir.ltp.flops import LayerDims, layer_macs

logger = logging.getLogger(__name__)

# every sentence-prediction score of the bench runs on fairseq's length-sorted batches of this size
# (fairseq-validate's batches with --batch-size 32), so that figures of different tools agree
SCORE_BATCH_SIZE = 32


@dataclass
class SentenceModel:
    name: str
    path: str
    model: torch.nn.Module
    task: object
    head: str
    regression: bool = False
    overrides: Dict = field(default_factory=dict)

    @property
    def encoder(self):
        return self.model.encoder.sentence_encoder

    @property
    def reduces_tokens(self) -> bool:
        return hasattr(self.model, "reduce_layers")

    def forward(self, tokens: torch.Tensor):
        """Logits of a batch of token ids (the call the timing measures)."""
        return self.model(tokens, classification_head_name=self.head)[0]

    def parameters(self) -> int:
        seen, total = set(), 0
        for p in self.model.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
        return total

    def layer_sizes(self) -> List[Dict[str, int]]:
        return [{"heads": l.self_attn.num_heads, "ffn": l.fc1.out_features} for l in self.encoder.layers]


def parse_spec(spec: str):
    """``NAME=PATH[:KEY=VALUE,...]`` (or a bare PATH) -> (name, path, model overrides).

    A value holding commas is quoted or bracketed: ``trbert_keep_ratios='0.5,0.3'`` (a string),
    ``[0.5,0.3]`` (a list)."""
    name, sep, rest = spec.partition("=")
    if not sep or "/" in name:
        name, rest = None, spec
    path, _, extra = rest.partition(":")
    overrides = {}
    for item in filter(None, _split_top_level(extra)):
        key, value = item.split("=", 1)
        overrides[key] = utils.eval_bool(value) if value in ("True", "False") else _literal(value)
    return name or path, path, overrides


def _split_top_level(text: str) -> List[str]:
    """Split at the commas that are outside quotes and brackets."""
    parts, current, depth, quote = [], [], 0, None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def _literal(value: str):
    import ast
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def load(path: str, data: str, name: Optional[str] = None, overrides: Optional[Dict] = None,
         device: str = "cpu", arch: Optional[str] = None) -> SentenceModel:
    """A sentence_prediction checkpoint in eval mode with its task pointed at ``data``.

    ``overrides`` change model options (e.g. ``ltp_physical_removal=False``); ``arch`` rebuilds the
    weights as another registered architecture (e.g. a fine-tuned model as ``ltp_roberta_minilm``).
    """
    overrides = dict(overrides or {})
    state = checkpoint_utils.load_checkpoint_to_cpu(path, arg_overrides={"data": data, **overrides})
    cfg = state["cfg"]
    if arch:
        cfg_set(cfg.model, "_name", arch)
        cfg_set(cfg.model, "arch", arch)
    task = tasks.setup_task(cfg.task)
    model = task.build_model(cfg.model)
    model.load_state_dict(state["model"], strict=True, model_cfg=cfg.model)
    model = model.to(device).eval()
    crit = criterion_section(cfg)
    head = cfg_get(crit, "classification_head_name", "sentence_classification_head")
    heads = getattr(model, "classification_heads", {})
    if head not in heads and len(heads) == 1:
        head = next(iter(heads))
    if head not in heads:
        raise ValueError(f"--path {path}: no classification head {head!r} in the checkpoint "
                         f"(it has: {', '.join(heads) or 'none'}); is it a sentence_prediction model?")
    regression = bool(cfg_get(crit, "regression_target", False) or cfg_get(cfg.task, "regression_target", False))
    return SentenceModel(name or path, path, model, task, head, regression, overrides)


def layer_dims(layer) -> LayerDims:
    """Width, attention width and FFN width of one encoder layer (stock fairseq or prunable)."""
    attn = layer.self_attn
    return LayerDims(layer.fc1.in_features, attn.num_heads * attn.head_dim, layer.fc1.out_features)


@torch.inference_mode()
def forward_with_cost(sm: SentenceModel, tokens: torch.Tensor):
    """(logits, per-example MACs (B,) float64, per-layer kept tokens {key: (B,)}) of one batch."""
    enc = sm.encoder
    dims = [layer_dims(l) for l in enc.layers]
    n0 = tokens.ne(enc.padding_idx).sum(1).double()
    kept = {}
    if sm.reduces_tokens:
        from user_dir.trbert.flops import pass_macs
        from user_dir.trbert.rollouts import ReductionControl
        control = ReductionControl("greedy")
        logits = sm.model(tokens, classification_head_name=sm.head, reduction=control)[0]
        macs, _ = pass_macs(sm.model.layers, enc.policies, control)
        for point in control.points:
            kept[f"kept_l{point.layer}"] = point.kept.double()
        return logits, macs.double(), kept
    if hasattr(enc, "last_stats"):
        enc.last_stats = None
    logits = sm.forward(tokens)
    stats = getattr(enc, "last_stats", None)
    if stats is None:  # no token pruning: every token through every layer
        return logits, sum(layer_macs(d, n0, n0) for d in dims), kept
    macs = sum(layer_macs(d, n_a.double(), n_f.double()) for d, n_a, n_f in zip(dims, stats.n_in, stats.n_out))
    for i, n in enumerate(stats.n_out):
        kept[f"kept_l{i}"] = n.double()
    return logits, macs, kept


def batches(task, split: str, batch_size: int, limit: int = 0, max_positions: Optional[int] = None) -> List[dict]:
    """fairseq's batches of ``split`` (length-sorted); with ``limit``, evenly spaced batches holding
    about ``limit`` examples, so every length range is represented."""
    out = split_batches(task, split, batch_size, max_positions)
    examples = sum(s["nsentences"] for s in out)
    if limit and examples > limit:
        keep = max(1, round(len(out) * limit / examples))
        out = [out[round(i * (len(out) - 1) / max(1, keep - 1))] for i in range(keep)]
    return out


@torch.inference_mode()
def score(sm: SentenceModel, samples: List[dict]) -> dict:
    """Quality and cost of ``sm`` on ``samples``: accuracy % (Pearson r x 100 for regression),
    summed encoder MACs, mean kept-token ratio per pruning layer (kept / input tokens)."""
    correct = total = 0
    preds, golds = [], []
    macs = 0.0
    tokens_in = 0.0
    kept_sum: Dict[str, float] = {}
    device = next(sm.model.parameters()).device
    for sample in samples:
        tokens = sample["net_input"]["src_tokens"].to(device)
        logits, cost, kept = forward_with_cost(sm, tokens)
        target = sample["target"].view(-1).to(device)
        if sm.regression:
            preds.append(logits.view(-1).float().cpu())
            golds.append(target.float().cpu())
        else:
            correct += int((logits.argmax(-1) == target).sum())
        total += target.numel()
        macs += float(cost.sum())
        tokens_in += float(tokens.ne(sm.encoder.padding_idx).sum())
        for key, n in kept.items():
            kept_sum[key] = kept_sum.get(key, 0.0) + float(n.sum())
    out = {"examples": total, "macs": macs, "macs_per_example": macs / max(1, total)}
    if sm.regression:
        p, g = torch.cat(preds), torch.cat(golds)
        out["pearson"] = 100.0 * float(torch.corrcoef(torch.stack([p, g]))[0, 1])
        out["quality"] = out["pearson"]
    else:
        out["accuracy"] = 100.0 * correct / max(1, total)
        out["quality"] = out["accuracy"]
    out.update({k: v / tokens_in for k, v in sorted(kept_sum.items())})
    return out


def correct_mask(sm: SentenceModel, samples: List[dict]) -> torch.Tensor:
    """Per-example correctness (bool) in dataset id order, for paired comparisons and intervals."""
    ids, hits = [], []
    device = next(sm.model.parameters()).device
    with torch.inference_mode():
        for sample in samples:
            logits, _, _ = forward_with_cost(sm, sample["net_input"]["src_tokens"].to(device))
            hits.append(logits.argmax(-1).cpu() == sample["target"].view(-1))
            ids.append(sample["id"])
    order = torch.cat(ids).argsort()
    return torch.cat(hits)[order]
