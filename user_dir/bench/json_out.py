"""The measuring CLIs' output: their JSON result to ``--out``, or to stdout without it."""
import json
from typing import Optional


def emit(result: dict, out: Optional[str]) -> None:
    text = json.dumps(result, indent=1)
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        print(text)
