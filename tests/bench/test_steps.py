"""Resumable bench steps: run once, skip when done, rerun on new settings, keep time across sittings."""
import json
import sys

import pytest

from user_dir.bench.steps import StepFailed, Steps


def _steps(tmp_path, monkeypatch, force=""):
    monkeypatch.setenv("FORCE", force)
    return Steps(tmp_path / "bench", tmp_path, log=lambda m: None)


def test_a_step_runs_once_and_is_skipped_when_done(tmp_path, monkeypatch):
    calls = []
    st = _steps(tmp_path, monkeypatch)
    st.run("a/b", lambda d: calls.append(d), settings="x")
    st.run("a/b", lambda d: calls.append(d), settings="x")
    assert len(calls) == 1
    stamp = json.loads((tmp_path / "bench/a/b/.done").read_text())
    assert stamp["settings"] == "x" and stamp["seconds"] >= 0
    assert [s["step"] for s in st.summary()] == ["a/b"]


def test_new_settings_start_over(tmp_path, monkeypatch):
    st = _steps(tmp_path, monkeypatch)
    st.run("s", lambda d: (d / "out.txt").write_text("1"), settings="lr=1")
    st.run("s", lambda d: None, settings="lr=2")
    assert not (tmp_path / "bench/s/out.txt").exists()  # the old run's files are gone
    assert json.loads((tmp_path / "bench/s/.done").read_text())["settings"] == "lr=2"


def test_force_reruns_a_done_step(tmp_path, monkeypatch):
    calls = []
    _steps(tmp_path, monkeypatch).run("s", lambda d: calls.append(1))
    _steps(tmp_path, monkeypatch, force="other s").run("s", lambda d: calls.append(2))
    assert calls == [1, 2]


def test_a_failed_step_leaves_no_stamp_and_keeps_its_files_and_time(tmp_path, monkeypatch):
    st = _steps(tmp_path, monkeypatch)
    script = "import pathlib, sys; pathlib.Path(sys.argv[1], 'checkpoint_last.pt').write_text('x'); sys.exit(3)"
    folder = tmp_path / "bench/train"
    with pytest.raises(StepFailed, match="exit 3"):
        st.run("train", [sys.executable, "-c", script, folder], settings="s")
    assert not (folder / ".done").exists()
    assert (folder / "checkpoint_last.pt").exists()  # what the command wrote survives for its resume
    spent = float((folder / ".elapsed").read_text())
    # the rerun continues: same folder, files kept, and the earlier time counts
    st.run("train", [sys.executable, "-c", "import pathlib,sys; assert pathlib.Path(sys.argv[1], 'checkpoint_last.pt').exists()",
                     folder], settings="s")
    info = json.loads((folder / ".done").read_text())
    assert info["seconds"] >= spent and not (folder / ".elapsed").exists()


def test_command_output_goes_to_the_step_log(tmp_path, monkeypatch):
    st = _steps(tmp_path, monkeypatch)
    st.run("echo", [sys.executable, "-c", "print('hello from the step')"])
    assert "hello from the step" in (tmp_path / "bench/echo/step.log").read_text()


def test_sigterm_stops_the_running_command_and_keeps_the_time(tmp_path):
    """``kill`` of the bench (or the end of a session) must not leave a training running on its own."""
    import os
    import signal
    import subprocess
    import time

    from tests.conftest import REPO
    script = (f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
              "from user_dir.bench.steps import Steps, stop_children_on_sigterm\n"
              "stop_children_on_sigterm()\n"
              f"Steps({str(tmp_path / 'bench')!r}, {str(tmp_path)!r}, log=lambda m: None).run('long', [sys.executable, "
              "'-c', \"import os, time; open('child.pid', 'w').write(str(os.getpid())); time.sleep(120)\"])\n")
    bench = subprocess.Popen([sys.executable, "-c", script])
    pid_file = tmp_path / "child.pid"
    deadline = time.time() + 60
    while not (pid_file.is_file() and pid_file.read_text()) and time.time() < deadline:
        time.sleep(0.1)
    child = int(pid_file.read_text())
    bench.send_signal(signal.SIGTERM)
    assert bench.wait(timeout=30) == 128 + signal.SIGTERM
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # terminated and reaped by the bench
    folder = tmp_path / "bench" / "long"
    assert not (folder / ".done").exists() and float((folder / ".elapsed").read_text()) >= 0
