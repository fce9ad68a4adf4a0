"""results/<method>.json rows: the schema is enforced, the table and plot come from the rows."""
import json

import pytest

from user_dir.bench import results


def _row(model="m", family="method", **kw):
    row = {"model": model, "family": family, "series": model, "relative_flops": 0.5, "quality": 80.0,
           "quality_split": "test", "speedup_b1": 1.5, "speedup_b32": 1.8}
    row.update(kw)
    return row


def test_required_keys_and_types_are_checked():
    results.check_rows([_row("ref", "reference", relative_flops=1.0), _row()])
    with pytest.raises(ValueError, match="speedup_b32"):
        bad = _row()
        del bad["speedup_b32"]
        results.check_rows([bad])
    with pytest.raises(ValueError, match="family"):
        results.check_rows([_row(family="ablation")])
    with pytest.raises(ValueError, match="quality must be float"):
        results.check_rows([_row(quality="80")])
    with pytest.raises(ValueError, match="no rows"):
        results.check_rows([])


def test_markdown_table_shows_drop_speedups_and_spread():
    rows = [_row("ref", "reference", relative_flops=1.0, quality=85.0, speedup_b1=1.0, speedup_b32=1.0),
            _row("pruned", quality=84.25, speedup_b8=1.7, speedup_b8_min=1.6, speedup_b8_max=1.9)]
    table = results.markdown_table(rows, "accuracy")
    lines = table.splitlines()
    assert lines[0] == "| model | family | accuracy (test) | drop | rel. FLOPs | speed-up b1 | speed-up b8 | speed-up b32 |"
    assert "| pruned | method | 84.25 | +0.75 | 0.500 (2.00x) | 1.50x | 1.70x (1.60–1.90) | 1.80x |" in lines


def test_write_produces_json_markdown_and_plot(tmp_path):
    rows = [_row("ref", "reference", relative_flops=1.0, quality=85.0, speedup_b1=1.0, speedup_b32=1.0),
            _row("a", relative_flops=0.6, series="LTP"), _row("b", relative_flops=0.4, series="LTP"),
            _row("k", "baseline", series="top-k")]
    results.write(tmp_path / "ltp", {"rows": rows}, "# table\n", "title")
    assert json.loads((tmp_path / "ltp.json").read_text())["rows"][1]["model"] == "a"
    assert (tmp_path / "ltp.md").read_text() == "# table\n"
    assert (tmp_path / "ltp.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob("*.tmp*"))


def test_bad_rows_write_nothing(tmp_path):
    with pytest.raises(ValueError):
        results.write(tmp_path / "x", {"rows": [_row(family="other")]}, "", "t")
    assert list(tmp_path.iterdir()) == []


def test_wilson_interval_by_hand():
    # p = 0.5, n = 100: centre 0.5, half width 1.96 * sqrt(0.25/100 + 1.96^2/40000) / (1 + 1.96^2/100)
    lo, hi = results.binomial_interval(50, 100)
    half = 1.96 * (0.0025 + 1.96 ** 2 / 40000) ** 0.5 / (1 + 1.96 ** 2 / 100)
    assert lo == pytest.approx(100 * (0.5 - half), abs=0.01) and hi == pytest.approx(100 * (0.5 + half), abs=0.01)
    assert results.binomial_interval(0, 0) == (0.0, 0.0)
