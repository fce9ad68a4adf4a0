#!/usr/bin/env bash
# The whole TR-BERT pipeline, each stage a stock fairseq command (scores: a small entry point):
#   fine-tune -> residual scores -> [policy init] -> policy-only RL -> joint training with KD
#   (frozen teacher = the fine-tuned model) -> fairseq-validate.
#   bash scripts/trbert/pipeline.sh                 # data-bin/reviews, converted MiniLM
#   DATA=data-bin/imdb ARCH=trbert_roberta_base FT_ARCH=prunable_roberta_base \
#     PRETRAINED=roberta.base/model.pt bash scripts/trbert/pipeline.sh
# Stage knobs: FT_* (passed to scripts/models/finetune-baseline.sh: FT_EPOCHS FT_LR FT_BATCH FT_UPDATE_FREQ),
#   INIT (0/1) INIT_*, RL_* and JOINT_* (LR BATCH UPDATE_FREQ EPOCHS MAX_UPDATE ROLLOUTS ALPHA
#   GUIDE_RATE), SCORES (file or "online"), plus everything lib.sh reads. Finished stages
#   (train_seconds in their folder) are skipped, an interrupted one continues from its
#   checkpoint_last.pt (lib.sh); FORCE=1 reruns them from the start.
source "$(dirname "$0")/lib.sh"
SCORES="${SCORES:-$OUT/scores.pt}"
[[ "${FORCE:-0}" == 1 ]] && export RESUME=0
done_stage() { [[ -f "$1/train_seconds" && -f "$1/checkpoint_last.pt" && "${FORCE:-0}" != 1 ]]; }

# 1. fine-tune the plain encoder (stock sentence_prediction)
if [[ ! -f "$FINETUNED" ]]; then
  DATA="$DATA" SAVE_DIR="$(dirname "$FINETUNED")" ARCH="${FT_ARCH:-prunable_roberta_minilm}" \
    RESTORE="${PRETRAINED:-$MINILM_DIR/model.pt}" NUM_CLASSES="$NUM_CLASSES" \
    EPOCHS="${FT_EPOCHS:-3}" LR="${FT_LR:-3e-5}" BATCH="${FT_BATCH:-8}" UPDATE_FREQ="${FT_UPDATE_FREQ:-4}" \
    bash scripts/models/finetune-baseline.sh
fi
# 2. residual-strategy scores
[[ "$SCORES" == online ]] || SCORES="$SCORES" bash scripts/trbert/scores.sh
# 3. optional policy initialisation
if [[ "${INIT:-0}" == 1 ]] && ! done_stage "$OUT/init"; then
  SCORES="$SCORES" LR="${INIT_LR:-${LR:-3e-5}}" EPOCHS="${INIT_EPOCHS:-1}" MAX_UPDATE="${INIT_MAX_UPDATE:-}" \
    BATCH="${INIT_BATCH:-${BATCH:-8}}" UPDATE_FREQ="${INIT_UPDATE_FREQ:-${UPDATE_FREQ:-4}}" \
    bash scripts/trbert/init.sh
fi
# 4. policy-only RL
if ! done_stage "$OUT/rl"; then
  INIT_FROM="$FINETUNED"
  [[ "${INIT:-0}" == 1 ]] && INIT_FROM="$OUT/init/checkpoint_last.pt"
  INIT_FROM="$INIT_FROM" SCORES="$SCORES" LR="${RL_LR:-${LR:-3e-5}}" EPOCHS="${RL_EPOCHS:-${EPOCHS:-3}}" \
    MAX_UPDATE="${RL_MAX_UPDATE:-}" BATCH="${RL_BATCH:-${BATCH:-8}}" \
    UPDATE_FREQ="${RL_UPDATE_FREQ:-${UPDATE_FREQ:-4}}" ROLLOUTS="${RL_ROLLOUTS:-8}" \
    ALPHA="${RL_ALPHA:-1.0}" GUIDE_RATE="${RL_GUIDE_RATE:-0.5}" bash scripts/trbert/rl.sh
fi
# 5+6. joint training, the fine-tuned model as online teacher
if ! done_stage "$OUT/joint"; then
  INIT_FROM="$OUT/rl/checkpoint_last.pt" TEACHER="$FINETUNED" KD="${KD:-1}" SCORES="$SCORES" \
    LR="${JOINT_LR:-${LR:-3e-5}}" EPOCHS="${JOINT_EPOCHS:-${EPOCHS:-3}}" MAX_UPDATE="${JOINT_MAX_UPDATE:-}" \
    BATCH="${JOINT_BATCH:-${BATCH:-8}}" UPDATE_FREQ="${JOINT_UPDATE_FREQ:-${UPDATE_FREQ:-4}}" \
    ROLLOUTS="${JOINT_ROLLOUTS:-8}" ALPHA="${JOINT_ALPHA:-1.0}" GUIDE_RATE="${JOINT_GUIDE_RATE:-0}" \
    bash scripts/trbert/joint.sh
fi
# 7. validate (relative FLOPs and kept-token ratios are fairseq metrics of the trbert criterion)
CHECKPOINT="$OUT/joint/checkpoint_last.pt" bash scripts/trbert/validate.sh
