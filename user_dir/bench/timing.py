"""The timing protocol every published speed figure of the project follows.

Several models are timed on the same list of batches in one process:

1. the thread count is fixed (``torch.set_num_threads``) for the whole measurement;
2. each model makes one untimed warm-up pass (allocator, kernel selection);
3. ``rounds`` timed rounds follow; in a round every model makes one pass over all batches, in an
   order that rotates from round to round, so a drift of the machine's load hits every model alike;
   a pass is repeated until it lasts ``min_seconds`` so short passes are not dominated by the clock;
4. per model: the median throughput (examples / s) over the rounds with its min and max, from wall
   time and from process CPU time; per pair: the speed-up is the median of the per-round ratios
   (model / reference in the same round), with their min and max.

On an idle machine wall and CPU time agree; when they do not, the machine was busy and the CPU-time
ratio is the steadier of the two.

On a GPU (``device`` cuda) the kernels run asynchronously: a pass is timed by CUDA events recorded on
the stream before and after it, with a device synchronisation before the first event and after the
last one, so the figure is the device's time for the work and not the time to queue it (``Clock``).
Elsewhere ``Clock`` is ``time.perf_counter``.
"""
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Sequence

import torch


@dataclass(frozen=True)
class Protocol:
    threads: int = 1
    rounds: int = 5
    min_seconds: float = 0.5

    def describe(self) -> str:
        return (f"{self.threads} thread(s), 1 warm-up pass, median of {self.rounds} interleaved rounds "
                f"(each pass >= {self.min_seconds} s), min-max in brackets")

    def as_dict(self) -> dict:
        return asdict(self)


def parse_limits(text: str) -> Dict[int, int]:
    """``"1:300,8:800"`` -> {1: 300, 8: 800}: at most N examples per timing pass at a batch size."""
    return {int(k): int(v) for k, v in (item.split(":") for item in filter(None, text.split(",")))}


class Clock:
    """Elapsed time of the work a pass puts on ``device``: CUDA events on a GPU, perf_counter else."""

    def __init__(self, device=None):
        self.device = torch.device(device or "cpu")
        self.cuda = self.device.type == "cuda"
        self._start = None

    def start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)  # nothing queued earlier is counted
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._start = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since ``start``, after the work queued so far has finished."""
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            end.synchronize()
            return self._start.elapsed_time(end) / 1000.0  # milliseconds
        return time.perf_counter() - self._start


def _one_pass(run: Callable, batches: Sequence, min_seconds: float, clock: Clock = None):
    """(examples, wall s, cpu s) of repeated passes over ``batches`` lasting at least ``min_seconds``."""
    clock = clock or Clock()
    n, cpu0 = 0, time.process_time()
    clock.start()
    while True:
        for batch in batches:
            run(batch)
            n += _batch_size(batch)
        wall = clock.elapsed()
        if wall >= min_seconds:
            return n, wall, time.process_time() - cpu0


def _batch_size(batch) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.size(0)
    if isinstance(batch, dict) and "nsentences" in batch:
        return int(batch["nsentences"])
    return len(batch)


def _spread(values: List[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


@torch.inference_mode()
def time_models(runners: Dict[str, Callable], batches: Sequence, protocol: Protocol,
                reference: str = None, device=None) -> Dict[str, dict]:
    """Throughput of every runner on ``batches``; the first runner (or ``reference``) is the reference.

    ``device``: where the runners compute (a cuda device: timed by CUDA events, see ``Clock``).

    ``runners`` map a name to a callable that processes one batch. Returns, per name:
    ``throughput`` / ``throughput_cpu`` (median, min, max examples per second), ``examples`` per
    pass, and ``speedup`` / ``speedup_cpu`` (median, min, max of per-round ratios to the reference).
    """
    if not runners:
        return {}
    torch.set_num_threads(protocol.threads)
    names = list(runners)
    reference = reference or names[0]
    clock = Clock(device)
    for name in names:  # warm-up
        _one_pass(runners[name], batches, 0.0, clock)
    wall: Dict[str, List[float]] = {n: [] for n in names}
    cpu: Dict[str, List[float]] = {n: [] for n in names}
    examples = {}
    for r in range(protocol.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            n, w, c = _one_pass(runners[name], batches, protocol.min_seconds, clock)
            examples[name] = n
            wall[name].append(n / w)
            cpu[name].append(n / max(c, 1e-9))
    out = {}
    for name in names:
        out[name] = {
            "examples_per_pass": sum(_batch_size(b) for b in batches),
            "throughput": _spread(wall[name]), "throughput_cpu": _spread(cpu[name]),
            "speedup": _spread([a / b for a, b in zip(wall[name], wall[reference])]),
            "speedup_cpu": _spread([a / b for a, b in zip(cpu[name], cpu[reference])]),
        }
    return out


def speed_fields(timed: dict, bsz: int, throughput_digits: int = 2) -> dict:
    """A results row's speed fields at batch size ``bsz`` from one :func:`time_models` entry."""
    return {f"speedup_b{bsz}": round(timed["speedup"]["median"], 3),
            f"speedup_b{bsz}_min": round(timed["speedup"]["min"], 3),
            f"speedup_b{bsz}_max": round(timed["speedup"]["max"], 3),
            f"speedup_cpu_b{bsz}": round(timed["speedup_cpu"]["median"], 3),
            f"throughput_b{bsz}": round(timed["throughput"]["median"], throughput_digits)}
