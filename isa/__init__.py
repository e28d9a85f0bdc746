"""The ISA, defined once: grammar (grammar.lark), instruction table (instructions.toml) and
cost table (costs.toml). Every other layer derives from what this module loads."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
GRAMMAR_PATH = HERE / "grammar.lark"
TABLE_PATH = HERE / "instructions.toml"
COSTS_PATH = HERE / "costs.toml"

# Data types: code, name, bytes. Codes are the values of the encoding's dtype fields.
DTYPES = ("f16", "bf16", "f32", "i16", "i8", "i32")
DTYPE_CODE = {name: i for i, name in enumerate(DTYPES)}
DTYPE_SIZE = {"f16": 2, "bf16": 2, "f32": 4, "i16": 2, "i8": 1, "i32": 4}
FLOAT_DTYPES = ("f16", "bf16", "f32")

N_REGS = 16
N_DSDS = 16
MAX_DSD_LEN = 65535  # length of a DSD, and each extent of a multi-dim one (facts: DSDs)
MAX_DIMS = 4  # memory DSDs have up to 4 dimensions (facts: mem4d_dsd)
CALL_DEPTH = 8
MAX_TASKS = 32
MAX_MICROTHREADS = 8  # microthread ids 0-7 (facts: Added 2026-11-23 / Microthreads)
# Specials read like registers; they are numbered after the 16 general registers.
SPECIALS = ("x", "y", "width", "height", "rx", "ry", "cycle")
SPECIAL_BASE = N_REGS
DIRECTIONS = ("north", "east", "south", "west", "ramp")
SWITCH_POSITIONS = 4  # route configurations per color and router (facts: Fabric / Switches)
# What a control wavelet does to the switch position of each router it passes (code = index)
CONTROL_ACTIONS = ("keep", "advance", "reset")
CONTROL_IDS = 32  # control task IDs 0-31 (assumed: the facts give no number; = MAX_TASKS)
ENCODING_WORDS = 9  # opcode, dtype, dtype2, immediate mask, 5 fields
N_FIELDS = 5


@dataclass(frozen=True)
class Operand:
    kind: str
    default: int | None = None


@dataclass(frozen=True)
class Insn:
    opcode: int
    mnemonic: str
    operands: tuple[Operand, ...]
    dtypes: tuple[str, ...]
    dtypes2: tuple[str, ...]
    fixed: tuple[str, ...]
    sem: str
    fn: str
    cost: object  # str, or dict dtype -> simd class
    flops: int
    meaning: str

    def cost_class(self, dtype: str | None) -> str:
        if isinstance(self.cost, dict):
            return self.cost[dtype]
        return self.cost

    @property
    def syntax(self) -> str:
        name = self.mnemonic
        if self.dtypes:
            name += ".T"
        if self.dtypes2:
            name += ".U"
        ops = []
        for op in self.operands:
            ops.append(op.kind if op.default is None else f"[{op.kind}={op.default}]")
        return f"{name} {', '.join(ops)}".strip()

    @property
    def n_fields(self) -> int:
        return sum(2 if op.kind == "addr" else 1 for op in self.operands)

    @property
    def fields(self) -> tuple[int, ...]:
        """Each operand's first field in the encoding (0 = word 4); an addr takes two."""
        starts, f = [], 0
        for op in self.operands:
            starts.append(f)
            f += 2 if op.kind == "addr" else 1
        return tuple(starts)


def _operand(text: str) -> Operand:
    kind, _, default = text.partition("=")
    return Operand(kind, int(default) if default else None)


@cache
def table() -> tuple[Insn, ...]:
    raw = tomllib.loads(TABLE_PATH.read_text())
    kinds = raw["operand_kinds"]
    rows = []
    for opcode, row in enumerate(raw["insn"]):
        ops = tuple(_operand(t) for t in row["operands"])
        for op in ops:
            if op.kind not in kinds:
                raise ValueError(f"{row['mnemonic']}: unknown operand kind {op.kind!r}")
        rows.append(
            Insn(
                opcode=opcode,
                mnemonic=row["mnemonic"],
                operands=ops,
                dtypes=tuple(row.get("dtypes", ())),
                dtypes2=tuple(row.get("dtypes2", ())),
                fixed=tuple(row.get("fixed", ())),
                sem=row["sem"],
                fn=row.get("fn", ""),
                cost=row["cost"],
                flops=int(row.get("flops", 0)),
                meaning=row["meaning"],
            )
        )
        if rows[-1].n_fields > N_FIELDS:
            raise ValueError(f"{row['mnemonic']}: more than {N_FIELDS} encoding fields")
    return tuple(rows)


@cache
def operand_kinds() -> dict[str, str]:
    return tomllib.loads(TABLE_PATH.read_text())["operand_kinds"]


@cache
def by_mnemonic() -> dict[str, Insn]:
    return {row.mnemonic: row for row in table()}


@cache
def costs() -> dict:
    return tomllib.loads(COSTS_PATH.read_text())


def grammar_text() -> str:
    return GRAMMAR_PATH.read_text()
