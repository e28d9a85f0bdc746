"""The engine on programs that go wrong: control leaving its program, faults with readable,
located reports, cost overrides it cannot run with, routes that never deliver to a tile
that receives, and runs whose results must not depend on batch size or lag window."""

import numpy as np
import pytest

from wse_emu import Mesh
from wse_emu.arch import ArchError
from wse_emu.asm import AsmError
from wse_emu.runtime import RunError

TWO_PROGRAMS = """
.program a
main:
{a}
.program b
main:
    mov r1, 5
    halt
.layout
.place a at 0, 0 size 1, 1
.place b at 1, 0 size 1, 1
"""


def _run(src, width=2, height=1, **kw):
    mesh = Mesh(width, height, **kw)
    mesh.load(src)
    mesh.launch()
    return mesh, mesh.run(max_cycles=10_000, check=False)


@pytest.mark.parametrize(
    "body, line, text",
    [
        ("    nop", 4, "nop"),  # falls off the end into program b
        ("    jmp m\nf:\n    ret\nm:\n    call f", 6, "ret"),  # returns past the end
    ],
)
def test_control_cannot_leave_its_program(body, line, text):
    mesh, result = _run(TWO_PROGRAMS.format(a=body))
    assert result.status == "fault"
    assert "control left the program" in result.report
    assert "PE (0,0) pc " in result.report and f"<input>:{line}: {text})" in result.report
    assert mesh.state.regs[0, 1] == 0  # never ran program b's mov


def test_branch_to_a_label_past_the_code_is_an_assembly_error():
    with pytest.raises(AsmError) as e:
        Mesh(2, 1).load(TWO_PROGRAMS.format(a="    jmp out\nout:"))
    assert e.value.line == 4
    assert "label 'out' is at the end of program 'a'" in str(e.value)


@pytest.mark.parametrize(
    "body, reason",
    [
        ("    dlen d5, 4\n    halt", "DSD register used before it was set up (DSD register d5)"),
        ("    st.i32 [49148 + 8], r1\n    halt", "SRAM access out of range (byte address 49156)"),
        ("    activate t\n    halt\n.task t\n    halt", None),
    ],
)
def test_faults_are_located_and_readable(body, reason):
    mesh, result = _run(TWO_PROGRAMS.format(a=body))
    if reason is None:
        assert result.status == "done"
        return
    assert result.status == "fault"
    assert result.report.startswith("runtime fault at PE (0,0) pc 0 (<input>:4: ")
    assert result.report.endswith(reason)


@pytest.mark.parametrize(
    "key, value",
    [
        ("queue_depth", 0),
        ("queue_depth", -5),
        ("lag_window", 0),
        ("sram_bytes", 6),
        ("fp16_basic", -1),
        ("colors", 0),
    ],
)
def test_cost_overrides_the_engine_cannot_run_with_are_refused(key, value):
    with pytest.raises(ArchError, match=key):
        Mesh(1, 1, overrides={key: value})


PASS_BY = """
.program src
main:
    send 0, 7
    halt
.program rcv
main:
    recv r1, 0
    halt
.layout
.place src at 0, 0 size 1, 1
.place rcv at 1, 0 size 2, 1
.route 0 at 0, 0 size 1, 1 rx ramp tx east
.route 0 at 1, 0 size 1, 1 rx west tx east
.route 0 at 2, 0 size 1, 1 rx west tx ramp
"""


def test_a_tile_that_receives_a_color_its_route_only_passes_on_is_named():
    """Warned at load, and named in the deadlock report it leads to (not another tile)."""
    m = Mesh(3, 1)
    m.load(PASS_BY)
    (warning,) = m.route_warnings
    assert "PE (1,0) receives on it (recv at line 8)" in warning
    assert "add 'ramp' to the tx of color 0 at 1, 0" in warning
    m.launch()
    with pytest.raises(RunError) as e:
        m.run()
    assert e.value.kind == "deadlock"
    assert "warning: color 0: PE (1,0) receives on it" in str(e.value)


def test_one_image_with_a_relay_role_and_a_receiving_role_loads():
    """Only the last tile runs the recv; the middle copy relays (its code has the recv)."""
    src = PASS_BY.replace(
        "main:\n    recv r1, 0\n    halt",
        "main:\n    bne %x, 2, done\n    recv r1, 0\ndone:\n    halt",
    )
    mesh, result = _run(src, width=3)
    assert mesh.route_warnings and result.status == "done"
    assert list(mesh.state.regs[:, 1]) == [0, 0, 7]


def test_a_failed_load_leaves_no_half_loaded_program():
    m = Mesh(3, 1)
    with pytest.raises(RunError):
        m.load(PASS_BY.replace("rx west tx ramp", "rx north tx ramp"))
    assert m.program is None and m.state is None
    with pytest.raises(RuntimeError, match="no program loaded"):
        m.launch()


def test_the_same_tile_delivering_to_its_ramp_is_accepted():
    mesh, result = _run(PASS_BY.replace("rx west tx east", "rx west tx ramp, east"), width=3)
    assert result.status == "done"
    assert list(mesh.state.regs[:, 1]) == [0, 7, 7]


MERGE = """
.program src
.param V = 1
main:
    mov r2, 0
loop:
    send 0, V
    add r2, r2, 1
    blt r2, 40, loop
    halt
.program sink
.data got i32[80]
main:
    mov r2, 0
loop:
    recv r1, 0
    st.i32 [r2 + got], r1
    add r2, r2, 4
    blt r2, 320, loop
    halt
.layout
.place src at 0, 0 size 1, 1 with V = 1
.place sink at 1, 0 size 1, 1
.place src at 2, 0 size 1, 1 with V = 2
.route 0 at 0, 0 size 1, 1 rx ramp tx east
.route 0 at 2, 0 size 1, 1 rx ramp tx west
.route 0 at 1, 0 size 1, 1 rx west, east tx ramp
"""


def _outcome(src, width, lag, batch):
    mesh = Mesh(width, 1, overrides={"lag_window": lag})
    mesh.load(src)
    mesh.launch()
    result = mesh.run(max_cycles=100_000, batch=batch)
    return result.cycles, mesh.state.pe[:, 1].tolist(), mesh.state.sram8.tobytes()


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_batch_boundaries_change_nothing(batch):
    assert _outcome(MERGE, 3, 256, batch) == _outcome(MERGE, 3, 256, 5_000_000)


def test_one_sender_per_queue_gives_the_same_results_under_any_lag_window():
    single = (
        MERGE.replace(".place src at 2, 0 size 1, 1 with V = 2\n", "")
        .replace("rx west, east tx ramp", "rx west tx ramp")
        .replace(".route 0 at 2, 0 size 1, 1 rx ramp tx west\n", "")
    )
    single = single.replace("blt r2, 40, loop", "blt r2, 80, loop")
    want = _outcome(single, 3, 256, 5_000_000)[2]
    for lag in (1, 2, 5, 1000):
        assert _outcome(single, 3, lag, 5_000_000)[2] == want


def test_a_new_load_starts_from_fresh_state():
    mesh = Mesh(3, 1)
    mesh.load(MERGE)
    mesh.launch()
    first = mesh.run(max_cycles=100_000).cycles
    mesh.load(MERGE)
    mesh.launch()
    assert mesh.run(max_cycles=100_000).cycles == first
    assert np.count_nonzero(mesh.state.sram8[1]) > 0
