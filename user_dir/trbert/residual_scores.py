"""Residual-strategy scores (the original's ``--do_eval_grad``) and the entry point that stores them.

With the fine-tuned model (eval mode, every token kept) take the gradient ``g`` of the task loss
with respect to the hidden states ``h_s`` entering the score layer s (``h_9`` for 12 layers, ``h_5`` for 6, as the original), and
score each token for reduction point w as ``|<g, h_s - h_k>|``, with ``h_k`` the hidden state just
before that point: the first-order change of the loss if the token's state stopped at layer k.

Scores are stored keyed by the fairseq sample ``id`` (the example's index in the split, stable
under shuffling and batching), never by iteration order:

    python -m user_dir.trbert.residual_scores data-bin/reviews --user-dir user_dir \
        --task sentence_prediction --num-classes 2 --path FINETUNED.pt --valid-subset train \
        --batch-size 8 --scores-out scores.pt [--reduce-layers 1,3] [--score-layer 4] [--cpu]
"""
import logging
import os
import sys
from typing import Dict, List, Optional

import torch

from user_dir.common.checkpoint_info import load_as_prunable
from user_dir.common.prunable_encoder import PrunableTransformerEncoder
from user_dir.trbert.policy import default_score_layer, parse_reduce_layers
from user_dir.trbert.rewards import example_task_loss

logger = logging.getLogger("user_dir.trbert.residual_scores")

FORMAT = "trbert-residual-scores-v1"


def compute_scores(model, src_tokens: torch.Tensor, targets: torch.Tensor, reduce_layers: List[int],
                   score_layer: int, head: str, regression: bool,
                   teacher_logits: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Scores (B, T, W) for a batch; 0 at padding. ``model`` is any prunable RoBERTa (no reduction).

    The caller chooses the mode (the original computed them with the fine-tuned model in eval mode).
    """
    enc = model.encoder.sentence_encoder
    num_layers = len(enc.layers)
    if not reduce_layers[-1] < score_layer <= num_layers:
        raise ValueError(f"score layer {score_layer} must lie after the last reduction point "
                         f"{reduce_layers[-1]} and at most {num_layers}")
    with torch.enable_grad():
        padding = src_tokens.eq(enc.padding_idx)
        x, _ = enc.forward_embedding(src_tokens)
        x = x * (~padding).unsqueeze(-1).type_as(x)
        before = {}
        h_s = None
        for idx, layer in enumerate(enc.layers):
            if idx == score_layer:
                # only g at h_s is needed: cut the graph there
                h_s = x = x.detach().requires_grad_(True)
            if idx in reduce_layers:
                before[idx] = x.detach()
            # the core's plain layer call: no token is dropped here
            x, padding = PrunableTransformerEncoder.forward_layer(enc, layer, x, padding)
        if h_s is None:
            h_s = x = x.detach().requires_grad_(True)
        if enc.layer_norm is not None:
            x = enc.layer_norm(x)
        logits = model.classification_heads[head](x)
        loss = example_task_loss(logits, targets, regression, teacher_logits).sum()
        (grad,) = torch.autograd.grad(loss, h_s)
    h_s = h_s.detach()
    scores = torch.stack([(grad * (h_s - before[k])).sum(dim=-1).abs() for k in reduce_layers], dim=-1)
    return scores.masked_fill(src_tokens.eq(enc.padding_idx).unsqueeze(-1), 0.0)


class ScoreTable:
    """Stored scores: ``{"format", "reduce_layers", "score_layer", "split", "scores": {id: (W, n)}}``."""

    def __init__(self, reduce_layers: List[int], score_layer: int, split: str,
                 scores: Optional[Dict[int, torch.Tensor]] = None):
        self.reduce_layers = list(reduce_layers)
        self.score_layer = score_layer
        self.split = split
        self.scores = scores if scores is not None else {}

    def add(self, ids: torch.Tensor, scores: torch.Tensor, lengths: torch.Tensor) -> None:
        for i, s, n in zip(ids.tolist(), scores.cpu(), lengths.tolist()):
            self.scores[int(i)] = s[:n].t().contiguous().half()

    def save(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        torch.save({"format": FORMAT, "reduce_layers": self.reduce_layers, "score_layer": self.score_layer,
                    "split": self.split, "scores": self.scores}, path)

    @classmethod
    def load(cls, path: str) -> "ScoreTable":
        state = torch.load(path, map_location="cpu")
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"{path} is not a TR-BERT residual-score file "
                             f"(write one with python -m user_dir.trbert.residual_scores)")
        return cls(state["reduce_layers"], state["score_layer"], state["split"], state["scores"])

    def lookup(self, ids: torch.Tensor, src_tokens: torch.Tensor, padding_idx: int) -> torch.Tensor:
        """Scores (B, T, W) aligned with ``src_tokens`` (right-padded), checked against the lengths."""
        bsz, seq_len = src_tokens.shape
        out = torch.zeros(bsz, seq_len, len(self.reduce_layers))
        lengths = src_tokens.ne(padding_idx).sum(dim=1).tolist()
        for row, (i, n) in enumerate(zip(ids.tolist(), lengths)):
            stored = self.scores.get(int(i))
            if stored is None:
                raise KeyError(f"residual scores have no example id {i} (computed for split "
                               f"{self.split!r} with {len(self.scores)} examples)")
            if stored.size(1) != n:
                raise ValueError(f"residual scores for id {i} cover {stored.size(1)} tokens but the "
                                 f"sample has {n}: the score file was made for other data")
            out[row, :n] = stored.t().float()
        return out.to(src_tokens.device)


def add_args(parser):
    group = parser.add_argument_group("TR-BERT residual scores")
    group.add_argument("--scores-out", required=True, metavar="FILE", help="where to write the scores")
    group.add_argument("--reduce-layers", metavar="K1,K2",
                       help="reduction points (default: the checkpoint's --trbert-reduce-layers, "
                            "else 1 and N/2)")
    group.add_argument("--score-layer", type=int, metavar="S",
                       help="hidden state h_S whose loss gradient scores the tokens "
                            "(default: ceil(3N/4), h_9 for 12 layers, h_5 for 6, as the original)")


def main(argv=None):
    from fairseq import options, utils
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s",
                        level=logging.INFO, stream=sys.stdout)
    parser = options.get_validation_parser()
    # sentence_prediction's task config refers to criterion fields; this criterion has them
    parser.set_defaults(criterion="sentence_prediction")
    add_args(parser)
    args = options.parse_args_and_arch(parser, input_args=argv)
    cfg = convert_namespace_to_omegaconf(args)
    utils.import_user_module(cfg.common)
    if cfg.dataset.batch_size is None and cfg.dataset.max_tokens is None:
        cfg.dataset.batch_size = 8
    use_cuda = torch.cuda.is_available() and not cfg.common.cpu
    # a stock fairseq roberta_* checkpoint is scored as prunable_roberta (same weights)
    models, saved_cfg, task = load_as_prunable(cfg.common_eval.path, args.data)
    model = models[0].eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if use_cuda:
        model.cuda()
    num_layers = len(model.encoder.sentence_encoder.layers)
    layers_arg = args.reduce_layers or getattr(saved_cfg.model, "trbert_reduce_layers", None)
    reduce_layers = parse_reduce_layers(layers_arg, num_layers)
    score_layer = args.score_layer or default_score_layer(num_layers, reduce_layers)
    head = saved_cfg.criterion.classification_head_name
    regression = bool(getattr(saved_cfg.criterion, "regression_target", False))
    split = cfg.dataset.valid_subset.split(",")[0]
    task.load_dataset(split, combine=False, epoch=1, task_cfg=saved_cfg.task)
    itr = task.get_batch_iterator(
        dataset=task.dataset(split), max_tokens=cfg.dataset.max_tokens, max_sentences=cfg.dataset.batch_size,
        max_positions=utils.resolve_max_positions(task.max_positions(), model.max_positions()),
        seed=cfg.common.seed, num_workers=cfg.dataset.num_workers,
    ).next_epoch_itr(shuffle=False)
    table = ScoreTable(reduce_layers, score_layer, split)
    logger.info("scoring %s (%d examples): reduction points %s, gradient at h_%d",
                split, len(task.dataset(split)), reduce_layers, score_layer)
    for sample in itr:
        sample = utils.move_to_cuda(sample) if use_cuda else sample
        tokens = sample["net_input"]["src_tokens"]
        targets = model.get_targets(sample, None).view(tokens.size(0), -1)
        targets = targets if regression else targets.view(-1)
        scores = compute_scores(model, tokens, targets, reduce_layers, score_layer, head, regression)
        table.add(sample["id"], scores, tokens.ne(task.source_dictionary.pad()).sum(dim=1))
    table.save(args.scores_out)
    logger.info("wrote scores of %d examples to %s", len(table.scores), args.scores_out)


if __name__ == "__main__":
    main()
