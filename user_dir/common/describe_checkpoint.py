"""Describe a fine-tuned sentence-prediction checkpoint, or print the flags that restore it.

    python -m user_dir.common.describe_checkpoint CKPT                 # JSON: family, shape, heads
    python -m user_dir.common.describe_checkpoint CKPT --data DATA --flags

``--flags`` prints the fairseq-train flags that make a prunable architecture (``ltp_roberta*``,
``trbert_roberta*``) match the checkpoint's shape and classification head; the method scripts use
it for ``--restore-file``. ``--data`` refuses a checkpoint whose head does not fit the folder's labels.
(The logic is :mod:`user_dir.common.checkpoint_info`; this module only holds the command line, so
that running it does not import it a second time.)
"""
import argparse
import json
import sys
from dataclasses import asdict


def main(argv=None) -> int:
    from user_dir.common.data_classes import LabelSpecError

    p = argparse.ArgumentParser(prog="python -m user_dir.common.describe_checkpoint", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", help="a fine-tuned sentence_prediction checkpoint")
    p.add_argument("--data", help="refuse the checkpoint when its head does not fit this data folder")
    p.add_argument("--flags", action="store_true",
                   help="print the fairseq-train flags that restore it into a prunable architecture")
    args = p.parse_args(argv)
    import user_dir  # noqa: F401  (registers the architectures and the checkpoint types)
    from user_dir.common.checkpoint_info import (
        CheckpointInfoError,
        check_head_matches_data,
        read_info,
        restore_flags,
    )

    try:
        # a pretrained (e.g. masked_lm) checkpoint is a valid --restore-file too: no task check here
        info = read_info(args.path)
        if args.data:
            check_head_matches_data(info, args.data)
        head = info.head
    except (CheckpointInfoError, LabelSpecError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.flags:
        print(" ".join(restore_flags(info)))
    else:
        print(json.dumps(dict(asdict(info), head=head), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
