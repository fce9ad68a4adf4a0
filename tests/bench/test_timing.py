"""The timing protocol on a fake clock: exact throughputs, per-round ratios, warm-up and rotation."""
import pytest

from user_dir.bench import timing


class FakeClock:
    """Wall and CPU clocks that advance only when a fake model 'works'."""

    def __init__(self):
        self.wall = 0.0
        self.cpu = 0.0

    def work(self, seconds, busy=1.0):
        self.wall += seconds
        self.cpu += seconds * busy


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(timing.time, "perf_counter", lambda: c.wall)
    monkeypatch.setattr(timing.time, "process_time", lambda: c.cpu)
    return c


def test_throughput_and_speedup_are_exact_on_a_fake_clock(clock):
    batches = [[0] * 4, [0] * 4]  # 8 examples per pass
    calls = []

    def model(cost, name):
        def run(batch):
            calls.append(name)
            clock.work(cost)
        return run

    # the reference takes 0.1 s a batch, the other 0.05 s: exactly twice as fast
    out = timing.time_models({"ref": model(0.1, "ref"), "fast": model(0.05, "fast")}, batches,
                             timing.Protocol(threads=1, rounds=3, min_seconds=0.0))
    assert out["ref"]["throughput"] == {"median": pytest.approx(40.0), "min": pytest.approx(40.0),
                                        "max": pytest.approx(40.0)}
    assert out["fast"]["throughput"]["median"] == pytest.approx(80.0)
    assert out["fast"]["speedup"] == {"median": pytest.approx(2.0), "min": pytest.approx(2.0),
                                      "max": pytest.approx(2.0)}
    assert out["ref"]["speedup"]["median"] == 1.0
    assert out["fast"]["examples_per_pass"] == 8
    # one warm-up pass each, then 3 rounds whose order rotates: ref first, fast first, ref first
    passes = [calls[i] for i in range(0, len(calls), 2)]
    assert passes == ["ref", "fast", "ref", "fast", "fast", "ref", "ref", "fast"]


def test_a_pass_repeats_until_min_seconds(clock):
    out = timing.time_models({"m": lambda b: clock.work(0.1)}, [[0, 0]],
                             timing.Protocol(threads=1, rounds=1, min_seconds=0.35))
    # 4 batches of 2 examples in 0.4 s (the first time at or past 0.35 s)
    assert out["m"]["throughput"]["median"] == pytest.approx(8 / 0.4)


def test_median_and_spread_of_per_round_ratios(clock):
    costs = iter([0.1, 0.1,  # warm-up
                  0.1, 0.2,   # round 1: ref then other -> ratio 0.5
                  0.1, 0.1,   # round 2: other then ref -> 1.0
                  0.4, 0.1])  # round 3: ref then other -> 4.0
    out = timing.time_models({"ref": lambda b: clock.work(next(costs)), "other": lambda b: clock.work(next(costs))},
                             [[0]], timing.Protocol(threads=1, rounds=3, min_seconds=0.0))
    assert out["other"]["speedup"]["median"] == pytest.approx(1.0)
    assert out["other"]["speedup"]["min"] == pytest.approx(0.5)
    assert out["other"]["speedup"]["max"] == pytest.approx(4.0)


def test_cpu_time_is_reported_beside_wall_time(clock):
    # a busy machine: the process gets half of the wall time on the CPU
    out = timing.time_models({"m": lambda b: clock.work(0.1, busy=0.5)}, [[0]],
                             timing.Protocol(threads=1, rounds=1, min_seconds=0.0))
    assert out["m"]["throughput"]["median"] == pytest.approx(10.0)
    assert out["m"]["throughput_cpu"]["median"] == pytest.approx(20.0)


def test_thread_count_is_fixed(clock):
    import torch
    before = torch.get_num_threads()
    try:
        timing.time_models({"m": lambda b: clock.work(0.1)}, [[0]], timing.Protocol(threads=1, rounds=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_batch_size_of_tensors_and_samples():
    import torch
    assert timing._batch_size(torch.zeros(3, 5)) == 3
    assert timing._batch_size({"nsentences": 7}) == 7
    assert timing._batch_size([1, 2]) == 2


def test_split_batches_honour_the_batch_size_asked_for_each_time(tmp_path):
    """fairseq caches one batch iterator per dataset; the harness must not reuse batch 32's batches
    when it asks for batch 1 afterwards (scoring runs at 32 before timing at 1)."""
    from tests.common.encoder_fixtures import build_tiny_encoder
    from user_dir.bench import sentence

    from argparse import Namespace

    from fairseq import tasks

    enc = build_tiny_encoder(tmp_path, layers=2)
    task = tasks.setup_task(Namespace(task="sentence_prediction", data=str(enc.data_dir), num_classes=2,
                                      init_token=0, separator_token=2, max_positions=64, seed=1,
                                      regression_target=False, no_shuffle=False, shorten_method="none",
                                      shorten_data_split_list="", add_prev_output_tokens=False,
                                      classification_head_name="sentence_classification_head",
                                      dataset_impl=None, d2v2_multi=False))
    at32 = sentence.batches(task, "valid", 32)
    at1 = sentence.batches(task, "valid", 1)
    assert max(b["nsentences"] for b in at32) > 1
    assert all(b["nsentences"] == 1 for b in at1) and len(at1) == sum(b["nsentences"] for b in at32)


class FakeCudaEvents:
    """torch.cuda.Event / synchronize stand-ins on the fake clock: a kernel 'works' asynchronously,
    so perf_counter would see nothing; only an event recorded after the work sees its time."""

    def __init__(self, clock):
        self.clock, self.synchronized, self.events = clock, 0, []
        outer = self

        class Event:
            def __init__(self, enable_timing=False):
                assert enable_timing
                self.t = None
                outer.events.append(self)

            def record(self):
                self.t = outer.clock.device

            def synchronize(self):
                outer.synchronized += 1

            def elapsed_time(self, end):
                return (end.t - self.t) * 1000.0  # milliseconds, as CUDA's

        self.Event = Event

    def synchronize(self, device=None):
        self.synchronized += 1


def test_cuda_passes_are_timed_by_events_after_a_synchronisation(clock, monkeypatch):
    """The CUDA path, tested on the CPU: the device's time counts, the host's queueing time does not."""
    import torch

    clock.device = 0.0
    cuda = FakeCudaEvents(clock)
    monkeypatch.setattr(torch.cuda, "Event", cuda.Event)
    monkeypatch.setattr(torch.cuda, "synchronize", cuda.synchronize)

    def kernel(seconds):
        def run(batch):
            clock.work(0.001)          # the host only queues the kernel
            clock.device += seconds    # the device works for this long
        return run

    out = timing.time_models({"ref": kernel(0.1), "fast": kernel(0.05)}, [[0] * 4, [0] * 4],
                             timing.Protocol(threads=1, rounds=3, min_seconds=0.0), device="cuda")
    assert out["ref"]["throughput"]["median"] == pytest.approx(40.0)  # 8 examples in 0.2 s of device time
    assert out["fast"]["speedup"]["median"] == pytest.approx(2.0)
    # every pass (2 warm-up + 6 timed) synchronised before its start event and waited for its end event
    assert len(cuda.events) == 16 and cuda.synchronized == 16


def test_a_cuda_pass_repeats_until_min_seconds_of_device_time(clock, monkeypatch):
    import torch

    clock.device = 0.0
    cuda = FakeCudaEvents(clock)
    monkeypatch.setattr(torch.cuda, "Event", cuda.Event)
    monkeypatch.setattr(torch.cuda, "synchronize", cuda.synchronize)

    def run(batch):
        clock.device += 0.1

    out = timing.time_models({"m": run}, [[0, 0]], timing.Protocol(threads=1, rounds=1, min_seconds=0.35),
                             device="cuda")
    assert out["m"]["throughput"]["median"] == pytest.approx(8 / 0.4)
