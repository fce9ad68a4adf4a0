"""LTP: learned token pruning for encoders (model ``ltp_roberta``, criterion
``ltp_sentence_prediction``, optimizer ``ltp_adam``). See docs/ltp.md."""
from user_dir.ltp import criterion, model, optimizer, start_check  # noqa: F401  (registration)
