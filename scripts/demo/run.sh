#!/usr/bin/env bash
# make demo: every method's pipeline at demo scale, each ending in a stock-tool evaluation, then one
# results table and results/demo/summary.png. Sized for a 2-core CPU (thousands of examples, minutes
# of training per method); the faithful, paper-scale runs are the bench's (make bench).
#
#   make demo                              # all steps
#   METHODS="kprune ltp" make demo         # a subset (their prerequisites run too, cached)
#
# Every step caches its outputs, so a rerun only redoes what is missing or changed. What the demo
# scale can and cannot show: README, "make demo".
set -uo pipefail
cd "$(dirname "$0")/../.."
[[ -x .venv/bin/python ]] && export PATH="$PWD/.venv/bin:$PATH"
METHODS=${METHODS:-"kprune ltp compose trbert srp"}
export THREADS="${THREADS:-2}"

# demo scale (README: "make demo"): sentiment classifier on 2,000 training sentences; TR-BERT on
# 240 reviews cut to 254 tokens; SRP's small model on the offline De-En pairs
export SENTIMENT_DATA=data-bin/sentiment-demo REVIEWS_DATA=data-bin/reviews-demo
export SENTIMENT_BASELINE=checkpoints/demo/baseline-sentiment/checkpoint_best.pt
export REVIEWS_BASELINE=checkpoints/demo/baseline-reviews/checkpoint_best.pt

# estimated seconds per step on an idle 2-core machine, only for the "left" line (each step prints
# its own measured wall and CPU time)
declare -A EXPECTED=([prepare]=100 [baseline]=170 [srp]=470 [kprune]=195 [ltp]=240 [compose]=235
                     [trbert]=285)
declare -A WHAT=(
  [prepare]="MiniLM conversion and the embedded data (sentiment, reviews, offline De-En), demo subsets"
  [baseline]="fine-tune MiniLM on 2,000 sentiment sentences (stock fairseq-train, 2 epochs)"
  [srp]="SRP: train srp_small on De-En, prune it in two stages to half its parameters, fine-tune, fairseq-generate, timing"
  [kprune]="Kprune: remove 50 % of the baseline's FLOPs without retraining, fairseq-validate, timing"
  [ltp]="LTP: soft stage (learn thresholds) and hard stage (drop tokens), fairseq-validate, timing"
  [compose]="Kprune 50 % -> LTP on the pruned model, fairseq-validate, all sentiment models timed together"
  [trbert]="TR-BERT: fine-tune the sentiment baseline on reviews, policy RL, joint training, fairseq-validate, timing"
)

steps=(prepare)
want() { [[ " $METHODS " == *" $1 "* ]]; }
for m in $METHODS; do
  case "$m" in srp|kprune|ltp|compose|trbert) ;;
    *) echo "error: METHODS: unknown method '$m' (choose from: srp kprune ltp compose trbert)" >&2; exit 2 ;;
  esac
done
if want kprune || want ltp || want compose || want trbert; then steps+=(baseline); fi
for m in kprune ltp compose trbert srp; do want "$m" && steps+=("$m"); done

run_step() {
  case "$1" in
    prepare)
      bash scripts/models/prepare-minilm.sh && bash scripts/data/prepare-sentiment.sh >/dev/null &&
        bash scripts/data/prepare-reviews.sh >/dev/null &&
        bash scripts/demo/subset.sh data-bin/sentiment "$SENTIMENT_DATA" 2000 400 0 &&
        MAX_TOKENS=254 bash scripts/demo/subset.sh data-bin/reviews "$REVIEWS_DATA" 240 60 100 &&
        { want srp && bash scripts/data/prepare-de-en-offline.sh >/dev/null || ! want srp; } ;;
    baseline)
      if [[ -f "$(dirname "$SENTIMENT_BASELINE")/result.json" ]]; then
        echo "demo: $SENTIMENT_BASELINE exists (cached)"; return 0
      fi
      mkdir -p "$(dirname "$SENTIMENT_BASELINE")"
      DATA="$SENTIMENT_DATA" SAVE_DIR="$(dirname "$SENTIMENT_BASELINE")" EPOCHS=2 LR=1e-4 \
        bash scripts/models/finetune-baseline.sh > "$(dirname "$SENTIMENT_BASELINE")/run.log" 2>&1 \
        || { tail -20 "$(dirname "$SENTIMENT_BASELINE")/run.log" >&2; return 1; }
      grep "^finetune-baseline: {" "$(dirname "$SENTIMENT_BASELINE")/run.log" ;;
    srp) bash scripts/demo/srp.sh ;;
    kprune) DATA="$SENTIMENT_DATA" BASELINE="$SENTIMENT_BASELINE" NUM_TOKENS=30000 bash scripts/demo/kprune.sh ;;
    ltp) DATA="$SENTIMENT_DATA" BASELINE="$SENTIMENT_BASELINE" bash scripts/demo/ltp.sh ;;
    compose) DATA="$SENTIMENT_DATA" BASELINE="$SENTIMENT_BASELINE" bash scripts/demo/compose.sh ;;
    # the reviews baseline starts from the sentiment baseline: 240 reviews are too few to teach
    # MiniLM sentiment in two short epochs, and the two data sets share dictionary and labels
    trbert) DATA="$REVIEWS_DATA" BASELINE="$REVIEWS_BASELINE" BASE_RESTORE="$SENTIMENT_BASELINE" \
              bash scripts/demo/trbert.sh ;;
  esac
}

mkdir -p results/demo
start=$SECONDS
failed=()
for i in "${!steps[@]}"; do
  s="${steps[$i]}"
  left=0
  for r in "${steps[@]:$((i + 1))}"; do left=$((left + EXPECTED[$r])); done
  echo
  echo "=================== demo $((i + 1))/${#steps[@]}: $s ==================="
  echo "[demo] ${WHAT[$s]}"
  t0=$SECONDS
  TIMEFORMAT="[demo] $s: %0R s wall, %0U s user + %0S s system CPU"
  if time run_step "$s"; then
    status="done"
  else
    status="FAILED"
    failed+=("$s")
  fi
  took=$((SECONDS - t0))
  rest="${steps[*]:$((i + 1))}"
  printf '[demo] %s %s in %d:%02d (elapsed %d:%02d); left: %s\n' "$s" "$status" $((took / 60)) $((took % 60)) \
    $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) \
    "${rest:-nothing}$([[ -n "$rest" ]] && echo " (about $(( (left + 59) / 60 )) min on an idle 2-core machine)")"
  if [[ "$status" == FAILED && "$s" == prepare ]]; then break; fi
done
python scripts/demo/report.py results/demo
echo "[demo] total $(((SECONDS - start) / 60)) min $(((SECONDS - start) % 60)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "demo failed for: ${failed[*]}" >&2
  exit 1
fi
