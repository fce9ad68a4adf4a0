"""Shared test plumbing: the device the session runs on, and the stock fairseq command-line tools.

``pytest --device cuda`` (default ``cpu``) runs every test that can run on a GPU there: tests that
create tensors take them from the ``device`` fixture, and ``run_cli`` leaves ``--cpu`` out of the
fairseq command lines (so CLI tests run on the GPU), while the shell scripts get ``DEVICE_ARGS``.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
USER_DIR = str(REPO / "user_dir")
BIN = Path(sys.executable).parent
DEVICE = "cpu"  # set from --device when the session starts


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", choices=("cpu", "cuda"),
                     help="where the tests put their tensors, models and fairseq runs (default: cpu)")


def pytest_configure(config):
    global DEVICE
    DEVICE = config.getoption("--device")
    if DEVICE == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError("--device cuda: no CUDA device is available to this process "
                                "(torch.cuda.is_available() is False); run without --device or on a GPU")
    # the tests run in parallel workers on 2 cores; more intra-op threads than cores make every small
    # kernel wait for a busy core (a 10x slow-down measured on a loaded 2-core machine)
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def device() -> torch.device:
    return torch.device(DEVICE)


def cpu_args():
    """The fairseq flag that keeps a run on the CPU, when the session runs on it."""
    return ["--cpu"] if DEVICE == "cpu" else []


def fairseq_env():
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("OMP_NUM_THREADS", "1")  # tests run in parallel workers on 2 cores
    env.setdefault("MKL_NUM_THREADS", "1")
    env["PYTHONWARNINGS"] = "ignore"
    if DEVICE == "cpu":
        env["DEVICE_ARGS"] = "--cpu"  # the shell scripts would otherwise pick a GPU when there is one
    return env


def run_cli(args, cwd=None, check=True, timeout=600):
    """Run a command (e.g. ["fairseq-train", ...]) and return the CompletedProcess.

    On failure the combined output is in the assertion message, so a broken pipeline shows why.
    """
    args = [str(a) for a in args]
    if DEVICE != "cpu":  # the command lines of the tests are written for the CPU default
        args = [a for a in args if a != "--cpu"]
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


# The encoder methods' tiny converted BERT with its data, and that model fine-tuned one update:
# defined here once, so every module that does not import its own shares one per session (worker).
from tests.common.encoder_fixtures import tiny_classifier, tiny_encoder  # noqa: E402,F401
