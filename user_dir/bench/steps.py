"""Resumable bench steps: each step runs once, is skipped when done, and resumes when interrupted.

A step owns a folder ``ROOT/<name>/``. When its command succeeds, ``.done`` is written there with the
step's settings and its wall time; a later run with the same settings skips it. A rerun of an
interrupted step calls the same command again, and the command itself continues (fairseq-train
resumes from its ``checkpoint_last.pt``); the time already spent is kept in ``.elapsed`` (updated
while the command runs), so the recorded wall time of a step spans all its sittings. Changing a
step's settings (or ``FORCE=<name>``) reruns it from scratch.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

Command = Union[Sequence[str], Callable[[Path], None]]


class StepFailed(RuntimeError):
    pass


class Steps:
    def __init__(self, root: Union[str, Path], repo: Union[str, Path], log=print):
        self.root = Path(root)
        self.repo = Path(repo)
        self.log = log
        self.times: Dict[str, dict] = {}
        force = os.environ.get("FORCE", "")
        self.force = set(filter(None, force.replace(",", " ").split()))

    def dir(self, name: str) -> Path:
        return self.root / name

    def done(self, name: str, settings: str = "") -> bool:
        stamp = self.dir(name) / ".done"
        if name in self.force or not stamp.is_file():
            return False
        return json.loads(stamp.read_text()).get("settings") == settings

    def run(self, name: str, command: Command, settings: str = "", env: Optional[Dict[str, str]] = None) -> Path:
        """Run ``command`` as step ``name`` unless done; returns the step's folder.

        ``command`` is an argv list (run in the repository root, output to ``<dir>/step.log``) or a
        Python callable taking the step folder.
        """
        folder = self.dir(name)
        stamp = folder / ".done"
        if self.done(name, settings):
            info = json.loads(stamp.read_text())
            self.times[name] = info
            self.log(f"[bench] {name}: done ({info['seconds']:.0f} s)")
            return folder
        settings_file = folder / ".settings"
        if folder.exists() and (name in self.force or
                                (settings_file.is_file() and settings_file.read_text() != settings)):
            self.log(f"[bench] {name}: settings changed, starting over")
            shutil.rmtree(folder)
            self.force.discard(name)
        folder.mkdir(parents=True, exist_ok=True)
        settings_file.write_text(settings)
        elapsed_file = folder / ".elapsed"
        before = float(elapsed_file.read_text()) if elapsed_file.is_file() else 0.0
        self.log(f"[bench] {name}: running" + (f" (resuming; {before:.0f} s spent before)" if before else ""))
        start = time.time()
        try:
            if callable(command):
                command(folder)
            else:
                self._subprocess(list(map(str, command)), folder, env, lambda: elapsed_file.write_text(
                    f"{before + time.time() - start:.1f}"))
        except BaseException:
            elapsed_file.write_text(f"{before + time.time() - start:.1f}")
            raise
        seconds = before + time.time() - start
        info = {"settings": settings, "seconds": round(seconds, 1),
                "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        stamp.write_text(json.dumps(info))
        elapsed_file.unlink(missing_ok=True)
        self.times[name] = info
        self.log(f"[bench] {name}: finished in {seconds:.0f} s")
        return folder

    def _subprocess(self, argv: List[str], folder: Path, env, heartbeat) -> None:
        log_path = folder / "step.log"
        self.log(f"[bench]   $ {' '.join(argv)}   (log: {log_path})")
        with open(log_path, "a", encoding="utf-8") as log:
            proc = subprocess.Popen(argv, cwd=self.repo, stdout=log, stderr=subprocess.STDOUT,
                                    env={**os.environ, **(env or {})})
            try:
                while proc.poll() is None:
                    time.sleep(5)
                    heartbeat()
            except BaseException:
                proc.terminate()
                proc.wait()
                raise
        if proc.returncode != 0:
            tail = "".join(open(log_path, encoding="utf-8", errors="replace").readlines()[-25:])
            raise StepFailed(f"step {folder.name} failed (exit {proc.returncode}); last lines of {log_path}:\n{tail}")

    def summary(self) -> List[dict]:
        return [{"step": name, "seconds": info["seconds"], "finished": info.get("finished")}
                for name, info in self.times.items()]


def stop_children_on_sigterm() -> None:
    """Make SIGTERM (``kill``, a closing session) end the bench like Ctrl-C: the running step's
    command is terminated and its time kept, instead of the command going on without the bench."""
    def _exit(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, _exit)


def python() -> str:
    return sys.executable
