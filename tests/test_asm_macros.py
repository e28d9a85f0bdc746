"""Conditional assembly (.if/.elif/.else/.endif), macros (.macro/.endm) and .include: what
they select and expand, run on the engine, and located errors for their misuse."""

import re

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import run_program
from fuzzkit import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_asm import TEXTS, check_file

from wse_emu import AsmError, Mesh, assemble, parse_file
from wse_emu.asm import link
from wse_emu.cli import main

EDGES = """
.program p
.param EDGE = 0
.data out i32[1]
main:
    mov r1, 1
.if EDGE == 1
    add r1, r1, 10
.elif EDGE == 2
    add r1, r1, 20
.else
    add r1, r1, 30
.endif
    st.i32 [out], r1
    halt
.layout
.place p at 0, 0 size 1, 1 with EDGE = 1
.place p at 1, 0 size 1, 1 with EDGE = 2
.place p at 2, 0 size 1, 1
"""


def test_if_elif_else_pick_one_branch_per_placement():
    mesh, _ = run_program(EDGES, mesh=(3, 1))
    assert mesh.memcpy_d2h("out")[0, :, 0].tolist() == [11, 21, 31]
    linked = assemble(EDGES, 3, 1)
    assert [len(im.code) for im in linked.images] == [4, 4, 4]  # no runtime branch left


def test_labels_may_be_defined_once_per_branch_and_tasks_renumbered():
    src = """
.program p
.param FAST = 0
.data out i32[1]
main:
    mov r1, 0
.if FAST
loop:
    add r1, r1, 2
.else
    mov r2, 0
loop:
    add r1, r1, 1
.endif
    blt r1, 4, loop
    activate fin
    ret
.task fin
    st.i32 [out], r1
    halt
.layout
.place p at 0, 0 size 1, 1 with FAST = 1
.place p at 1, 0 size 1, 1
"""
    mesh, _ = run_program(src, mesh=(2, 1))
    assert mesh.memcpy_d2h("out")[0, :, 0].tolist() == [4, 4]
    fast, slow = assemble(src, 2, 1).images
    assert fast.labels["loop"] - fast.base == 1 and slow.labels["loop"] - slow.base == 2


def test_nested_ifs_and_conditional_data():
    src = """
.program p
.param A = 0
.param B = 0
.if A
.data buf f32[8]
.endif
.data out i32[1]
main:
    mov r1, 0
.if A
  .if B
    add r1, r1, 3
  .else
    add r1, r1, 2
  .endif
.else
    add r1, r1, 1
.endif
    st.i32 [out], r1
    halt
.layout
.place p at 0, 0 size 1, 1 with A = 1, B = 1
.place p at 1, 0 size 1, 1 with A = 1
.place p at 2, 0 size 1, 1 with B = 1
"""
    mesh, _ = run_program(src, mesh=(3, 1))
    assert mesh.memcpy_d2h("out")[0, :, 0].tolist() == [3, 2, 1]
    images = assemble(src, 3, 1).images
    assert ["buf" in im.symbols for im in images] == [True, True, False]


def test_if_in_the_layout_sees_repeat_variables():
    src = """
.program p
.param V = 0
.data out i32[1]
main:
    mov r1, V
    st.i32 [out], r1
    halt
.layout
.repeat X = 0, WIDTH
.if X == 0 || X == WIDTH - 1
.place p at X, 0 size 1, 1 with V = 7
.else
.place p at X, 0 size 1, 1 with V = X
.endif
.end
"""
    mesh, _ = run_program(src, mesh=(4, 1))
    assert mesh.memcpy_d2h("out")[0, :, 0].tolist() == [7, 1, 2, 7]


@pytest.mark.parametrize(
    "expr,value",
    [
        ("3 < 4", 1),
        ("4 <= 3", 0),
        ("2 << 1 == 4", 1),
        ("1 != 1", 0),
        ("!0 + !5", 1),
        ("1 && 0 || 2 >= 2", 1),
        ("(0 || 5) * 3", 3),
        ("5 > 2 && 7 < 1", 0),
    ],
)
def test_comparisons_and_logic_give_one_or_zero(expr, value):
    assert assemble(f"main:\n    mov r1, {expr}\n    halt\n").images[0].code[0][5] == value


def _error(src, files=None, tmp_path=None) -> AsmError:
    with pytest.raises(AsmError) as e:
        if files:
            for name, text in files.items():
                (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / name).write_text(text)
            link(parse_file(tmp_path / "main.wsa"), 2, 1, Mesh(1, 1).arch)
        else:
            assemble(src, 2, 1)
    return e.value


BODY = ".program p\n.param E = 0\nmain:\n{}\n    halt\n"


@pytest.mark.parametrize(
    "lines,message,line",
    [
        ("    nop\n.else", r"\.else without \.if", 5),
        ("    nop\n.endif", r"\.endif without \.if", 5),
        (".if E\n    nop", r"\.layout inside the \.if of line 4", 7),
        (".if E\n.else\n.elif E\n.endif", r"\.elif after \.else \(the \.if is on line 4\)", 6),
        (".if E\n.else\n.else\n.endif", r"\.else after \.else", 6),
        (".if E\n.param F = 1\n.endif", r"\.param inside the \.if of line 4", 5),
        (".if E\n.program q\n.endif", r"\.program inside the \.if of line 4", 5),
        (".if E\n.macro m\n.endm\n.endif", r"\.macro inside the \.if of line 4", 5),
        (".if F\n    nop\n.endif", "undefined name 'F'", 4),
        (".if 1\nx:\n    nop\n.endif\n.if 2\nx:\n    nop\n.endif", "label 'x' defined twice", 9),
        ("x:\n    nop\n.if 1\nx:\n    nop\n.endif", "label 'x' defined twice", 7),
        ("    jmp x\n.if E\nx:\n    nop\n.endif", "undefined label 'x'", 4),
    ],
)
def test_conditional_misuse_is_a_located_error(lines, message, line):
    err = _error(BODY.format(lines) + ".layout\n.place p at 0, 0 size 1, 1\n")
    assert err.line == line, str(err)
    assert re.search(message, err.message), str(err)


def test_a_label_whose_code_is_all_left_out():
    src = ".program p\n.param E = 0\nmain:\n    halt\nx:\n.if E\n    nop\n.endif\n"
    err = _error(src + ".layout\n.place p at 0, 0 size 1, 1\n")
    assert (err.line, err.message) == (5, "label 'x' is not followed by an instruction here")
    assemble(src.replace("E = 0", "E = 1"))


def test_an_if_left_open_at_the_end_of_the_file():
    err = _error("main:\n.if 1\n    halt\n")
    assert (err.line, err.message) == (2, ".if without .endif")


def test_repeat_and_if_must_nest():
    head = "main:\n    halt\n.layout\n"
    err = _error(head + ".repeat X = 0, 2\n.if X\n.end\n.endif\n")
    assert (err.line, err.message) == (6, ".end inside the .if of line 5")
    err = _error(head + ".if 1\n.repeat X = 0, 2\n.endif\n.end\n")
    assert (err.line, err.message) == (6, ".endif inside the .repeat of line 5")


AXPY = """
.macro axpy Y, X, A, N
    dmem d0, Y, N
    dmem d1, X, N
    vfmacs.f32 d0, d1, A
.endm
.macro count_to R, N          ; a local label: each use gets its own
    mov R, 0
again:
    add R, R, 1
    blt R, N, again
.endm
.program p
.data y f32[8]
.data x f32[8]
.data n i32[2]
main:
    mov r3, 2.0
    axpy y, x, r3, 8
    axpy y, x, 0.5, 4 * 2     ; an expression argument
    count_to r4, 3
    count_to r5, 2 + 3        ; substituted as (2 + 3)
    st.i32 [n], r4
    st.i32 [n + 4], r5
    halt
.layout
.place p at 0, 0 size 1, 1
"""


def test_macros_expand_with_arguments_and_local_labels():
    x = np.arange(8, dtype=np.float32)
    y = np.ones(8, np.float32)
    mesh, _ = run_program(AXPY, inputs={"x": x[None, None], "y": y[None, None]})
    np.testing.assert_array_equal(mesh.memcpy_d2h("y")[0, 0], y + 2.0 * x + 0.5 * x)
    assert mesh.memcpy_d2h("n")[0, 0].tolist() == [3, 5]
    labels = assemble(AXPY).images[0].labels
    assert sorted(n for n in labels if n.startswith("again")) == [
        "again__count_to3",
        "again__count_to4",
    ]


def test_macro_errors_are_located_at_the_use_and_in_the_body():
    err = _error(AXPY.replace("axpy y, x, r3, 8", "axpy y, x, r3"))
    assert err.line == 19 and "macro axpy takes 4 arguments, got 3" in err.message
    assert "syntax: axpy Y, X, A, N" in err.hint
    err = _error(AXPY.replace("axpy y, x, r3, 8", "axpy y, x, r3, 99999"))
    assert err.line == 3 and "99999" in str(err)  # the body line, with the argument in it
    assert "in macro axpy used at <input>:19:5" in err.hint


@pytest.mark.parametrize(
    "src,message,line",
    [
        (".macro add a\n.endm\n", "macro name 'add' is an instruction", 1),
        (".macro m\n.endm\n.macro m\n.endm\n", "macro 'm' defined twice", 3),
        (".macro m a, a\n.endm\n", "macro parameter 'a' appears twice", 1),
        (".macro m\n.macro n\n.endm\n", r"\.macro inside \.macro m", 2),
        (".macro m\n    nop\n", r"\.macro m without \.endm", 1),
        ("    nop\n.endm\n", r"\.endm without \.macro", 2),
        (".macro m\n    m\n.endm\nmain:\n    m\n", "macros nested more than 64 deep", 2),
    ],
)
def test_macro_definition_errors(src, message, line):
    err = _error(src)
    assert err.line == line and re.search(message, err.message), str(err)


def test_include_finds_files_relative_to_the_including_file(tmp_path):
    files = {
        "main.wsa": '.include "lib/coll.wsa"\n.program p\n.data v f32[4]\nmain:\n'
        "    scale v, 4, 3.0\n    halt\n.layout\n.place p at 0, 0 size 2, 1\n",
        "lib/coll.wsa": '.include "more.wsa"\n.macro scale V, N, S\n    dmem d0, V, N\n'
        "    twice d0, S\n.endm\n",
        "lib/more.wsa": ".macro twice D, S\n    vmuls.f32 D, D, S\n    vmuls.f32 D, D, S\n.endm\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    mesh = Mesh(2, 1)
    mesh.load(link(parse_file(tmp_path / "main.wsa"), 2, 1, mesh.arch))
    mesh.memcpy_h2d("v", np.ones((1, 2, 4), np.float32))
    mesh.launch()
    mesh.run()
    np.testing.assert_array_equal(mesh.memcpy_d2h("v"), np.full((1, 2, 4), 9.0, np.float32))
    assert mesh.program.where(2).endswith("lib/more.wsa:3: vmuls.f32 d0, d0, 3.0")


def test_include_errors(tmp_path):
    err = _error(None, {"main.wsa": 'main:\n.include "nope.wsa"\n'}, tmp_path)
    assert (err.line, err.column) == (2, 10) and err.message.startswith("cannot read nope.wsa")
    err = _error(
        None, {"main.wsa": '.include "a.wsa"\n', "a.wsa": '.include "main.wsa"\n'}, tmp_path
    )
    assert err.filename.endswith("a.wsa") and "main.wsa includes itself" in err.message
    files = {"main.wsa": '\n.include "bad.wsa"\n', "bad.wsa": "main:\n    add r1, r2\n"}
    err = _error(None, files, tmp_path)
    assert err.filename.endswith("bad.wsa") and err.line == 2
    assert "included from" in err.hint and "main.wsa:2" in err.hint
    err = _error(None, {"main.wsa": '.include ""\n'}, tmp_path)
    assert ".include needs a file name" in err.message
    err = _error(
        None, {"main.wsa": '.include "c.wsa"\nmain:\n    halt\n', "c.wsa": ".if 1\n"}, tmp_path
    )
    assert err.filename.endswith("c.wsa") and ".if without .endif" in err.message


def test_runtime_faults_name_the_included_line(tmp_path):
    (tmp_path / "lib.wsa").write_text(".macro poke A\n    st.i32 [A], r1\n.endm\n")
    prog = tmp_path / "main.wsa"
    prog.write_text('.include "lib.wsa"\nmain:\n    poke 100000\n    halt\n')
    res = CliRunner().invoke(main, ["run", str(prog)])
    assert res.exit_code == 3, res.output
    assert "lib.wsa:2: st.i32 [100000], r1" in res.output


@fuzz_settings(40)
@given(
    st.recursive(
        st.integers(0, 7).map(lambda k: ("add", k)),
        lambda inner: st.tuples(
            st.just("if"),
            st.integers(0, 3),
            st.lists(inner, max_size=3),
            st.lists(inner, max_size=3),
        ),
        max_leaves=8,
    ),
    st.integers(0, 3),
)
def test_conditional_assembly_matches_python(tree, e):
    """Random nests of .if/.else around adds: r1 ends as the sum a Python walk predicts."""

    def emit(node, out):
        if node[0] == "add":
            out.append(f"    add r1, r1, {1 << node[1]}")
            return
        _, k, then, other = node
        out.append(f".if E == {k}")
        for n in then:
            emit(n, out)
        out.append(".else")
        for n in other:
            emit(n, out)
        out.append(".endif")

    def value(node):
        if node[0] == "add":
            return 1 << node[1]
        _, k, then, other = node
        return sum(value(n) for n in (then if e == k else other))

    lines = []
    emit(tree, lines)
    src = BODY.format("    mov r1, 0\n" + "\n".join(lines) + "\n    st.i32 [out], r1")
    src = src.replace("main:", ".data out i32[1]\nmain:")
    src += f".layout\n.place p at 0, 0 size 1, 1 with E = {e}\n"
    mesh, _ = run_program(src)
    assert mesh.memcpy_d2h("out")[0, 0, 0] == value(tree)


DIRECTIVES = [
    ".if 1", ".if 0", ".if N", ".if WIDTH > 1 && !0", ".elif 1", ".else", ".endif",
    ".macro m", ".macro m a, b", ".endm", "    m", "    m r1, 2", "    m 1, 2, 3",
    '.include "nope.wsa"', '.include ""', ".end", ".repeat I = 0, 2",
]  # fmt: skip


@fuzz_settings(200)
@given(st.data())
def test_fuzz_directives_in_shipped_programs(data):
    """Conditional, macro and include lines dropped anywhere into a shipped program: the
    program assembles or the error is located in it, never a traceback."""
    lines = data.draw(st.sampled_from(TEXTS)).split("\n")
    for _ in range(data.draw(st.integers(1, 5))):
        at = data.draw(st.integers(0, len(lines)))
        lines.insert(at, data.draw(st.sampled_from(DIRECTIVES)))
    check_file("\n".join(lines).encode())


def test_expression_arguments_are_parenthesised_whatever_their_operator():
    src = ".const A = 1\n.macro twice v\n    mov r1, v * 2\n.endm\nmain:\n    twice A == 1\n"
    src += "    twice A < 2\n    twice !0\n    twice -1\n    halt\n"
    code = assemble(src).images[0].code
    assert [int(w[5]) for w in code[:4]] == [2, 2, 2, -2]


def test_macros_that_multiply_are_stopped():
    src = ".macro m0\n    nop\n.endm\n"
    for k in range(1, 16):
        src += f".macro m{k}\n    m{k - 1}\n    m{k - 1}\n.endm\n"
    err = _error(src + "main:\n    m15\n    halt\n")
    assert "more than 10000 macro uses in all" in err.message


def test_macro_and_include_cannot_close_the_callers_blocks(tmp_path):
    src = ".macro close\n.endif\n.endm\nmain:\n.if 1\n    close\n.endif\n    halt\n"
    err = _error(src)
    assert (err.line, err.message) == (2, ".endif without .if in this macro or file")
    files = {"main.wsa": 'main:\n.if 1\n.include "e.wsa"\n    halt\n', "e.wsa": ".else\n"}
    err = _error(None, files, tmp_path)
    assert (
        err.filename.endswith("e.wsa") and err.message == ".else without .if in this macro or file"
    )
    err = _error("main:\n    halt\n.layout\n.macro e\n.end\n.endm\n.repeat I = 0, 1\n    e\n.end\n")
    assert err.message == ".end without a .repeat in this macro or file"


def test_logic_short_circuits():
    src = ".const N = 0\nmain:\n.if N != 0 && 8 / N > 1\n    nop\n.endif\n"
    src += "    mov r1, N == 0 || 1 / N\n    halt\n"
    assert assemble(src).images[0].code[0][5] == 1


def test_an_error_for_some_placements_names_the_placement():
    src = """.program p
.param F = 0
.if F
.data buf i32[4]
.endif
main:
    ld.i32 r1, [buf]
    halt
.layout
.place p at 0, 0 size 1, 1 with F = 1
.place p at 1, 0 size 1, 1
"""
    err = _error(src)
    assert "undefined name 'buf'" in err.message and "for the .place at <input>:11" in err.hint


def test_a_layout_whose_places_are_all_left_out_places_nothing():
    src = ".const USE = 0\n.program p\nmain:\n    halt\n.layout\n"
    src += ".if USE\n.place p at 0, 0 size 1, 1\n.endif\n"
    assert (assemble(src, 3, 1).pe_image == -1).all()
    assert (assemble(src.replace("USE = 0", "USE = 1"), 3, 1).pe_image == [0, -1, -1]).all()


def test_bad_include_names_and_keyword_params(tmp_path):
    err = _error(None, {"main.wsa": 'main:\n.include "a\x00b"\n'}, tmp_path)
    assert err.line == 2 and err.message.startswith("cannot read a")
    err = _error(".macro put x, size\n.endm\n")
    assert "macro parameter 'size' is a directive keyword" in err.message
    files = {"main.wsa": '\n.include "bad.wsa"\n', "bad.wsa": "main:\n    halt \x0c\n"}
    err = _error(None, files, tmp_path)
    assert err.filename.endswith("bad.wsa") and "included from" in err.hint
