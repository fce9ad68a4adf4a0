#!/usr/bin/env bash
# LTP demo: the fine-tuned MiniLM sentiment classifier -> LTP soft stage (learn the thresholds) ->
# hard stage (thresholds frozen, pruned tokens removed); then accuracy, relative encoder FLOPs and
# measured CPU throughput (batch 1 and 32, same process, user_dir/bench) of the baseline and the LTP
# model on the test split. Prints a table and writes results/demo/ltp.json. Every training step is cached.
#
#   bash scripts/demo/ltp.sh                 # prepares data/model and fine-tunes first if needed
#
# Env (defaults): LAMBDA (0.03) DATA (data-bin/sentiment) BASELINE (checkpoints/baseline-<data>/checkpoint_best.pt)
#   OUT_ROOT (checkpoints/ltp-demo/<data>) THREADS (2: training and timing) REPEATS (2 interleaved
#   timing rounds, the median counts) TIMING_EXAMPLES (200 at batch 1), plus the demo-scale knobs of
#   scripts/ltp/stages.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ -x .venv/bin/python ]] && export PATH="$PWD/.venv/bin:$PATH"
LAMBDA="${LAMBDA:-0.03}"
export DATA="${DATA:-data-bin/sentiment}" THREADS="${THREADS:-2}"
REPEATS="${REPEATS:-2}"
export BASELINE="${BASELINE:-checkpoints/baseline-$(basename "$DATA")/checkpoint_best.pt}"
export OUT_ROOT="${OUT_ROOT:-checkpoints/ltp-demo/$(basename "$DATA")}"
LTP="$OUT_ROOT/lambda$LAMBDA/hard/checkpoint_best.pt"

bash scripts/ltp/stages.sh ltp "$LAMBDA"
# the stock tool's figures (accuracy, relative FLOPs, kept tokens per layer) -> hard/result.json
VALIDATE=1 bash scripts/ltp/validate.sh "$LTP" > "$(dirname "$LTP")/validate-stock.log" 2>&1 \
  || { tail -20 "$(dirname "$LTP")/validate-stock.log" >&2; exit 1; }
grep "valid on" "$(dirname "$LTP")/validate.log" | sed 's/^.*| \(valid on\)/[ltp] \1/' | cut -c1-160

mkdir -p results/demo
# the harness of the bench (user_dir/bench): quality, relative FLOPs, speed at batch 1 and 32
python -m user_dir.bench.compare "$DATA" --model "base=$BASELINE" --model "ltp=$LTP" --splits valid,test \
  --batch-sizes 1,32 --timing-limit "1:${TIMING_EXAMPLES:-200}" --rounds "$REPEATS" --threads "$THREADS" \
  --out results/demo/ltp.measure.json
python scripts/demo/rows.py results/demo/ltp.measure.json --method ltp --split test \
  --task "sentiment sentences (test), MiniLM-L6" --label base=base --label "ltp=LTP lambda $LAMBDA" \
  --out results/demo/ltp.json
rm -f results/demo/ltp.measure.json
