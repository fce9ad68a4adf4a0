"""fairseq plugin for Transformer compression (`--user-dir user_dir`).

Importing this package registers every model, architecture, task, criterion and optimizer of the
four methods with fairseq.
"""
from user_dir.common import bf16_without_tpu, checkpoint_compat, known_warnings, start_checks

known_warnings.install()
checkpoint_compat.allow_fairseq_checkpoints()
bf16_without_tpu.install()
start_checks.install()

from user_dir import common, srp, ltp, trbert, kprune  # noqa: E402,F401  (registration)
