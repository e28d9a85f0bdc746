"""Fuzzing the assembler: any text, any bytes, mutated shipped programs and generated
instructions must either assemble or raise an AsmError located inside the file (its line
exists, its column is on that line or just past its end, and the error shows that line)."""

import os
import re
import tempfile

from fuzzkit import fuzz_settings, outcome
from hypothesis import given
from hypothesis import strategies as st
from wse_emu.programs import DIR as PROGRAMS

from wse_emu import isa
from wse_emu.asm import AsmError, assemble, parse_file
from wse_emu.asm.disasm import disassemble
from wse_emu.asm.errors import shown_line

TEXTS = [p.read_text() for p in sorted(PROGRAMS.glob("*.wsa"))]
MESH = (4, 2)


def real_lines(data: bytes) -> list[str]:
    """The file's lines as a reader sees them, worked out here independently of the parser."""
    text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def check_file(data: bytes):
    """Assemble data from a file; success or a well-located AsmError, nothing else."""
    fd, path = tempfile.mkstemp(suffix=".wsa")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            linked = assemble(parse_file(path), *MESH)
        except AsmError as e:
            outcome("asm.error")
            lines = real_lines(data)
            assert e.filename == path
            assert 1 <= e.line <= len(lines), (str(e), len(lines))
            line = lines[e.line - 1]
            assert 1 <= e.column <= len(line) + 1, (str(e), line)
            shown = str(e).splitlines()
            assert shown[1] == "    " + shown_line(line), str(e)
            assert shown[2] == "    " + " " * (e.column - 1) + "^", str(e)
            return None
    finally:
        os.unlink(path)
    outcome("asm.ok")
    return linked


@fuzz_settings(300)
@given(st.text(max_size=400))
def test_fuzz_any_text(text):
    check_file(text.encode("utf-8"))


@fuzz_settings(200)
@given(st.binary(max_size=400))
def test_fuzz_any_bytes(data):
    check_file(data)


NUMBERS = [
    "0", "-1", "2.5", "-0.0", "1e39", "1e400", "65520.0", "nan", "inf", "1 << 64",
    "99999999999999999999999", "0x7fffffff", "0xffffffffffffffffff", "-2147483649",
    "(" * 120 + "1" + ")" * 120, "-" * 150 + "1", "1 / 0", "3.0e-50",
]  # fmt: skip
ODD_CHARS = "\r\n\t\v\f\x00\x1c\x85\u2028\u2029\ufeff;[],.:=%$#@\\\"'é€"
TOKEN = re.compile(r"[%.]?\w+(?:\.\w+)*|\S")
NUMBER = re.compile(r"\b\d+(?:\.\d*)?(?:[eE][+-]?\d+)?\b")


@st.composite
def mutated_program(draw):
    """A shipped program with a few characters, tokens, lines or numbers changed."""
    text = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["char", "token", "line", "number"]))
        how = draw(st.sampled_from(["delete", "duplicate", "replace"]))
        if kind == "line":
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            new = [lines[draw(st.integers(0, len(lines) - 1))]] if how == "replace" else []
            lines[i : i + 1] = {"delete": [], "duplicate": [lines[i]] * 2}.get(how, new)
            text = "\n".join(lines)
            continue
        pattern = {"token": TOKEN, "number": NUMBER, "char": re.compile(r"(?s).")}[kind]
        spans = [m.span() for m in pattern.finditer(text)]
        if not spans:
            continue
        a, b = spans[draw(st.integers(0, len(spans) - 1))]
        if how == "delete":
            piece = ""
        elif how == "duplicate":
            piece = text[a:b] * 2
        elif kind == "number":
            piece = draw(st.sampled_from(NUMBERS))
        elif kind == "token":
            piece = text[slice(*spans[draw(st.integers(0, len(spans) - 1))])]
        else:
            piece = draw(st.sampled_from(ODD_CHARS))
        text = text[:a] + piece + text[b:]
    return text


@fuzz_settings(300)
@given(mutated_program())
def test_fuzz_mutated_programs(text):
    check_file(text.encode("utf-8"))


def _operand(draw, kind: str) -> str:
    regs = st.integers(0, isa.N_REGS - 1).map(lambda i: f"r{i}")
    ints = st.integers(-(2**33), 2**33).map(str) | st.sampled_from(["0", "1", "-1", "7"])
    floats = st.floats(width=32, allow_nan=False, allow_infinity=False).map(repr)
    choices = {
        "rd": regs,
        "rs": regs | st.sampled_from(["%" + s for s in isa.SPECIALS]),
        "ri": regs | ints,
        "rv": regs | ints | floats | st.sampled_from(["1e39", "70000", "inf"]),
        "imm": ints,
        "len": regs | ints,
        "dim": st.integers(-1, 4).map(str),
        "dsd": st.integers(0, isa.N_DSDS - 1).map(lambda i: f"d{i}"),
        "addr": st.sampled_from(["[buf]", "[buf + 8]", "[r3 + 4]", "[r1]", "[buf + r2]"]),
        "color": st.integers(-1, 25).map(str),
        "label": st.sampled_from(["main", "next", "nowhere"]),
        "task": st.sampled_from(["t", "nope"]),
        "ut": st.integers(-1, 9).map(str),
        "ctl": st.sampled_from([*isa.CONTROL_ACTIONS, "jump", "1"]),
        "ctlid": ints,
    }
    return draw(choices[kind])


@st.composite
def instruction(draw):
    """One instruction of the table with a suffix it takes (or not) and random operands."""
    row = draw(st.sampled_from(isa.table()))
    name = row.mnemonic
    for allowed in (row.dtypes, row.dtypes2):
        if allowed:
            name += "." + draw(st.sampled_from(allowed) | st.sampled_from(isa.DTYPES))
    ops = [
        _operand(draw, op.kind) for op in row.operands if op.default is None or draw(st.booleans())
    ]
    return f"{name} {', '.join(ops)}"


@fuzz_settings(200)
@given(st.lists(instruction(), min_size=1, max_size=8))
def test_fuzz_generated_instructions(insns):
    body = "\n".join("    " + i for i in insns)
    src = f".data buf f32[16]\nmain:\n{body}\nnext:\n    halt\n.task t color 3\n    ret\n"
    linked = check_file(src.encode())
    if linked is not None:  # what assembles disassembles to the same mnemonics
        for word, text in zip(linked.code, insns):
            assert disassemble(word).split(" ")[0] == text.split(" ")[0]
