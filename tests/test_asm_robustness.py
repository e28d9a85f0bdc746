"""Regression tests for assembler inputs that used to raise something other than AsmError,
point at the wrong line, or assemble to a silently wrong program."""

import numpy as np
import pytest
from conftest import run_program

from wse_emu import AsmError, assemble
from wse_emu.asm import linker, parse_file, parse_source
from wse_emu.asm.disasm import DisasmError, disassemble, disassemble_binary
from wse_emu.asm.errors import shown_line


def asm_error(text) -> AsmError:
    with pytest.raises(AsmError) as info:
        assemble(text, 1, 1, filename="p.wsa")
    return info.value


def assert_located(err: AsmError, line: int, col: int, source_line: str):
    """The error names line:col and shows that very line with a caret under the column."""
    assert (err.line, err.column) == (line, col), str(err)
    shown = str(err).splitlines()
    assert shown[1] == "    " + shown_line(source_line), str(err)
    assert shown[2] == "    " + " " * (col - 1) + "^", str(err)


def test_non_utf8_file_is_a_located_error(tmp_path):
    p = tmp_path / "p.wsa"
    p.write_bytes(b"main:\r\n    mov r1, 1 ; caf\xe9\n    halt\n")
    with pytest.raises(AsmError) as info:
        parse_file(p)
    err = info.value
    assert "invalid UTF-8 byte 0xe9" in err.message
    assert_located(err, 2, 20, "    mov r1, 1 ; caf\ufffd")


def test_utf8_bom_is_accepted(tmp_path):
    p = tmp_path / "p.wsa"
    p.write_bytes(b"\xef\xbb\xbfmain:\n    halt\n")
    assert "main" in parse_file(p).programs


@pytest.mark.parametrize("brk", ["\n", "\r\n", "\r"])
def test_line_endings_count_alike(brk):
    text = brk.join(["main:", "    nop", "    mov r1, 2 $", "    halt", ""])
    err = asm_error(text)
    assert "unexpected character '$'" in err.message  # used to be an IndexError with '\r'
    assert_located(err, 3, 15, "    mov r1, 2 $")


@pytest.mark.parametrize("sep", ["\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_other_line_separators_are_refused_where_they_are(sep):
    err = asm_error(f"main:\n    nop ; one{sep}two\n    halt\n")
    assert err.message == f"unexpected character {sep!r}"
    assert_located(err, 2, 14, f"    nop ; one{sep}two")
    assert str(err).splitlines()[1] == "        nop ; one?two"


def test_every_error_shows_its_source_line():
    err = asm_error("")
    assert "no program" in err.message
    assert_located(err, 1, 1, "")
    err = asm_error("main:\n    add r1,")
    assert_located(err, 2, 12, "    add r1,")


@pytest.mark.parametrize(
    "expr",
    [
        "-" * 5000 + "1",
        "+".join(["1"] * 3000),
        "(" * 150 + "1" + ")" * 150 + " + " + "~" * 200 + "1",
    ],
)
def test_deep_expressions_are_refused_with_the_limit(expr):
    err = asm_error(f"main:\n    add r1, r1, {expr}\n    halt\n")
    assert "expression nested too deeply (limit 100)" in err.message
    assert err.line == 2


@pytest.mark.parametrize(
    "src,message",
    [
        ("main:\n mov r1, 1e39\n", "operand 2 of mov: 1e+39 out of range (f32 holds"),
        ("main:\n mov r1, 1e400\n", "float literal 1e400 overflows"),
        ("main:\n mov r1, 1e308 * 10\n", "float overflow"),
        ("main:\n mov r1, 1 << 100000000\n", "shift count 100000000 too large"),
        ("main:\n mov r1, " + "9" * 5000 + "\n", "integer literal 99999999999999999999..."),
        (".const A = 1 << 64\nmain:\n mov r1, A * A * 1.0\n", "out of range (limit +-2**64)"),
        (".data a f32[1 << 60]\nmain:\n halt\n", "dimension 1 of 'a' 1152921504606846976 out"),
        (".data a f32[1 << 20, 1 << 20]\nmain:\n halt\n", "past the 2147483647-byte address"),
        (".data a f32[0]\nmain:\n halt\n", "dimension 1 of 'a' 0 out of range"),
        (".data a f32[4]\nmain:\n dmem d0, a, 1 << 40\n", "operand 3 of dmem: immediate"),
        (".data a f32[4]\nmain:\n ld.f32 r1, [a + (1 << 40)]\n", "address offset"),
        ("main:\n halt\n.task t color 1e300\n halt\n", "out of range (limit +-2**64)"),
        ("main:\n halt\n.task t color 99\n halt\n", "task color 99 out of range 0-23"),
        (
            ".program p\nmain:\n halt\n.layout\n.repeat I = 0, 1e300\n.place p at 0,0 size 1,1\n"
            ".end\n",
            "integer 1e+300 out of range",
        ),
        (".program p\nmain:\n halt\n.layout\n.place p at 0, 0 size 1 << 20000, 1\n", "shift"),
        (".program p\nmain:\n halt\n.layout\n.place p at 0, 0 size -1, 1\n", "width -1 is neg"),
        ("main:\n vmuls.f16 d0, d0, 1e6\n", "1000000.0 out of range (f16 holds magnitudes"),
        ("main:\n vmuls.i16 d0, d0, 2.5\n", "expected an integer, got 2.5"),
        (
            "main:\n vfill.i8 d0, 300\n",
            "operand 2 of vfill: 300 out of range (i8 holds -128 to 127)",
        ),
        ("main:\n vfmacs.f16 d0, d0, 70000\n", "70000 out of range (f16 holds magnitudes up to"),
    ],
)
def test_huge_numbers_are_located_errors_naming_the_field(src, message):
    err = asm_error(src)
    assert message in err.message, err.message
    assert err.line > 1 or src.startswith((".data", ".const"))
    assert "^" in str(err)


@pytest.mark.parametrize(
    "decl,value,limits",
    [
        ("i8[2] = [1, 300]", "300", "i8 holds -128 to 127"),
        ("i32[1] = 1 << 40", "1099511627776", "i32 holds -2147483648 to 2147483647"),
        ("f16[3] = [0, 1e6, 2]", "1000000.0", "f16 holds magnitudes up to 65504"),
        ("i16[1] = inf", "inf", "i16 holds"),
        ("bf16[1] = 1e39", "1e+39", "bf16 holds"),
    ],
)
def test_data_initialisers_out_of_range_are_refused(decl, value, limits):
    err = asm_error(f".data sym {decl}\nmain:\n    halt\n")
    assert f"initial value {value} of 'sym' out of range ({limits}" in err.message
    assert err.line == 1 and err.column > len(".data sym")


def test_data_initialisers_in_range_are_stored():
    src = ".data a f16[3] = [inf, -65504, nan]\n.data b i8[2] = [-128, 127]\nmain:\n halt\n"
    m, _ = run_program(src)
    a = m.memcpy_d2h("a")[0, 0]
    assert np.isinf(a[0]) and a[1] == -65504 and np.isnan(a[2])
    assert list(m.memcpy_d2h("b")[0, 0]) == [-128, 127]


def test_integer_immediates_in_float_ops_are_numbers_not_bits():
    src = """
.data a f32[4] = [1, 2, 3, 4]
.data h f16[4] = 1.5
.data s f32[3]
main:
    dmem d0, a, 4
    vmuls.f32 d0, d0, 3
    dmem d1, h, 4
    vadds.f16 d1, d1, 2
    mov r1, 1.0
    fadd r1, r1, 2
    fmul r1, r1, 4
    mov r2, 1
    st.f32 [s], r1
    st.i32 [s + 4], r2
    mov r3, 0x3f800000
    st.i32 [s + 8], r3
    halt
"""
    m, _ = run_program(src)
    assert list(m.memcpy_d2h("a")[0, 0]) == [3, 6, 9, 12]
    assert list(m.memcpy_d2h("h")[0, 0]) == [3.5] * 4
    s = m.memcpy_d2h("s")[0, 0]
    assert s[0] == 12.0
    assert s[1:].view(np.int32).tolist() == [1, 0x3F800000]  # mov keeps raw bits


def test_float_literal_in_integer_vector_op_is_its_integer_value():
    src = ".data a i16[2] = [3, -4]\nmain:\n dmem d0, a, 2\n vmuls.i16 d0, d0, 2.0\n halt\n"
    m, _ = run_program(src)
    assert list(m.memcpy_d2h("a")[0, 0]) == [6, -8]


@pytest.mark.parametrize(
    "word,message",
    [
        ([999, 0, 0, 0, 0, 0, 0, 0, 0], "unknown opcode 999"),
        ([-5, 0, 0, 0, 0, 0, 0, 0, 0], "unknown opcode -5"),
        ([0, 0, 0], "has 3 words"),
    ],
)
def test_disassembling_a_garbage_word_says_what_is_wrong(word, message):
    with pytest.raises(DisasmError, match=message):
        disassemble(np.array(word, np.int64))


def test_disassembling_corrupt_fields_is_a_disasm_error():
    linked = assemble("main:\n    vadd.f16 d0, d1, d2\n    ld.f16 r1, [r2 + 4]\n    halt\n")
    for pc, k, bad in [(0, 1, 77), (0, 4, 4000), (1, 4, -3), (0, 3, 1 << 20), (1, 5, 99)]:
        code = linked.code.copy()
        code[pc, k] = bad
        with pytest.raises(DisasmError, match=f"pc {pc}: "):
            disassemble_binary(code, [0], ["main"])
    assert disassemble_binary(linked.code, [0], ["main"])[1].endswith("vadd.f16 d0, d1, d2")


@pytest.mark.parametrize(
    "code,bases,names,message",
    [
        (np.zeros((2, 3), np.int32), [0], ["a"], "shape"),
        (np.zeros((1, 9)), [0], ["a"], "expected integers"),
        (np.zeros((1, 9), np.int64) + (1 << 40), [0], ["a"], "outside int32"),
        (np.zeros((1, 9), np.int32), [0, 1], ["a"], "do not pair up"),
    ],
)
def test_disassembling_a_malformed_binary_is_a_disasm_error(code, bases, names, message):
    with pytest.raises(DisasmError, match=message):
        disassemble_binary(code, np.array(bases), np.array(names))


def test_parse_source_never_indexes_past_a_line():
    # the unexpected character's text used to be looked up with splitlines (IndexError)
    for text in ["main:\r@", "a\x0b\n@", "\n\n\r\r#"]:
        with pytest.raises(AsmError):
            parse_source(text)


def test_nested_repeat_loops_are_bounded_together(monkeypatch):
    """Each loop alone is within the limit; nested, they multiply past it (with the real
    limits, two nested loops of a million would expand for ever)."""
    monkeypatch.setattr(linker, "MAX_LAYOUT_ITERATIONS", 10_000)
    src = """
.program p
main:
    halt
.layout
.place p at 0, 0 size 1, 1
.repeat I = 0, 200
.repeat J = 0, 200
.route 0 at 0, 0 size 1, 1 rx ramp tx east
.end
.end
"""
    with pytest.raises(AsmError, match="iterations in all") as e:
        assemble(src, 1, 1)
    assert e.value.line == 8


@pytest.mark.parametrize("stale", [b"", b"not a hash\n", b"0" * 64 + b"\n\x80\x04garbage"])
def test_the_parser_tables_file_is_rebuilt_when_stale_or_broken(stale, tmp_path, monkeypatch):
    from wse_emu.asm import parser

    tables = tmp_path / "tables"
    tables.write_bytes(stale)
    monkeypatch.setattr(parser, "_cache_file", lambda: str(tables))
    parser._parser.cache_clear()
    try:
        assert parser.parse_source("main:\n    halt\n").programs
        assert tables.read_bytes() != stale  # rewritten with the grammar's tables
        parser._parser.cache_clear()
        assert parser.parse_source("main:\n    halt\n").programs  # and read back
    finally:
        parser._parser.cache_clear()
