#!/usr/bin/env bash
# SRP demo on the offline De-En data: train the small arch, prune it in two stages (embedding dims,
# then FFN neurons and per-head dims) to RATE of its parameters with --srp, fine-tune, and compare
# base and pruned with stock fairseq-generate on the test set. Prints the table and writes
# results/demo/srp.json (rows: parameters, FLOPs per sentence, BLEU, generate wall time, speed-ups at
# batch 1 and 32 measured in one process with hypotheses of FORCED_LEN tokens).
#
#   bash scripts/demo/srp.sh
#
# Every step runs the repository's SRP pipeline scripts (scripts/srp/*.sh). A finished step leaves a
# .done stamp and is skipped next time; an interrupted one resumes from its checkpoint_last.pt.
# Env (defaults): DATA (data-bin/de-en-offline; prepared if missing) DEMO_DIR (checkpoints/srp-demo)
#   ARCH (srp_small) RATE (0.5) BASE_EPOCHS (6) BASE_LR (6e-3, inverse sqrt, 200 warm-up updates)
#   PRUNE_LR (1e-3, fixed) PERIOD (1 pruning epoch per stage) STAGE_EPOCHS (2: pruning + 1 epoch of
#   fine-tuning in each stage run) FT_EPOCHS (2) MAX_TOKENS (2048) THREADS (nproc) OUT (results/demo/srp.json)
#   FORCED_LEN (20)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
[[ -x .venv/bin/python ]] && export PATH="$REPO/.venv/bin:$PATH"

export DATA="${DATA:-data-bin/de-en-offline}"
DEMO_DIR="${DEMO_DIR:-checkpoints/srp-demo}"
export ARCH="${ARCH:-srp_small}"
export RATE="${RATE:-0.5}"
BASE_EPOCHS="${BASE_EPOCHS:-6}"
BASE_LR="${BASE_LR:-6e-3}"
PRUNE_LR="${PRUNE_LR:-1e-3}"
export PERIOD="${PERIOD:-1}"
STAGE_EPOCHS="${STAGE_EPOCHS:-2}"
FT_EPOCHS="${FT_EPOCHS:-2}"
export THREADS="${THREADS:-$(nproc)}"
OUT="${OUT:-results/demo/srp.json}"
# demo scale: no BLEU on valid during training (beam search on CPU), small model, short warm-up
export EVAL_BLEU=0 DROPOUT=0.1 WARMUP=200 MAX_TOKENS="${MAX_TOKENS:-2048}" LOG_INTERVAL=20 WEIGHTED_LN=1
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"

if [[ ! -f "$DATA/dict.de.txt" ]]; then
  if [[ "$DATA" == data-bin/de-en-offline ]]; then
    bash scripts/data/prepare-de-en-offline.sh
  else
    echo "demo-srp: error: DATA=$DATA is not prepared" >&2
    exit 2
  fi
fi

step() {  # NAME DIR COMMAND...: run unless DIR/.done exists
  local name="$1" dir="$2"; shift 2
  if [[ -f "$dir/.done" ]]; then
    echo "demo-srp: $name: done already ($dir)"
    return
  fi
  local t0=$SECONDS
  echo "demo-srp: $name ..."
  "$@" > /dev/null
  echo "demo-srp: $name took $((SECONDS - t0)) s"
  touch "$dir/.done"
}

start=$SECONDS
step "base training ($ARCH, $BASE_EPOCHS epochs)" "$DEMO_DIR/base" \
  env SAVE_DIR="$DEMO_DIR/base" EPOCHS="$BASE_EPOCHS" LR="$BASE_LR" bash scripts/srp/train-base.sh
step "stage 1: embedding dims to rate $RATE" "$DEMO_DIR/stage1" \
  env SAVE_DIR="$DEMO_DIR/stage1" PRETRAINED="$DEMO_DIR/base/checkpoint_last.pt" EPOCHS="$STAGE_EPOCHS" \
  LR="$PRUNE_LR" bash scripts/srp/stage1.sh
step "stage 2: FFN neurons, q·k and v·o dims to rate $RATE" "$DEMO_DIR/stage2" \
  env SAVE_DIR="$DEMO_DIR/stage2" PRETRAINED="$DEMO_DIR/stage1/checkpoint_last.pt" EPOCHS="$STAGE_EPOCHS" \
  LR="$PRUNE_LR" bash scripts/srp/stage2.sh
step "fine-tuning ($FT_EPOCHS epochs)" "$DEMO_DIR/finetune" \
  env SAVE_DIR="$DEMO_DIR/finetune" PRUNED="$DEMO_DIR/stage2/checkpoint_last.pt" EPOCHS="$FT_EPOCHS" \
  LR="$PRUNE_LR" bash scripts/srp/finetune.sh

# test: the stock generate command of scripts/srp/test.sh, timed; sizes from user_dir.srp.report
for m in base finetune; do
  ckpt="$DEMO_DIR/$m/checkpoint_last.pt"
  if [[ ! -f "$DEMO_DIR/$m/test.json" ]]; then
    echo "demo-srp: fairseq-generate on test: $m"
    CKPT="$ckpt" OUT="$DEMO_DIR/$m/generate-test.txt" bash scripts/srp/test.sh > "$DEMO_DIR/$m/test-report.txt"
    python - "$DEMO_DIR/$m" <<'EOF'
import json, re, sys
folder = sys.argv[1]
text = open(f"{folder}/test-report.txt").read()
report = json.loads(text[text.index("{"):])
bleu = float(re.search(r"BLEU = ([0-9.]+)", open(f"{folder}/generate-test.txt").read().splitlines()[-1]).group(1))
seconds = float(re.search(r"generate wall time: ([0-9.]+) s", text).group(1))
report.update(bleu=bleu, generate_seconds=seconds)
json.dump(report, open(f"{folder}/test.json", "w"), indent=1)
EOF
  fi
done

# speed: both models in one process by the bench's protocol (user_dir.bench.translation), beam 5,
# every hypothesis forced to FORCED_LEN tokens: a model trained for minutes does not stop where a
# translation would, and the pruned one would otherwise be timed on other output lengths
MEASURE="$DEMO_DIR/measure.json"
if [[ ! -f "$MEASURE" ]]; then
  echo "demo-srp: base and pruned timed in one process (beam 5, hypotheses of ${FORCED_LEN:-20} tokens)"
  python -m user_dir.bench.translation "$DATA" --model "base=$DEMO_DIR/base/checkpoint_last.pt" \
    --model "pruned=$DEMO_DIR/finetune/checkpoint_last.pt" --batch-sizes 1,32 --timing-limit 1:40,32:320 \
    --rounds 2 --threads "$THREADS" --forced-len "${FORCED_LEN:-20}" --no-bleu --out "$MEASURE.tmp" \
    > "$DEMO_DIR/measure.log" 2>&1 || { tail -20 "$DEMO_DIR/measure.log" >&2; exit 1; }
  mv "$MEASURE.tmp" "$MEASURE"
fi

mkdir -p "$(dirname "$OUT")"
python - "$DEMO_DIR" "$OUT" "$RATE" <<'EOF'
import json, sys
folder, out, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
measured = json.load(open(f"{folder}/measure.json"))
rows = []
for name, sub in (("base", "base"), ("pruned", "finetune")):
    r = json.load(open(f"{folder}/{sub}/test.json"))
    row = {"model": name, "parameters": r["parameters"],
           "flops_per_sentence": round(r["flops_per_sentence"]), "bleu": r["bleu"],
           "generate_seconds": round(r["generate_seconds"], 1)}
    for b in (1, 32):
        row[f"speedup_b{b}"] = round(measured["models"][name][f"b{b}"]["speedup"]["median"], 3)
    rows.append(row)
for row in rows:
    row["relative_flops"] = round(row["flops_per_sentence"] / rows[0]["flops_per_sentence"], 4)
    row["relative_parameters"] = round(row["parameters"] / rows[0]["parameters"], 4)
result = {"method": "srp", "task": "translation de-en (offline, test set), two-stage SRP at rate %g" % rate,
          "rows": rows}
json.dump(result, open(out, "w"), indent=1)
keys = list(rows[0])
print(" | ".join(keys))
for row in rows:
    print(" | ".join(f"{row[k]:,}" if isinstance(row[k], int) else str(row[k]) for k in keys))
json.dump({"rate": rate}, open(f"{folder}/rate.json", "w"))
EOF
echo "demo-srp: wrote $OUT in $((SECONDS - start)) s"
