"""A long fuzz campaign over the project's own fuzz tests (tests/test_fuzz_*.py).

    python bench/fuzz_campaign.py --minutes 30 [--seed N] [--only NAME] [--out DIR]

Every Hypothesis test whose name starts with `test_fuzz` is called round-robin through
`fuzz_one_input` with seeded random buffers until the time is up. An exception is a finding:
its buffer and traceback go to DIR (default fuzz-findings/) so it can be replayed and turned
into a regression test. At the end it prints, per target, the examples run, the outcomes the
tests recorded (`fuzzkit.outcome`) and the findings by exception type; exit status 1 if
anything was found."""

import argparse
import collections
import importlib
import random
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
sys.path.insert(0, str(TESTS))


def _targets(only: str | None):
    found = []
    for path in sorted(TESTS.glob("test_fuzz_*.py")):
        module = importlib.import_module(path.stem)
        for name in sorted(dir(module)):
            fn = getattr(module, name)
            if name.startswith("test_fuzz") and hasattr(fn, "hypothesis"):
                full = f"{path.stem}::{name}"
                if only is None or only in full:
                    found.append((full, fn))
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default=None, help="run only targets whose name contains this")
    ap.add_argument("--out", default="fuzz-findings")
    ap.add_argument("--buffer", type=int, default=4096, help="bytes per random input")
    args = ap.parse_args(argv)

    import fuzzkit

    targets = _targets(args.only)
    if not targets:
        print("no fuzz targets found", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    runs = collections.Counter()
    findings = collections.Counter()
    out = Path(args.out)
    deadline = time.monotonic() + args.minutes * 60
    i = 0
    while time.monotonic() < deadline:
        name, fn = targets[i % len(targets)]
        i += 1
        buf = rng.randbytes(args.buffer)
        runs[name] += 1
        try:
            fn.hypothesis.fuzz_one_input(buf)
        except Exception as e:  # a finding: keep it to replay
            kind = f"{name}: {type(e).__name__}"
            findings[kind] += 1
            out.mkdir(parents=True, exist_ok=True)
            stem = f"{name.replace('::', '.')}-{runs[name]}"
            (out / f"{stem}.bin").write_bytes(buf)
            (out / f"{stem}.txt").write_text(traceback.format_exc())
    print(f"fuzz campaign: {args.minutes} min, seed {args.seed}, {sum(runs.values())} examples")
    for name, _ in targets:
        print(f"  {name}: {runs[name]} examples")
    print("outcomes:")
    for key, n in sorted(fuzzkit.OUTCOMES.items()):
        print(f"  {key}: {n}")
    print(f"findings: {sum(findings.values())}")
    for key, n in sorted(findings.items()):
        print(f"  {key}: {n}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
