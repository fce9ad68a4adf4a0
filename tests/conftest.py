"""Shared test plumbing: running the stock fairseq command-line tools with our plugin."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
USER_DIR = str(REPO / "user_dir")
BIN = Path(sys.executable).parent


def fairseq_env():
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("OMP_NUM_THREADS", "1")  # tests run in parallel workers on 2 cores
    env.setdefault("MKL_NUM_THREADS", "1")
    env["PYTHONWARNINGS"] = "ignore"
    return env


def run_cli(args, cwd=None, check=True, timeout=600):
    """Run a command (e.g. ["fairseq-train", ...]) and return the CompletedProcess.

    On failure the combined output is in the assertion message, so a broken pipeline shows why.
    """
    args = [str(a) for a in args]
    proc = subprocess.run(
        args, cwd=cwd or REPO, env=fairseq_env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed ({proc.returncode}): {' '.join(args)}\n{proc.stdout[-6000:]}"
        )
    return proc


@pytest.fixture
def cli():
    return run_cli
