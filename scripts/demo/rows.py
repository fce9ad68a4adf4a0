#!/usr/bin/env python
"""A measurement of user_dir.bench.compare -> results/demo/<method>.json rows (the bench's schema).

    python scripts/demo/rows.py MEASURE.json --method ltp --task "..." --split test \\
        --label base="fine-tuned MiniLM" --label ltp="LTP lambda 0.03" --out results/demo/ltp.json

The first model is the reference; the others are the method's. Prints the table it writes.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from user_dir.bench import compare, results  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("measure", help="JSON written by python -m user_dir.bench.compare --out")
    p.add_argument("--method", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--split", default="test", help="split whose quality the rows report (default: %(default)s)")
    p.add_argument("--label", action="append", default=[], metavar="NAME=LABEL", help="display name of a model")
    p.add_argument("--extra", default="{}", help="JSON object merged into the result (settings, times)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    measured = json.loads(Path(args.measure).read_text())
    labels = dict(item.split("=", 1) for item in args.label)
    models = measured["models"]
    sizes = sorted(int(k[1:]) for k in next(iter(models.values())) if k[0] == "b" and k[1:].isdigit())
    rows = []
    for i, name in enumerate(models):
        label = labels.get(name, name)
        rows.append({"model": label, "family": "reference" if i == 0 else "method", "series": label,
                     **compare.row_fields(models, name, args.split, sizes)})
    result = {"method": args.method, "task": args.task, "protocol": measured["protocol"], "rows": rows,
              **json.loads(args.extra)}
    results.check_rows(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(results.markdown_table(rows, "quality"))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
