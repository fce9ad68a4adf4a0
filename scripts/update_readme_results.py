#!/usr/bin/env python
"""Copy the measured results into README.md, between the `<!-- results:METHOD -->` markers.

For each method: the benchmark report (results/METHOD.md, written by `make bench`, committed) as it
is, and with --demo the local demo table (results/demo/METHOD.json, written by `make demo`; not
committed, so the committed README never carries it); a file that is missing is said so, never
filled in by hand.

    python scripts/update_readme_results.py [--readme README.md] [--results results] [--demo]
"""
import argparse
import json
import re
from pathlib import Path

METHODS = ("srp", "ltp", "trbert", "kprune", "compose", "compose-trbert", "export")
BENCH_ONLY = ("compose", "compose-trbert", "export")
SUITE = {"compose-trbert": "compose"}  # a results file written by another suite than its name


def demo_table(path: Path) -> str:
    result = json.loads(path.read_text())
    rows = result["rows"]
    keys = list(rows[0])
    lines = [f"**Demo** (`make demo`; {result.get('task', '')}):", "",
             "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = []
        for k in keys:
            v = row.get(k, "")
            if isinstance(v, bool):
                cells.append(str(v))
            elif isinstance(v, int):
                cells.append(f"{v:,}")
            elif isinstance(v, float):
                cells.append(f"{v:.4g}")
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bench_report(path: Path) -> str:
    text = path.read_text().strip()
    # the report's title (its first heading, at any level) becomes a bold line; the other headings
    # sit one level below the README's "### Results"
    title = re.match(r"#+ (.*)\n", text)
    if title:
        text = text[title.end():].lstrip("\n")
    head = f"**Benchmark** (`make bench`){': ' + title.group(1) if title else ''}"
    plot = path.with_suffix(".png")
    if plot.is_file():
        head += f"\n\n![{path.stem} results]({plot.as_posix()})"
    return head + "\n\n" + re.sub(r"^#+ ", "#### ", text, flags=re.M)


def section(results: Path, method: str, with_demo: bool = False) -> str:
    parts = []
    demo = results / "demo" / f"{method}.json"
    bench = results / f"{method}.md"
    if with_demo and demo.is_file():
        parts.append(demo_table(demo))
    elif method not in BENCH_ONLY:
        parts.append(f"(no demo result here: `make demo` writes {demo}, which is not committed)")
    parts.append(bench_report(bench) if bench.is_file() else
                 f"(no benchmark result yet: `METHODS={SUITE.get(method, method)} make bench` writes {bench}; "
                 "the figures of the former benchmark were measured with another protocol and are not "
                 "repeated here)")
    return "\n\n".join(parts)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--readme", default="README.md")
    p.add_argument("--results", default="results")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--demo", action="store_true",
                   help="also copy the local demo tables (results/demo/, not committed)")
    args = p.parse_args()
    readme = Path(args.readme)
    text = readme.read_text()
    for m in args.methods:
        pattern = re.compile(rf"(<!-- results:{m} -->\n).*?(<!-- /results:{m} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"{readme}: no <!-- results:{m} --> ... <!-- /results:{m} --> markers")
        body = section(Path(args.results), m, args.demo)
        text = pattern.sub(lambda mt: mt.group(1) + body + "\n" + mt.group(2), text)
    readme.write_text(text)
    print(f"updated {readme} ({', '.join(args.methods)})")


if __name__ == "__main__":
    main()
