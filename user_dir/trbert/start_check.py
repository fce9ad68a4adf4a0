"""TR-BERT's ``fairseq-train`` start checks (``user_dir.common.start_checks``).

The criterion meets the model only at the first batch, where an error makes fairseq write
``crash.pt`` of the untrained model; these checks read the same options from the command line
before anything is built: ``--criterion trbert`` with a TR-BERT model, and the residual-score
options (``--trbert-score-layer``, ``--trbert-scores``) against the model's depth and reduction
points (``--trbert-reduce-layers``).
"""
import os

from user_dir.common.start_checks import criterion_name, model_name, register
from user_dir.trbert.policy import parse_reduce_layers

ARCHS = "--arch trbert_roberta_minilm, trbert_roberta_base or trbert_roberta"


@register
def check_trbert_run(cfg) -> None:
    if criterion_name(cfg) != "trbert":
        return
    name, arch = model_name(cfg)
    if name != "trbert_roberta":
        raise ValueError(f"--criterion trbert needs a TR-BERT model ({ARCHS}); got --arch {arch}")
    model, criterion = cfg.model, cfg.criterion
    layers = int(getattr(model, "encoder_layers"))
    reduce = parse_reduce_layers(getattr(model, "trbert_reduce_layers", None), layers)
    score_layer = getattr(criterion, "trbert_score_layer", None)
    if score_layer is not None and not reduce[-1] < score_layer <= layers:
        raise ValueError(f"--trbert-score-layer {score_layer}: the hidden state h_k entering 0-based layer "
                         f"k must lie after the last reduction point ({reduce[-1]}) and within the "
                         f"{layers}-layer encoder: allowed {reduce[-1] + 1}..{layers}")
    scores = getattr(criterion, "trbert_scores", None)
    if scores not in (None, "online") and os.path.isfile(scores):
        from user_dir.trbert.residual_scores import ScoreTable

        try:
            table = ScoreTable.load(scores)
        except Exception as e:  # noqa: BLE001  (a text file, another pickle, a truncated file)
            raise ValueError(f"--trbert-scores {scores}: not a residual-score file of python -m "
                             f"user_dir.trbert.residual_scores ({type(e).__name__}: {str(e)[:200]})") from None
        if table.reduce_layers != reduce:
            raise ValueError(f"--trbert-scores {scores} were computed for reduction points "
                             f"{table.reduce_layers}, the model reduces before {reduce} (--trbert-reduce-layers)")
