"""Read the figures fairseq prints for a validation subset into a dict (and optionally a JSON file).

fairseq-validate and fairseq-train (``--log-format simple``) end each subset with a line like
``valid on 'test' subset | loss 0.41 | accuracy 86.2 | rel_flops 0.4731 | keep_l0 1 | ...``.
The LTP scripts keep the last such line per subset.

    python -m user_dir.ltp.validate_log validate.log --out result.json
"""
import argparse
import json
import re
import sys

LINE = re.compile(r"valid on '([^']+)' subset(.*)$")


def _number(text):
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def parse(lines):
    """{subset: {metric: value}} from the subset summary lines (the last one per subset wins)."""
    found = {}
    for line in lines:
        m = LINE.search(line)
        if not m:
            continue
        metrics = {}
        for field in m.group(2).split("|"):
            parts = field.strip().split()
            if len(parts) == 2:
                metrics[parts[0]] = _number(parts[1])
        found[m.group(1)] = metrics
    return found


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("log", help="a fairseq-validate or fairseq-train log")
    p.add_argument("--out", help="write the figures to this JSON file")
    args = p.parse_args(argv)
    with open(args.log, encoding="utf-8") as f:
        found = parse(f)
    if not found:
        sys.exit(f"validate_log: no \"valid on '<subset>' subset\" line in {args.log}")
    text = json.dumps(found, indent=1, sort_keys=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
