"""The onnxruntime timing: the bench's protocol on exports, relative FLOPs and the speed target.

Speed itself is never asserted (docs/CONVENTIONS.md): only what is measured and reported."""
import json

from user_dir.bench.timing import Protocol
from user_dir.export.ort_speed import main, measure


def test_measure_two_exports(chain, exported):
    result = measure({"base": str(exported["base"]), "kprune": str(exported["kprune"])}, str(chain.data),
                     "test", [1, 8], Protocol(threads=1, rounds=2, min_seconds=0.01), {1: 6})
    assert result["protocol"]["threads"] == 1 and result["runtime"]["onnxruntime"]
    base, pruned = result["exports"]["base"], result["exports"]["kprune"]
    assert base["relative_flops"] == 1.0 and 0 < pruned["relative_flops"] < 1
    for name in ("base", "kprune"):
        for bsz, examples in ((1, 6), (8, 32)):
            timed = result["exports"][name][f"b{bsz}"]
            assert timed["examples_per_pass"] == examples and timed["throughput"]["median"] > 0
    assert base["b1"]["speedup"]["median"] == 1.0
    target = pruned["target_b8"]
    assert target["speedup_at_least"] == 0.9 / pruned["relative_flops"]
    assert target["met"] == (pruned["b8"]["speedup"]["median"] >= target["speedup_at_least"])


def test_command_line(chain, exported, tmp_path):
    out = tmp_path / "speed.json"
    main([str(chain.data), "--export", f"base={exported['base']}", "--export", f"pruned={exported['kprune']}",
          "--batch-sizes", "2", "--rounds", "1", "--timing-limit", "2:4", "--no-flops", "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result["exports"]) == {"base", "pruned"} and "relative_flops" not in result["exports"]["pruned"]
    assert result["exports"]["pruned"]["b2"]["examples_per_pass"] == 4
