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
