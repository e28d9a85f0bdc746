"""Disassemble the binary encoding back to .wsa text, driven by the instruction table.
A word that no assembler could have written (a corrupt or foreign binary) raises
DisasmError, which says which field is wrong."""

from __future__ import annotations

import numpy as np

from .. import isa


class DisasmError(ValueError):
    """Not a valid wse-emu encoding."""


_N_READABLE = isa.SPECIAL_BASE + len(isa.SPECIALS)  # registers then specials
_FIELD_RANGE = {  # operand kind -> (lowest, highest) value of its field when not an immediate
    "rd": (0, isa.N_REGS - 1),
    "rs": (0, _N_READABLE - 1),
    "ri": (0, _N_READABLE - 1),
    "len": (0, _N_READABLE - 1),
    "rv": (0, _N_READABLE - 1),
    "dsd": (0, isa.N_DSDS - 1),
    "addr": (-1, isa.N_REGS - 1),  # base register, -1 for none
    "task": (0, isa.MAX_TASKS - 1),
    "label": (0, 2**31 - 1),
    "color": (0, 2**31 - 1),
    "dim": (1, isa.MAX_DIMS - 1),
    "ut": (0, isa.MAX_MICROTHREADS - 1),
    "ctl": (0, len(isa.CONTROL_ACTIONS) - 1),
    "ctlid": (-1, isa.CONTROL_IDS - 1),  # -1: no control task (the omitted operand)
}
# kinds whose immediates are range-checked too
_IMM_CHECKED = ("rd", "rs", "dsd", "addr", "task", "dim", "len", "ut", "ctl", "ctlid")
_IMM_RANGE = {"len": (0, isa.MAX_DSD_LEN)}  # kinds whose immediates have a range too


def _reg(v: int) -> str:
    if v >= isa.SPECIAL_BASE:
        return "%" + isa.SPECIALS[v - isa.SPECIAL_BASE]
    return f"r{v}"


def check_word(word) -> None:
    """Raise DisasmError unless word is a 9-field encoding the table can describe."""
    if len(word) != isa.ENCODING_WORDS:
        raise DisasmError(f"an instruction has {len(word)} words, expected {isa.ENCODING_WORDS}")
    table = isa.table()
    opcode = int(word[0])
    if not 0 <= opcode < len(table):
        raise DisasmError(f"unknown opcode {opcode} (0-{len(table) - 1})")
    row = table[opcode]
    for k in (1, 2):
        if (row.dtypes or row.fixed) and not 0 <= int(word[k]) < len(isa.DTYPES):
            raise DisasmError(f"{row.mnemonic}: dtype code {int(word[k])} out of range")
    mask = int(word[3])
    if not 0 <= mask < 1 << isa.N_FIELDS:
        raise DisasmError(f"{row.mnemonic}: immediate mask {mask} out of range")
    for op, fi in zip(row.operands, row.fields):
        imm = (mask >> fi) & 1
        if not imm or op.kind in _IMM_CHECKED:
            lo, hi = _FIELD_RANGE.get(op.kind, (-(2**31), 2**31 - 1))
            if imm:
                lo, hi = _IMM_RANGE.get(op.kind, (lo, hi))
            if not lo <= int(word[4 + fi]) <= hi:
                raise DisasmError(
                    f"{row.mnemonic}: {op.kind} field {int(word[4 + fi])} out of range {lo}-{hi}"
                )


def disassemble(word, labels: dict | None = None, tasks: list | None = None) -> str:
    """One 9-word instruction. labels: pc -> name; tasks: names by id."""
    check_word(word)
    row = isa.table()[int(word[0])]
    name = row.mnemonic
    if row.dtypes:
        name += "." + isa.DTYPES[word[1]]
    if row.dtypes2:
        name += "." + isa.DTYPES[word[2]]
    mask = int(word[3])
    fields = [int(w) for w in word[4:]]
    out = []
    fi = 0
    for op in row.operands:
        v = fields[fi]
        imm = (mask >> fi) & 1
        if op.kind == "addr":
            off = fields[fi + 1]
            out.append(f"[{_reg(v)} + {off}]" if v >= 0 else f"[{off}]")
            fi += 2
            continue
        fi += 1
        if op.kind in ("rd", "rs") or (op.kind in ("ri", "rv", "len") and not imm):
            out.append(_reg(v))
        elif op.kind == "dsd":
            out.append(f"d{v}")
        elif op.kind == "label":
            out.append(labels.get(v, str(v)) if labels else str(v))
        elif op.kind == "task":
            out.append(tasks[v] if tasks and v < len(tasks) else str(v))
        elif op.kind == "ctl":
            out.append(isa.CONTROL_ACTIONS[v])
        elif op.kind == "ctlid" and v < 0:
            continue  # no control task: the operand was omitted
        else:
            out.append(str(v))
    return f"{name} {', '.join(out)}".strip()


def disassemble_binary(code, bases, names) -> list[str]:
    """The listing of a linked binary (`wse-emu asm -o`): arrays as loaded from the file,
    checked here (shape, integer types, every word) so a corrupt file is a DisasmError."""
    code, bases, names = np.asarray(code), np.asarray(bases), np.asarray(names)
    if code.ndim != 2 or code.shape[1] != isa.ENCODING_WORDS:
        raise DisasmError(f"code has shape {code.shape}, expected (n, {isa.ENCODING_WORDS})")
    for what, arr in (("code", code), ("bases", bases)):
        if arr.dtype.kind not in "iu":
            raise DisasmError(f"{what} has type {arr.dtype}, expected integers")
    if bases.ndim != 1 or names.ndim != 1 or len(bases) != len(names):
        raise DisasmError(f"bases {bases.shape} and names {names.shape} do not pair up")
    if code.size and (code.min() < -(2**31) or code.max() > 2**31 - 1):
        raise DisasmError("code holds values outside int32")
    starts = {int(b): str(n) for b, n in zip(bases, names)}
    out = []
    for pc, word in enumerate(code):
        if pc in starts:
            out.append(f"; program {starts[pc]}")
        try:
            text = disassemble(word)
        except DisasmError as e:
            raise DisasmError(f"pc {pc}: {e}") from None
        out.append(f"{pc:>6}  {text}")
    return out


def encoding_hex(word) -> str:
    return " ".join(f"{int(w) & 0xFFFFFFFF:08x}" for w in word)
