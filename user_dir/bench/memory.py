"""Peak memory of one forward pass, measured in this process (host memory; GPU memory on a GPU).

Linux keeps a high-water mark of the resident set (``VmHWM``); writing ``5`` to
``/proc/self/clear_refs`` resets it to the current resident size. Around a call we return freed heap
to the system (``malloc_trim``), reset the mark, run the call and read how far above the starting
resident size it went: the memory the call itself needed (activations, workspace). Adding the bytes
of the model's parameters and buffers gives the peak a process holding only this model would reach.
Where the kernel interface is missing (not Linux), the peak is reported as ``None``.
"""
import ctypes
import gc
from typing import Callable, Optional

import torch

_LIBC = None


def _status_kb(key: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _trim():
    global _LIBC
    gc.collect()
    try:
        _LIBC = _LIBC or ctypes.CDLL("libc.so.6")
        _LIBC.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_high_water_mark() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def model_bytes(model: torch.nn.Module) -> int:
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


@torch.inference_mode()
def call_peak_bytes(call: Callable[[], object]) -> Optional[int]:
    """Resident memory the call needs above what the process held before it (bytes), or None."""
    _trim()
    before = _status_kb("VmRSS")
    if before is None or not _reset_high_water_mark():
        call()
        return None
    call()
    peak = _status_kb("VmHWM")
    return max(0, peak - before) * 1024


@torch.inference_mode()
def cuda_call_peak_bytes(call: Callable[[], object], device) -> int:
    """GPU memory the call needs above what was allocated before it (bytes), by the CUDA allocator's
    peak statistics (the resident-set mark above sees host memory only)."""
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    call()
    torch.cuda.synchronize(device)
    return max(0, torch.cuda.max_memory_allocated(device) - before)


def forward_peak_mb(model: torch.nn.Module, call: Callable[[], object]) -> Optional[float]:
    """Peak memory (MiB) of a process holding ``model`` and running ``call`` once: host memory on
    a CPU, GPU memory when the model is on a CUDA device.

    The call runs once untimed first: one-off allocations (kernel workspaces, caches that a
    long-running process keeps anyway) are not what a forward pass needs each time."""
    with torch.inference_mode():
        call()
    device = next(model.parameters()).device
    if device.type == "cuda":
        extra = cuda_call_peak_bytes(call, device)
    else:
        extra = call_peak_bytes(call)
    if extra is None:
        return None
    return round((extra + model_bytes(model)) / 2 ** 20, 1)
