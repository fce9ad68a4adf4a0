"""``results/<method>.json``: the rows every bench, demo and report writes, their table and plot.

A row is one model. Required keys (checked by :func:`check_rows`):

* ``model`` (str), ``family`` (``reference``, ``method`` or ``baseline``), ``series`` (str: rows of
  one series are one line in the plot, e.g. "LTP (tokens)" or "top-k");
* ``relative_flops`` (float, 1.0 for the reference), ``quality`` (accuracy % or BLEU),
  ``quality_split`` (e.g. ``test``);
* ``speedup_b1`` and ``speedup_b32`` (floats; more batch sizes may follow as ``speedup_b<N>``).

Anything else (dev quality, spreads, parameters, memory, settings) may be added freely.
"""
import json
import textwrap
from pathlib import Path
from typing import Dict, List, Optional, Sequence

FAMILIES = ("reference", "method", "baseline")
REQUIRED = {"model": str, "family": str, "series": str, "relative_flops": float, "quality": float,
            "quality_split": str, "speedup_b1": float, "speedup_b32": float}


def check_rows(rows: Sequence[dict]) -> None:
    if not rows:
        raise ValueError("results: no rows")
    for row in rows:
        for key, kind in REQUIRED.items():
            value = row.get(key)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float \
                else isinstance(value, kind)
            if not ok:
                raise ValueError(f"results row {row.get('model')!r}: {key} must be {kind.__name__}, got {value!r}")
        if row["family"] not in FAMILIES:
            raise ValueError(f"results row {row['model']!r}: family must be one of {FAMILIES}, got {row['family']!r}")


def speedup_keys(rows: Sequence[dict]) -> List[str]:
    keys = {k for row in rows for k in row if k.startswith("speedup_b") and not k.endswith(("_min", "_max"))}
    return sorted(keys, key=lambda k: int(k[len("speedup_b"):]))


def _cell_speed(row, key):
    if key not in row:
        return ""
    lo, hi = row.get(key + "_min"), row.get(key + "_max")
    spread = f" ({lo:.2f}–{hi:.2f})" if lo is not None and hi is not None else ""
    return f"{row[key]:.2f}x{spread}"


def markdown_table(rows: Sequence[dict], quality_name: str = "quality", extra: Sequence[str] = ()) -> str:
    """One markdown table: quality, relative FLOPs, speed-ups (median, min–max of rounds) and extras."""
    keys = speedup_keys(rows)
    ref = next((r for r in rows if r["family"] == "reference"), rows[0])
    head = ["model", "family", f"{quality_name} ({ref['quality_split']})", "drop", "rel. FLOPs"] + \
        [f"speed-up b{k[len('speedup_b'):]}" for k in keys] + list(extra)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["model"], row["family"], f"{row['quality']:.2f}",
                 f"{ref['quality'] - row['quality']:+.2f}" if row is not ref else "",
                 f"{row['relative_flops']:.3f} ({1 / row['relative_flops']:.2f}x)" if row["relative_flops"] else "0"]
        cells += [_cell_speed(row, k) for k in keys]
        cells += [_fmt(row.get(k, "")) for k in extra]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def plot(rows: Sequence[dict], path: Path, title: str, quality_name: str = "quality",
         speed_key: Optional[str] = None) -> None:
    """Quality against relative FLOPs (one line per series) and measured speed-up beside it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = speedup_keys(rows)
    speed_key = speed_key or (keys[-1] if keys else None)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    series: Dict[str, List[dict]] = {}
    for row in rows:
        series.setdefault(row["series"], []).append(row)
    markers = {"reference": "*", "method": "o", "baseline": "s"}
    for name, members in series.items():
        members = sorted(members, key=lambda r: r["relative_flops"])
        family = members[0]["family"]
        x = [r["relative_flops"] for r in members]
        line = axes[0].plot(x, [r["quality"] for r in members], marker=markers.get(family, "o"),
                            linestyle="-" if family == "method" else "--", label=name,
                            markersize=12 if family == "reference" else 6)[0]
        if speed_key:
            axes[1].plot(x, [r.get(speed_key, float("nan")) for r in members], marker=markers.get(family, "o"),
                         linestyle="-" if family == "method" else "--", color=line.get_color(), label=name,
                         markersize=12 if family == "reference" else 6)
    split = rows[0]["quality_split"]
    axes[0].set_xlabel("relative FLOPs (reference = 1)")
    axes[0].set_ylabel(f"{quality_name} ({split})")
    axes[0].grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    if speed_key:
        xs = sorted({r["relative_flops"] for r in rows if r["relative_flops"] > 0})
        axes[1].plot(xs, [1 / x for x in xs], color="grey", linewidth=0.8, label="1 / relative FLOPs")
        axes[1].set_xlabel("relative FLOPs (reference = 1)")
        axes[1].set_ylabel(f"measured speed-up, batch {speed_key[len('speedup_b'):]}")
        axes[1].grid(alpha=0.3)
        axes[1].legend(fontsize=7)
    fig.suptitle(textwrap.fill(title, 110), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(out_stem: Path, result: dict, markdown: str, title: str, quality_name: str = "quality") -> None:
    """results/<method>.json, .md and .png, each written whole (temporary file, then renamed)."""
    check_rows(result["rows"])
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    _atomic_text(out_stem.with_suffix(".json"), json.dumps(result, indent=1) + "\n")
    _atomic_text(out_stem.with_suffix(".md"), markdown)
    tmp = out_stem.with_name(out_stem.name + ".tmp.png")
    plot(result["rows"], tmp, title, quality_name)
    tmp.replace(out_stem.with_suffix(".png"))


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def binomial_interval(correct: int, total: int, z: float = 1.96):
    """Wilson 95 % interval of an accuracy, in percent."""
    if total == 0:
        return (0.0, 0.0)
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * ((p * (1 - p) / total + z * z / (4 * total * total)) ** 0.5) / denom
    return (round(100 * (centre - half), 2), round(100 * (centre + half), 2))
