"""Generate the ISA reference (docs/ISA.md) from the instruction and cost tables."""

from __future__ import annotations

from . import isa
from .arch import ARCHS, ArchProfile

HEADER = """# wse-emu ISA reference

Generated from `isa/instructions.toml` and `isa/costs.toml` by `wse-emu isa --markdown`;
do not edit by hand (a test fails when this page is stale).

Syntax: destination first. `.T` is a dtype suffix; vector ops run over whole DSDs.
A vector op of n elements keeps the datapath busy `ceil(n / width) * per_element` cycles,
where width is the SIMD class's elements per cycle, reduced by the stride rule; it begins
`vector_startup` cycles after it issues and its results are written `vector_drain` cycles
after its last element. The thread issues it in one `scalar` cycle and goes on; see the
README's timing model for when it waits. With a fabric operand an op streams one element
per cycle (the ramp carries one wavelet per cycle) on the thread. Scalar instructions cost
their class's cycles (`scalar`, `int_mul`, `load` plus `load_use` latency, `dsd_write`).
"""


def _cost_text(row: isa.Insn) -> str:
    if isinstance(row.cost, dict):
        return ", ".join(f"{dt}: {cls}" for dt, cls in row.cost.items())
    return row.cost


def markdown() -> str:
    lines = [HEADER, "## Operand kinds", "", "| kind | meaning |", "|---|---|"]
    for kind, meaning in isa.operand_kinds().items():
        lines.append(f"| `{kind}` | {meaning} |")
    lines += [
        "",
        "## Instructions",
        "",
        "| opcode | syntax | dtypes | cost rule | meaning |",
        "|---|---|---|---|---|",
    ]
    for row in isa.table():
        dtypes = "/".join(row.dtypes) if row.dtypes else "/".join(row.fixed)
        if row.dtypes2:
            dtypes += " ; U: " + "/".join(row.dtypes2)
        lines.append(
            f"| {row.opcode} | `{row.syntax}` | {dtypes} | {_cost_text(row)} | {row.meaning} |"
        )
    profiles = [ArchProfile(a) for a in ARCHS]
    lines += [
        "",
        "## Cost table",
        "",
        "| parameter | " + " | ".join(ARCHS) + " | source |",
        "|---|" + "---|" * len(ARCHS) + "---|",
    ]
    for group, key, _, source, _ in profiles[0].rows():
        vals = " | ".join(str(p[key]) for p in profiles)
        lines.append(f"| {group}.{key} | {vals} | {source} |")
    stride = isa.costs()["stride"]
    lines += [
        "",
        f"Stride rule (elements per cycle by stride mod 8, 0 = full width): "
        f"`{stride['width_by_mod8']}`; {stride['source']}.",
        "",
    ]
    return "\n".join(lines)
