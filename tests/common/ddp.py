"""Data-parallel fairseq-train on the CPU, as this project runs it: one process per rank, gloo,
``legacy_ddp`` (torchrun and ``pytorch_ddp`` do not work on CPUs). Each rank runs
``ddp_worker.py`` (stock fairseq-train that also dumps its model state next to each checkpoint)."""
import socket
import subprocess
import sys
from pathlib import Path
from typing import List

import torch

from tests.conftest import REPO, fairseq_env

WORKER = Path(__file__).resolve().parent / "ddp_worker.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(train_args: List, world: int = 2, timeout: int = 600) -> List[str]:
    """Run ``fairseq-train`` (``train_args`` without the program name, ``--cpu`` included) on
    ``world`` CPU ranks; returns each rank's output, after asserting that every rank succeeded."""
    port = free_port()
    procs = []
    for rank in range(world):
        args = [*map(str, train_args), "--distributed-world-size", str(world), "--distributed-rank", str(rank),
                "--distributed-init-method", f"tcp://127.0.0.1:{port}", "--distributed-no-spawn",
                "--distributed-backend", "gloo", "--ddp-backend", "legacy_ddp", "--device-id", "0"]
        procs.append(subprocess.Popen([sys.executable, str(WORKER), *args], cwd=REPO, env=fairseq_env(),
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=timeout)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    failed = [f"rank {r} (exit {p.returncode}):\n{out[-4000:]}" for r, (p, out) in enumerate(zip(procs, outs))
              if p.returncode != 0]
    assert not failed, "\n".join(failed)
    return outs


def rank_states(save_dir: Path, world: int = 2, start: bool = False):
    """The model state each rank dumped at its last checkpoint (``start``: when training began)."""
    suffix = "_start" if start else ""
    return [torch.load(Path(save_dir) / f"model_rank{r}{suffix}.pt") for r in range(world)]
