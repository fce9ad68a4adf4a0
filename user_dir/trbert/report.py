"""Read the per-split metrics out of a ``fairseq-validate`` log (``--log-format simple``) into JSON.

    python -m user_dir.trbert.report validate.log --out validate.json

Each ``valid on 'SPLIT' subset | key value | ...`` line becomes ``{"SPLIT": {"key": value, ...}}``;
TR-BERT checkpoints add ``rel_flops`` and ``kept_l<k>``.
"""
import argparse
import json
import re
from typing import Dict

LINE = re.compile(r"valid on '([^']+)' subset\s*\|(.*)$")


def parse_validate_log(text: str) -> Dict[str, Dict[str, float]]:
    result = {}
    for line in text.splitlines():
        match = LINE.search(line)
        if not match:
            continue
        values = {}
        for field in match.group(2).split("|"):
            parts = field.split()
            if len(parts) == 2:
                try:
                    values[parts[0]] = float(parts[1])
                except ValueError:
                    pass
        result[match.group(1)] = values
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    with open(args.log) as f:
        result = parse_validate_log(f.read())
    if not result:
        raise SystemExit(f"no 'valid on ... subset' line in {args.log}")
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
