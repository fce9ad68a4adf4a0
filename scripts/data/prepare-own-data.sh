#!/usr/bin/env bash
# Your own labelled text -> a fairseq sentence_prediction data folder (input0/, input1/ for
# pairs, label/, data.json), tokenised with the encoder's own vocabulary.
#
#   bash scripts/data/prepare-own-data.sh --train FILE [--valid FILE] [--test FILE] --out data-bin/NAME \
#       [--encoder DIR] [--regression] [--valid-fraction 0.1] [--seed 1] [--max-tokens N]
#
# Rows: label<TAB>text or label<TAB>text<TAB>text2 (.tsv/.txt), the same with CSV quoting (.csv).
# --encoder: a converted BERT (vocab.txt + dict.txt) or fairseq RoBERTa's GPT-2 BPE files
# (encoder.json + vocab.bpe + dict.txt); default the embedded MiniLM (checkpoints/minilm, prepared
# by prepare-minilm.sh when missing). Without --valid a validation split is carved from --train;
# without --test there is no test split. Paths are relative to the current directory. The logic is
# scripts/data/own_data.py (python scripts/data/own_data.py --help); docs/encoder-foundation.md,
# "Your own data", has the header rule, the class order and data.json.
CALLER_PWD="$PWD"
source "$(dirname "$0")/../lib/encoder.sh"   # venv on PATH, REPO, MINILM_DIR (cds to REPO)
cd "$CALLER_PWD"
export MINILM_DIR
exec python "$REPO/scripts/data/own_data.py" "$@"
