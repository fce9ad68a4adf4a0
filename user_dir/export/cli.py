"""``fairseq-compress-export``: a checkpoint of the project as ONNX, with its vocabulary and a model card.

    fairseq-compress-export --path CKPT --out DIR [--user-dir user_dir] [--data DATA] [--vocab VOCAB]
    fairseq-compress-export --path CKPT --out DIR --check-parity DATA --subset test
    fairseq-compress-export --info --path CKPT

Sentence-prediction checkpoints (stock/prunable RoBERTa, Kprune, LTP, TR-BERT, compositions) give
``DIR/model.onnx`` (``src_tokens`` -> ``logits``, token pruning inside the graph); translation
checkpoints (srp, stock transformer) give ``DIR/encoder.onnx`` and ``DIR/decoder.onnx`` (one
incremental decoding step). ``DIR`` also holds ``model_card.json``, the dictionaries and the tokenizer
files, and is written atomically. ``--check-parity`` runs onnxruntime against fairseq over a split
and records the result in ``DIR/parity.json`` and the card. Exit status: 0 ok, 1 parity over the
tolerance (the export is still written), 2 a bad checkpoint or option.
"""
import argparse
import json
import logging
import os
import sys
from typing import List, Optional

logger = logging.getLogger("fairseq_compress.export")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fairseq-compress-export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--path", required=True, metavar="CKPT", help="the checkpoint to export")
    p.add_argument("--out", metavar="DIR", help="the export folder (replaced if it holds an earlier export)")
    p.add_argument("--info", action="store_true", help="print the model card and stop (no export)")
    p.add_argument("--user-dir", default=None, help="accepted for symmetry with the fairseq tools "
                   "(the plugin is always loaded)")
    p.add_argument("--data", default=None, help="the data folder with the model's dictionaries "
                   "(default: the one the checkpoint was trained on)")
    p.add_argument("--vocab", default=None, help="tokenizer files to ship: a BERT vocab.txt or a folder with "
                   "one (or with fairseq RoBERTa's encoder.json + vocab.bpe); default: found from the data "
                   "folder and the checkpoints the model was made from")
    p.add_argument("--length", type=int, default=None,
                   help="sequence length of the card's per-example FLOPs (default: 128, at most the model's)")
    p.add_argument("--exporter", choices=("torchscript", "dynamo"), default="torchscript",
                   help="torch's ONNX exporter (default: %(default)s; see docs/export.md)")
    p.add_argument("--check-parity", metavar="DATA", default=None,
                   help="after exporting, compare onnxruntime with fairseq on a split of this data folder")
    p.add_argument("--subset", default="test", help="split of --check-parity (default: %(default)s)")
    p.add_argument("--parity-limit", type=int, default=0,
                   help="at most about this many examples, evenly spread over the lengths (default: all)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads for the parity check")
    return p


def export(args) -> dict:
    """Export ``args.path`` into ``args.out``; returns the model card."""
    from user_dir.export import model_card, output_dir, vocabulary
    from user_dir.export.loading import load
    from user_dir.export.method_chain import method_chain

    output_dir.check_out(args.out)
    source = load(args.path, args.data)
    chain = method_chain(args.path, source.state)
    card = model_card.build_card(source, chain, args.length)
    with output_dir.atomic_folder(args.out) as tmp:
        if source.kind == "sentence":
            from user_dir.export.sentence_graph import export_sentence

            files = {"model": "model.onnx"}
            card["exporter"] = export_sentence(source.graph_model, source.head, source.task.source_dictionary,
                                               str(tmp / files["model"]), args.exporter)
            tokenizer = vocabulary.find_tokenizer(source.data, chain, args.vocab)
            card["vocabulary"] = vocabulary.copy_sentence_vocabulary(source.data, str(tmp), tokenizer)
        else:
            from user_dir.export.translation_graph import export_translation

            files = {"encoder": "encoder.onnx", "decoder": "decoder.onnx"}
            card["exporter"] = export_translation(source.graph_model, str(tmp / files["encoder"]),
                                                  str(tmp / files["decoder"]), args.exporter)
            card["vocabulary"] = vocabulary.copy_translation_vocabulary(source.data, str(tmp), source.task)
        card["files"] = files
        if args.check_parity:
            card["parity"] = check(source, tmp, args)
            (tmp / "parity.json").write_text(json.dumps(card["parity"], indent=1) + "\n", encoding="utf-8")
        (tmp / output_dir.CARD).write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    return card


def check(source, folder, args) -> dict:
    from user_dir.export import parity

    if source.kind == "sentence":
        return parity.sentence_parity(source, str(folder / "model.onnx"), args.check_parity, args.subset,
                                      limit=args.parity_limit, threads=args.threads)
    return parity.translation_parity(source, str(folder / "encoder.onnx"), str(folder / "decoder.onnx"),
                                     args.check_parity, args.subset, limit=args.parity_limit, threads=args.threads)


def info(args) -> dict:
    from user_dir.export import model_card
    from user_dir.export.loading import load
    from user_dir.export.method_chain import method_chain

    source = load(args.path, args.data)
    return model_card.build_card(source, method_chain(args.path, source.state), args.length)


def main(argv: Optional[List[str]] = None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    if not args.info and not args.out:
        parser.error("--out DIR is required (or --info to print the model card only)")
    if args.length is not None and args.length < 2:
        parser.error("--length must be at least 2 (<s> and </s>)")
    _log_to_stderr()
    import user_dir  # noqa: F401  (registers the models; lets torch.load read fairseq checkpoints)
    from user_dir.common.data_classes import LabelSpecError
    from user_dir.export.loading import ExportError
    from user_dir.export.output_dir import OutputError

    try:
        if args.info:
            print(json.dumps(info(args), indent=1))
            return 0
        card = export(args)
    except (ExportError, OutputError, LabelSpecError) as e:
        print(f"fairseq-compress-export: error: {e}", file=sys.stderr)
        return 2
    files = ", ".join(os.path.join(args.out, f) for f in card["files"].values())
    print(f"exported {card['method_chain_text'] or card['architecture']['model']} -> {files}")
    parity = card.get("parity")
    if parity is not None:
        print(f"parity on {parity['subset']} ({parity['examples']} examples): max |diff| "
              f"{parity['max_abs_diff']:.2e}, {parity['over_tolerance']} over {parity['tolerance']:g}, "
              f"argmax agreement {parity['argmax_agreement']}")
        if not parity["passed"]:
            print("fairseq-compress-export: parity check failed (see parity.json)", file=sys.stderr)
            return 1
    return 0


def _log_to_stderr():
    """fairseq's log format, on stderr: stdout carries only the card (``--info``) or the result lines."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)s | %(name)s | %(message)s",
                                           "%Y-%m-%d %H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(os.environ.get("LOGLEVEL", "INFO").upper())


def cli_main():
    sys.exit(main())


if __name__ == "__main__":
    cli_main()
