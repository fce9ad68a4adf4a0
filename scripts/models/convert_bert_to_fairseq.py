#!/usr/bin/env python
"""Convert a BERT checkpoint folder (model.safetensors + vocab.txt + config.json) into a fairseq
RoBERTa-style checkpoint (model.pt + dict.txt) that stock `fairseq-train --task
sentence_prediction --restore-file OUT/model.pt` can start from.

The mapping is in user_dir/common/bert_conversion.py (see its docstring for what changes and why).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without install

from user_dir.common.bert_conversion import ConversionError, convert  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bert-dir", required=True, help="folder with model.safetensors, vocab.txt, config.json")
    p.add_argument("--out-dir", required=True, help="where model.pt, dict.txt and vocab.txt are written")
    p.add_argument("--arch", default="prunable_roberta_minilm",
                   help="architecture recorded in the checkpoint's cfg (default: %(default)s); every "
                        "dimension is recorded explicitly as well")
    p.add_argument("--layernorm-eps", type=float, default=None,
                   help="LayerNorm eps recorded in cfg.model.layernorm_eps (default: config.json's "
                        "layer_norm_eps, 1e-12 for BERT)")
    args = p.parse_args(argv)
    try:
        convert(args.bert_dir, args.out_dir, arch=args.arch, layernorm_eps=args.layernorm_eps)
    except ConversionError as e:
        sys.exit(f"convert_bert_to_fairseq: error: {e}")


if __name__ == "__main__":
    main()
