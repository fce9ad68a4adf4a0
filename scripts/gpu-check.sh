#!/usr/bin/env bash
# The first thing to run on a GPU machine (at most ~8 minutes on one GPU; installs nothing):
#
#   bash scripts/gpu-check.sh            # after `make install`; results in results/gpu/
#
# 1. the test suite's unit and equivalence tests on the GPU (pytest --device cuda -m "not integration");
# 2. a short training run of every method under --fp16 and under --bf16 on the GPU (SRP pruning with
#    slicing, LTP's soft stage, TR-BERT's RL stage: their test_cli_mixed_precision.py; Kprune, which
#    does not train, on a checkpoint saved in fp16/bf16);
# 3. the speed part of the bench at batch 1 and 32, fp32 and fp16 (scripts/gpu/speed.py: CUDA
#    events after a synchronisation, a warm-up pass, interleaved rounds).
# Writes results/gpu/tests.json (per step: passed / failed / skipped and the failures),
# results/gpu/speed.json and results/gpu/summary.json. Exit status: 0 when every step passed.
# On a machine without a usable GPU it says so in one line and exits 0.
#
# Env: OUT (results/gpu), WORKERS (pytest workers, 4), STEP_TIMEOUT (seconds per pytest step, 180).
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
if [[ -x "$REPO/.venv/bin/python" ]]; then export PATH="$REPO/.venv/bin:$PATH"; fi

if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; then
  echo "gpu-check: no CUDA GPU is visible to torch on this machine (torch.cuda.is_available() is False); nothing to check"
  exit 0
fi

OUT="${OUT:-results/gpu}"
WORKERS="${WORKERS:-4}"
STEP_TIMEOUT="${STEP_TIMEOUT:-180}"
mkdir -p "$OUT"
started=$(date +%s)
status=0
python -c "import torch; print('gpu-check:', torch.cuda.get_device_name(0), '| torch', torch.__version__)"

echo "gpu-check 1/3: unit and equivalence tests on the GPU"
timeout "$STEP_TIMEOUT" python -m pytest --device cuda -n "$WORKERS" -q -m "not integration" tests \
  --junitxml "$OUT/unit.xml" || status=1

echo "gpu-check 2/3: a short training run of every method under --fp16 and --bf16"
timeout "$STEP_TIMEOUT" python -m pytest --device cuda -n "$WORKERS" -q \
  tests/srp/test_cli_mixed_precision.py tests/ltp/test_cli_mixed_precision.py \
  tests/trbert/test_cli_mixed_precision.py "tests/kprune/test_cli.py::test_checkpoint_trained_in_half_precision" \
  --junitxml "$OUT/mixed.xml" || status=1

echo "gpu-check 3/3: speed at batch 1 and 32 (CUDA events)"
timeout 120 python scripts/gpu/speed.py --device cuda --dtypes fp32,fp16 --rounds 3 --out "$OUT/speed.json" || status=1

python scripts/gpu/summary.py "$OUT" --seconds $(( $(date +%s) - started )) --status "$status" || status=1
exit "$status"
