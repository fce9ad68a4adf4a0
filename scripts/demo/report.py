"""Print the demo results of every method as one table and plot quality against relative cost.

Reads results/demo/<method>.json files written by scripts/demo/<method>.sh (see docs/CONVENTIONS.md).
"""
import json
import sys
import textwrap
from pathlib import Path

QUALITY_KEYS = ("quality", "bleu", "accuracy", "acc")
COST_KEYS = ("relative_flops", "flops_ratio", "flops", "flops_per_sentence", "gflops")


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table(rows):
    keys = list(rows[0].keys())
    for row in rows[1:]:
        keys += [k for k in row if k not in keys]
    widths = [max(len(k), *(len(_fmt(r.get(k, ""))) for r in rows)) for k in keys]
    lines = [" | ".join(k.ljust(w) for k, w in zip(keys, widths)),
             "-+-".join("-" * w for w in widths)]
    for r in rows:
        lines.append(" | ".join(_fmt(r.get(k, "")).ljust(w) for k, w in zip(keys, widths)))
    return "\n".join(lines)


def _first_key(row, candidates):
    return next((k for k in candidates if isinstance(row.get(k), (int, float))), None)


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [r for r in results if _first_key(r["rows"][0], QUALITY_KEYS)
              and _first_key(r["rows"][0], COST_KEYS)]
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), squeeze=False)
    for ax, result in zip(axes[0], panels):
        rows = result["rows"]
        qk, ck = _first_key(rows[0], QUALITY_KEYS), _first_key(rows[0], COST_KEYS)
        base_cost = rows[0][ck]
        for row in rows:
            if not isinstance(row.get(ck), (int, float)) or not isinstance(row.get(qk), (int, float)):
                continue
            cost = row[ck] / base_cost if ck != "relative_flops" else row[ck]
            ax.scatter(cost, row[qk], s=40)
            ax.annotate(str(row.get("model", "")), (cost, row[qk]), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")
        ax.set_xlabel("relative FLOPs (unpruned = 1)")
        ax.set_ylabel(qk)
        # long task descriptions wrap under the method name instead of running into the next panel
        task = textwrap.fill(result.get("task", ""), width=48)
        ax.set_title(f"{result['method']}\n{task}", fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


METHODS = ("srp", "kprune", "ltp", "compose", "trbert")


def summary_rows(results):
    """One row per model of every method: quality, its metric, relative FLOPs and speed-ups."""
    rows = []
    for result in results:
        for row in result["rows"]:
            metric = "BLEU" if "bleu" in row else "accuracy"
            out = {"method": result["method"], "model": row.get("model", ""), "metric": metric,
                   "quality": row.get("bleu", row.get("quality")),
                   "relative_flops": row.get("relative_flops")}
            speedups = {k: v for k, v in row.items() if k.startswith("speedup_b") and k[9:].isdigit()}
            out.update(speedups)
            out["parameters"] = row.get("parameters")
            rows.append(out)
    return rows


def main(folder):
    folder = Path(folder)
    results = []
    for name in METHODS:
        f = folder / f"{name}.json"
        if f.exists():
            results.append(json.loads(f.read_text()))
    if not results:
        print(f"no demo results in {folder}")
        return 1
    print("\n## demo results (test splits; speed-ups against each method's unpruned model, same process)\n")
    print(table(summary_rows(results)))
    for result in results:
        print(f"- {result['method']}: {result.get('task', '')}")
    if plot(results, folder / "summary.png"):
        print(f"\nplot written to {folder / 'summary.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "results/demo"))
