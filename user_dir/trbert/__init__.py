"""TR-BERT: RL-learned dynamic token reduction for long texts.

Registers model ``trbert_roberta`` (archs ``trbert_roberta``, ``trbert_roberta_base``,
``trbert_roberta_minilm``) and criterion ``trbert``. Residual-strategy scores come from
``python -m user_dir.trbert.residual_scores``.
"""
from user_dir.trbert import criterion, model, start_check  # noqa: F401  (registration)
