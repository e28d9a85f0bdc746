"""Generate the ISA reference (docs/ISA.md) from the instruction and cost tables."""

from __future__ import annotations

from . import isa
from .arch import ARCHS, ArchProfile

HEADER = """# wse-emu ISA reference

Generated from `isa/instructions.toml` and `isa/costs.toml` by `wse-emu isa --markdown`;
do not edit by hand (a test fails when this page is stale).

Syntax: destination first. `.T` is a dtype suffix; vector ops run over whole DSDs.

Memory DSDs have up to 4 dimensions: `dmem` sets the base, the innermost extent and stride
(a 1-D DSD), `ddim d, k, extent, stride` sets dimension k = 1..3 (outer); the length is the
product of the extents and elements go in row-major order, innermost first. Strides are in
elements of the op's dtype. `dlen` sets the innermost extent of a memory DSD (the length of
a 1-D one) and the length of a fabric DSD; `dinc.T d, n` moves a memory DSD's base by n
elements of type T.

A vector op keeps the datapath busy, per SIMD step (width elements of one innermost row,
width = the SIMD class's elements per cycle, limited by the stride rule), the larger of
`per_element` and the step's SRAM cycles: `max(ceil(reads / read_ports), reads in one bank
group)` over its memory operands (the bank model, section `bank` of the cost table). It
begins `vector_startup` cycles after it issues and its results are written `vector_drain`
cycles after its last element; the thread issues it in one `scalar` cycle and goes on (see
the README's timing model for when it waits). With a fabric operand it streams one element
per step on the thread (the ramp carries one wavelet per cycle). Scalar instructions cost
their class's cycles (`scalar`, `int_mul`, `fp_div`, `load` plus `load_use` latency, `dsd_write`).
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
    lines.append("")
    return "\n".join(lines)
