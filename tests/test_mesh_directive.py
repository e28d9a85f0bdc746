"""`.mesh`: a program declares the mesh it is written for; the CLI and `assemble` use it
unless told otherwise, and a layout that does not fit says which mesh it wants."""

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from wse_emu import AsmError, assemble, parse_file, parse_source, programs
from wse_emu.asm import declared_mesh
from wse_emu.cli import main

TWO = """.mesh {size}
.const N = 4
.program a
main:
    halt
.layout
.place a at 0, 0 size WIDTH, HEIGHT
"""


@pytest.mark.parametrize(
    "size,expect", [("4x1", (4, 1)), ("3, 2", (3, 2)), ("N, N / 2", (4, 2)), ("1x1", (1, 1))]
)
def test_both_spellings_and_const_expressions(size, expect):
    src = TWO.format(size=size)
    assert declared_mesh(parse_source(src)) == expect
    linked = assemble(src)
    assert (linked.width, linked.height) == expect
    assert (assemble(src, 2, 2).width, assemble(src, 2, 2).height) == (2, 2)  # explicit wins


def test_consts_overrides_reach_the_mesh():
    assert declared_mesh(parse_source(TWO.format(size="N, 1")), {"N": 6}) == (6, 1)


@pytest.mark.parametrize(
    "src,msg,line",
    [
        (TWO.format(size="0x3"), r"\.mesh side 0 is outside", 1),
        (TWO.format(size="WIDTH, 1"), "WIDTH", 1),
        (".mesh 2x2\n.mesh 2x2\nmain:\n    halt\n", r"\.mesh appears twice", 2),
        ("main:\n    halt\n.mesh 2x2\n", "before any .program", 3),
        (".mesh 2x\nmain:\n    halt\n", "error", 1),
    ],
)
def test_bad_mesh_directives_are_located_errors(src, msg, line):
    with pytest.raises(AsmError, match=msg) as e:
        assemble(src)
    assert e.value.line == line


def test_a_layout_that_does_not_fit_names_the_declared_mesh():
    with pytest.raises(AsmError) as e:
        assemble(programs.path("gemv").read_text(), 1, 1)
    assert "declares .mesh 4x1" in str(e.value)
    with pytest.raises(AsmError) as e:
        assemble(".program a\nmain:\n    halt\n.layout\n.place a at 1, 0 size 1, 1\n")
    assert "declares no .mesh" in str(e.value) and "--mesh WxH" in str(e.value)


# programs fed by a host stream (Mesh.stream_h2d), which `wse-emu run` does not send: with
# no flags they wait for it, and the deadlock report says on which color
HOST_STREAMED = {"gemm_wstream": 0}


@pytest.mark.parametrize("name", programs.names())
def test_every_shipped_program_runs_with_no_flags(name):
    r = CliRunner().invoke(main, ["run", str(programs.path(name))])
    if name in HOST_STREAMED:
        assert r.exit_code == 3 and f"blocked on receive, color {HOST_STREAMED[name]}" in r.output
        return
    assert r.exit_code == 0, r.output
    size = declared_mesh(parse_file(programs.path(name)))  # its .include is file-relative
    assert size is not None and f"on {size[0]}x{size[1]} " in r.output


@given(w=st.integers(-3, 70000), h=st.integers(-3, 70000))
def test_fuzz_any_declared_size_links_or_is_refused_with_its_line(w, h):
    src = f"\n.mesh {w}, {h}\nmain:\n    halt\n"
    try:
        size = declared_mesh(parse_source(src))
    except AsmError as e:
        assert e.line == 2 and "outside" in str(e)
        assert not (1 <= w <= 1 << 16 and 1 <= h <= 1 << 16)
    else:
        assert size == (w, h)
