"""The onnxruntime timing: the bench's protocol on exports, relative FLOPs and the speed target.

Speed itself is never asserted (docs/CONVENTIONS.md): only what is measured and reported."""
import json

import pytest

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


def test_translation_exports_at_a_forced_length(tmp_path, monkeypatch):
    """--forced-len reaches fairseq's generator for every export, so all do the same decoding work."""
    from tests.export.checkpoints import translation_argv, write
    from tests.srp.synthetic import make_corpus
    from user_dir.bench import translation
    from user_dir.export.cli import main as export_main

    data = make_corpus(tmp_path / "corpus", n_train=40, n_valid=8, n_test=8)
    ckpt, _ = write(tmp_path / "srp/checkpoint_best.pt", translation_argv(data))
    assert export_main(["--path", str(ckpt), "--out", str(tmp_path / "export")]) == 0
    seen = []
    real = translation.generator

    def recording(task, model, beam=5, forced_len=None):
        seen.append(forced_len)
        return real(task, model, beam, forced_len)
    monkeypatch.setattr(translation, "generator", recording)
    out = tmp_path / "forced.json"
    main([str(data), "--export", f"base={tmp_path / 'export'}", "--export", f"again={tmp_path / 'export'}",
          "--batch-sizes", "2", "--rounds", "1", "--timing-limit", "2:4", "--forced-len", "6", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["forced_len"] == 6 and seen == [6, 6]
    assert result["exports"]["again"]["relative_flops"] == 1.0
    assert result["exports"]["again"]["b2"]["examples_per_pass"] == 4
    with pytest.raises(SystemExit):
        main([str(data), "--export", f"base={tmp_path / 'export'}", "--forced-len", "0"])


def test_forced_length_is_for_translation_only(chain, exported):
    from user_dir.export.loading import ExportError

    with pytest.raises(ExportError, match="--forced-len applies to translation exports only"):
        measure({"base": str(exported["base"])}, str(chain.data), "test", [1], Protocol(threads=1, rounds=1),
                {1: 2}, forced_len=5)


def test_command_line_bad_input_is_one_line(chain, exported, tmp_path, capsys):
    for argv, message in ((["--export", f"base={tmp_path}"], "not an export folder (model_card.json missing)"),
                          (["--export", f"base={exported['base']}", "--forced-len", "5"],
                           "--forced-len applies to translation exports only")):
        with pytest.raises(SystemExit) as exit_info:
            main([str(chain.data), *argv])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
