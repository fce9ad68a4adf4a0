"""A fake harness measurement (user_dir.bench.compare's per-model dict) for the suites' writers:
150 dev and 150 test examples, dev 100 x and test 300 x ``flops`` MACs, one speed-up at every batch size."""


def measured(correct_valid, correct_test, flops, speed, kept=None):
    """``kept``: ((dev kept_l1, dev kept_l3), (test kept_l1, test kept_l3)), or None."""
    timed = {"throughput": {"median": 10.0 * speed}, "speedup": {"median": speed, "min": speed, "max": speed},
             "speedup_cpu": {"median": speed, "min": speed, "max": speed}}
    valid = {"quality": correct_valid / 1.5, "accuracy": correct_valid / 1.5, "examples": 150,
             "macs": 100.0 * flops, "relative_flops": flops}
    test = {"quality": correct_test / 1.5, "accuracy": correct_test / 1.5, "examples": 150,
            "macs": 300.0 * flops, "relative_flops": flops}
    if kept:
        valid.update(kept_l1=kept[0][0], kept_l3=kept[0][1])
        test.update(kept_l1=kept[1][0], kept_l3=kept[1][1])
    return {"parameters": 1000, "valid": valid, "test": test, "b1": timed, "b16": timed, "b32": timed}
