"""Peak-memory measurement: a known allocation is seen, nothing is invented, model bytes by hand."""
import pytest
import torch

from user_dir.bench import memory


def test_model_bytes_by_hand():
    lin = torch.nn.Linear(10, 4)            # 40 + 4 float32 parameters
    lin.register_buffer("stat", torch.zeros(6, dtype=torch.float64))  # 6 float64
    assert memory.model_bytes(lin) == 44 * 4 + 6 * 8


def test_tied_parameters_count_once():
    a = torch.nn.Linear(8, 8, bias=False)
    b = torch.nn.Linear(8, 8, bias=False)
    b.weight = a.weight
    assert memory.model_bytes(torch.nn.ModuleList([a, b])) == 64 * 4


@pytest.mark.skipif(memory._status_kb("VmHWM") is None, reason="needs Linux /proc")
def test_a_large_allocation_is_seen_and_a_small_call_is_not():
    big = 256 * 2 ** 20

    def allocate():
        t = torch.ones(big // 4)  # 256 MiB, touched
        return float(t[-1])

    seen = memory.call_peak_bytes(allocate)
    assert seen is not None and 0.8 * big <= seen <= 1.5 * big
    small = memory.call_peak_bytes(lambda: torch.ones(10).sum())
    assert small < 32 * 2 ** 20


def test_gpu_peak_is_the_allocator_peak_above_what_was_allocated_before(monkeypatch):
    """The CUDA path, on the CPU: the allocator's statistics are faked, the arithmetic is real."""
    calls = []
    state = {"allocated": 300, "peak": 300}

    def call():
        calls.append("call")
        state["peak"] = 300 + 5000  # the call's activations came and went
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append("sync"))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: state["allocated"])
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats",
                        lambda device=None: (calls.append("reset"), state.update(peak=state["allocated"])))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: state["peak"])
    assert memory.cuda_call_peak_bytes(call, "cuda") == 5000
    assert calls == ["sync", "reset", "call", "sync"]  # measured after the queued work finished
