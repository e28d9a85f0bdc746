"""Run every calibration port (bench/calibration/*.wsa: published kernels with published
cycle counts, rows C1-C4) and compare the emulated cycles with the published ones.

    python bench/calibration/run.py [--json out.json] [--only C1] [--set vector_drain=3 ...]

Prints one line per published number: id, case, arch, published, emulated, ratio
(emulated / published), whether the ratio is within 25%, and whether the port's result
matched NumPy. A report, not a test: tests/test_calibration_ports.py checks the results."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ports import ROWS, SKIPPED, measure  # noqa: E402

from wse_emu import AsmError, RunError  # noqa: E402
from wse_emu.arch import ArchError  # noqa: E402

TOLERANCE = 0.25


def run_rows(only: str | None = None, overrides: dict | None = None) -> list[dict]:
    out = []
    for row in ROWS:
        if only and row.id.lower() != only.lower():
            continue
        try:
            m = measure(row.port, row.width, row.height, row.arch, row.consts, overrides)
        except (
            AsmError,
            RunError,
            ArchError,
        ) as e:  # a port the engine no longer runs: say so, go on
            out.append(_failed(row, str(e)))
            continue
        ratio = m.cycles / row.published
        out.append(
            {
                "id": row.id,
                "case": row.case,
                "arch": row.arch,
                "mesh": f"{row.width}x{row.height}",
                "published": row.published,
                "emulated": m.cycles,
                "ratio": round(ratio, 3),
                "within_25pct": abs(ratio - 1) <= TOLERANCE,
                "verified": m.verified,
                "timing": row.port.timing,
                "approximations": row.port.approximations,
                "program": f"bench/calibration/{row.port.wsa}",
                "host_seconds": round(m.seconds, 3),
            }
        )
    return out


def _failed(row, error: str) -> dict:
    return {
        "id": row.id,
        "case": row.case,
        "arch": row.arch,
        "mesh": f"{row.width}x{row.height}",
        "published": row.published,
        "emulated": None,
        "ratio": None,
        "within_25pct": False,
        "verified": False,
        "error": error,
        "program": f"bench/calibration/{row.port.wsa}",
        "host_seconds": 0.0,
    }


def format_table(rows: list[dict]) -> str:
    head = (
        f"{'id':<3} {'case':<32} {'arch':<5} {'published':>9} {'emulated':>9} "
        f"{'ratio':>6} {'within 25%':>10} {'verified':>8}"
    )
    lines = [head]
    for r in rows:
        if r["emulated"] is None:
            lines.append(
                f"{r['id']:<3} {r['case']:<32} {r['arch']:<5} {r['published']:>9} "
                f"failed: {r['error'].splitlines()[0]}"
            )
            continue
        lines.append(
            f"{r['id']:<3} {r['case']:<32} {r['arch']:<5} {r['published']:>9} "
            f"{r['emulated']:>9} {r['ratio']:>6.3f} {'yes' if r['within_25pct'] else 'no':>10} "
            f"{'yes' if r['verified'] else 'NO':>8}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    ap.add_argument("--only", metavar="ID", help="run only this row id (C1, C2, C3, C4)")
    ap.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a cost-table parameter for every row (what-if studies; see `wse-emu info`)",
    )
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, eq, value = item.partition("=")
        if not eq or not value.strip().lstrip("-").isdigit():
            ap.error(f"--set wants KEY=INTEGER, got {item!r}")
        overrides[key.strip()] = int(value)
    if args.only and not any(r.id.lower() == args.only.lower() for r in ROWS):
        ap.error(
            f"--only: no row {args.only!r}; ids are " + ", ".join(sorted({r.id for r in ROWS}))
        )
    t0 = time.perf_counter()
    rows = run_rows(args.only, overrides)
    print(format_table(rows))
    print()
    seen = set()
    for r in rows:
        if r["program"] not in seen and "approximations" in r:
            seen.add(r["program"])
            print(f"{r['program']} ({r['timing']}): {r['approximations']}")
    if not args.only or args.only.upper() == "C4":
        for what, why in SKIPPED.items():
            print(f"skipped: {what}: {why}")
    slow = max(rows, key=lambda r: r["host_seconds"])
    print(
        f"\n{len(rows)} rows in {time.perf_counter() - t0:.1f} s host time "
        f"(slowest: {slow['id']} {slow['case']}, {slow['host_seconds']:.2f} s)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(r["verified"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
