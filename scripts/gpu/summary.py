"""results/gpu/tests.json and summary.json from what scripts/gpu-check.sh left in its folder: the
pytest steps' JUnit XML (passed / failed / skipped, and each failure's test and message) and the
speed measurement's headline speed-ups."""
import argparse
import json
import xml.etree.ElementTree as ET
from pathlib import Path

STEPS = {"unit": "unit and equivalence tests (--device cuda)", "mixed": "training runs under --fp16 / --bf16"}


def junit(path: Path) -> dict:
    """Counts and failures of one pytest JUnit XML file (a missing file: the step did not finish)."""
    if not path.is_file():
        return {"finished": False}
    root = ET.parse(path).getroot()
    cases = root.iter("testcase")
    out = {"finished": True, "passed": 0, "failed": 0, "skipped": 0, "failures": []}
    for case in cases:
        name = f"{case.get('classname')}::{case.get('name')}"
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            out["failed"] += 1
            out["failures"].append({"test": name, "message": (bad.get("message") or "")[:500]})
        elif case.find("skipped") is not None:
            out["skipped"] += 1
        else:
            out["passed"] += 1
    return out


def headline(speed: dict) -> dict:
    """Median speed-up of every compressed model at each batch size and precision."""
    out = {}
    for group in ("encoders", "srp"):
        for dtype, sizes in speed.get(group, {}).items():
            for size, models in sizes.items():
                for name, result in models.items():
                    if name != "base":
                        out[f"{name} {dtype} {size}"] = round(result["speedup"]["median"], 3)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("folder")
    p.add_argument("--seconds", type=int, default=None, help="wall time of the whole check")
    p.add_argument("--status", type=int, default=None, help="exit status of the check so far")
    args = p.parse_args(argv)
    folder = Path(args.folder)
    tests = {step: dict(what=what, **junit(folder / f"{step}.xml")) for step, what in STEPS.items()}
    (folder / "tests.json").write_text(json.dumps(tests, indent=1) + "\n")
    speed_file = folder / "speed.json"
    speed = json.loads(speed_file.read_text()) if speed_file.is_file() else {}
    summary = {"seconds": args.seconds, "status": args.status, "device": speed.get("device"),
               "tests": {step: {k: v for k, v in t.items() if k != "failures"} for step, t in tests.items()},
               "speedups": headline(speed)}
    (folder / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    for step, t in tests.items():
        counts = (f"{t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped" if t["finished"]
                  else "did not finish")
        print(f"gpu-check: {t['what']}: {counts}")
    print(f"gpu-check: {len(summary['speedups'])} speed-ups in {speed_file}; summary in {folder / 'summary.json'}")


if __name__ == "__main__":
    main()
