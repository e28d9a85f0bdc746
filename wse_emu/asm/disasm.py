"""Disassemble the binary encoding back to .wsa text, driven by the instruction table."""

from __future__ import annotations

from .. import isa


def _reg(v: int) -> str:
    if v >= isa.SPECIAL_BASE:
        return "%" + isa.SPECIALS[v - isa.SPECIAL_BASE]
    return f"r{v}"


def disassemble(word, labels: dict | None = None, tasks: list | None = None) -> str:
    """One 9-word instruction. labels: pc -> name; tasks: names by id."""
    table = isa.table()
    opcode = int(word[0])
    if not 0 <= opcode < len(table):
        return f".word {' '.join(str(int(w)) for w in word)}  ; unknown opcode"
    row = table[opcode]
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
        if op.kind in ("rd", "rs") or (op.kind in ("ri", "rv") and not imm):
            out.append(_reg(v))
        elif op.kind == "dsd":
            out.append(f"d{v}")
        elif op.kind == "label":
            out.append(labels.get(v, str(v)) if labels else str(v))
        elif op.kind == "task":
            out.append(tasks[v] if tasks and v < len(tasks) else str(v))
        else:
            out.append(str(v))
    return f"{name} {', '.join(out)}".strip()


def encoding_hex(word) -> str:
    return " ".join(f"{int(w) & 0xFFFFFFFF:08x}" for w in word)
