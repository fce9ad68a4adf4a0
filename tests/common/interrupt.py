"""Interrupting a real command with SIGKILL at a chosen point of its work (see sigkill/sitecustomize.py)."""
import os
from pathlib import Path

SIGKILL_DIR = Path(__file__).resolve().parent / "sigkill"


def sigkill_env(prog: str, target: str, at: int) -> dict:
    """Environment variables that make program ``prog`` SIGKILL itself at the ``at``-th call of
    ``target`` (``module:Class.method``); pass them to ``env`` in front of the command."""
    path = os.pathsep.join(p for p in (str(SIGKILL_DIR), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "SIGKILL_PROG": prog, "SIGKILL_TARGET": target, "SIGKILL_AT": str(at)}


def partial_files(folder: Path):
    """Outputs a killed writer could leave behind: the ``*.tmp`` of an atomic save, empty
    checkpoints or JSON files (logs are not outputs: a killed process loses its buffered lines)."""
    return [p for p in Path(folder).rglob("*") if p.is_file() and (
        p.suffix == ".tmp" or (p.suffix in (".pt", ".json") and p.stat().st_size == 0))]
