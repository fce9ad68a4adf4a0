"""scripts/gpu-check.sh and its parts on a machine without a GPU: the check says so in one line and
exits 0 without writing anything; the speed measurement runs on the CPU with tiny shapes; the
summary reads pytest's JUnit XML and the speed JSON."""
import json
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO, fairseq_env


@pytest.mark.skipif(torch.cuda.is_available(), reason="the no-GPU path needs a machine without a GPU")
def test_without_a_gpu_the_check_says_so_and_exits_0(tmp_path):
    out = tmp_path / "gpu"
    proc = subprocess.run(["bash", str(REPO / "scripts" / "gpu-check.sh")], cwd=tmp_path,
                          env={**fairseq_env(), "OUT": str(out)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout
    lines = proc.stdout.strip().splitlines()
    assert lines == ["gpu-check: no CUDA GPU is visible to torch on this machine (torch.cuda.is_available() "
                     "is False); nothing to check"]
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal needs a machine without a GPU")
def test_pytest_device_cuda_without_a_gpu_stops_with_a_clear_message(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "--device", "cuda", "--collect-only",
                           "-q", "--basetemp", str(tmp_path / "t"), "tests/gpu/test_gpu_check.py"], cwd=REPO,
                          env=fairseq_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert proc.returncode == 4, proc.stdout[-2000:]  # pytest's usage error
    assert "--device cuda: no CUDA device is available to this process" in proc.stdout


@pytest.mark.integration
def test_speed_measurement_runs_on_the_cpu_with_tiny_shapes(tmp_path):
    out = tmp_path / "speed.json"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "gpu" / "speed.py"), "--tiny", "--device", "cpu",
                           "--dtypes", "fp32", "--batch-sizes", "1,4", "--examples", "4", "--rounds", "1",
                           "--min-seconds", "0", "--out", str(out)], cwd=REPO, env=fairseq_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    result = json.loads(out.read_text())
    assert result["device"] == "cpu"
    for size in ("b1", "b4"):
        encoders, srp = result["encoders"]["fp32"][size], result["srp"]["fp32"][size]
        assert set(encoders) == {"base", "kprune-50", "ltp-topk-50", "trbert-50"} and set(srp) == {"base", "srp-50"}
        assert encoders["base"]["speedup"]["median"] == 1.0
        assert all(r["throughput"]["median"] > 0 for r in [*encoders.values(), *srp.values()])


def test_summary_of_junit_xml_and_speed(tmp_path):
    sys.path.insert(0, str(REPO / "scripts" / "gpu"))
    import summary

    (tmp_path / "unit.xml").write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.a" name="test_ok"/>'
        '<testcase classname="tests.a" name="test_bad"><failure message="assert 1 == 2">x</failure></testcase>'
        '<testcase classname="tests.b" name="test_skip"><skipped message="no"/></testcase>'
        '</testsuite></testsuites>')
    speed = {"device": "H200", "encoders": {"fp16": {"b32": {"base": {"speedup": {"median": 1.0}},
                                                             "kprune-50": {"speedup": {"median": 1.73}}}}}}
    (tmp_path / "speed.json").write_text(json.dumps(speed))
    summary.main([str(tmp_path), "--seconds", "300", "--status", "1"])
    tests = json.loads((tmp_path / "tests.json").read_text())
    assert tests["unit"]["passed"] == 1 and tests["unit"]["failed"] == 1 and tests["unit"]["skipped"] == 1
    assert tests["unit"]["failures"] == [{"test": "tests.a::test_bad", "message": "assert 1 == 2"}]
    assert tests["mixed"] == {"what": summary.STEPS["mixed"], "finished": False}
    result = json.loads((tmp_path / "summary.json").read_text())
    assert result["speedups"] == {"kprune-50 fp16 b32": 1.73} and result["status"] == 1 and result["device"] == "H200"
