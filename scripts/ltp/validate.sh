#!/usr/bin/env bash
# Score an LTP checkpoint on the dev and test splits with fairseq-validate: accuracy, relative
# encoder FLOPs and kept-token ratio per layer, written to OUT_DIR/validate.log and OUT_DIR/result.json.
#
#   bash scripts/ltp/validate.sh checkpoints/ltp-hard-sentiment/checkpoint_best.pt [OUT_DIR] [flags...]
#   # the original's masking-only inference (pruned tokens kept in the batch, masked from attention):
#   bash scripts/ltp/validate.sh CKPT OUT --model-overrides "{'ltp_physical_removal': False}"
#
# Env: DATA (data-bin/sentiment) VALID_BATCH (32) THREADS (2)
source "$(dirname "$0")/lib.sh"
[[ $# -ge 1 ]] || ltp_die "usage: scripts/ltp/validate.sh CHECKPOINT [OUT_DIR] [fairseq-validate flags...]"
CKPT="$1"; shift
OUT_DIR="$(dirname "$CKPT")"
if [[ $# -ge 1 && "$1" != -* ]]; then OUT_DIR="$1"; shift; fi
ltp_check_data "$DATA"
ltp_check_checkpoint "$CKPT" "LTP"
mkdir -p "$OUT_DIR"
ltp_validate "$CKPT" "$OUT_DIR" "$@"
