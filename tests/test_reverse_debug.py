"""Reverse execution in the debugger (debug/record.py, debug/reverse.py): going back lands on
the state a forward run had at that point, bit for bit (every state array), and going
forward again from there reaches the same states as before."""

import copy
import io
import re

import numpy as np
import pytest
from fuzzkit import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st
from test_microthreads import COMPUTE, receiver

from wse_emu import Mesh, assemble, programs
from wse_emu.debug import DebugError, Session
from wse_emu.debug.record import run_fields
from wse_emu.debug.repl import run_commands
from wse_emu.engine import kinds as K
from wse_emu.engine.state import VIEW_FIELDS


def gemv():
    rng = np.random.default_rng(3)
    m = Mesh(4, 1)
    m.load(programs.path("gemv"))
    m.memcpy_h2d("a", rng.standard_normal((1, 4, 16, 32)).astype(np.float16))
    m.memcpy_h2d("x", rng.standard_normal((1, 4, 16)).astype(np.float16))
    return m


def row_broadcast():
    m = Mesh(8, 4)
    m.load(programs.path("row_broadcast"))
    src = np.random.default_rng(4).standard_normal((4, 1, 32)).astype(np.float32)
    m.memcpy_h2d("src", src, 0, 0, 1, 4)
    return m


def gemm_dense():
    m = Mesh(4, 4)
    m.load(programs.path("gemm_dense"))
    return m


def microthreads():
    m = Mesh(2, 1)
    m.load(assemble(receiver("    async 0, done", COMPUTE), 2, 1, m.arch))
    rng = np.random.default_rng(5)
    m.memcpy_h2d("v", rng.standard_normal(64).astype(np.float32), 0, 0, 1, 1)
    return m


# (mesh maker, the tile to step, instructions to step): the tile receives wavelets, so the
# steps run the fabric and the other tiles too
PROGRAMS = {
    "gemv": (gemv, (3, 0), 60),
    "row_broadcast": (row_broadcast, (5, 2), 4),
    "gemm_dense": (gemm_dense, (2, 1), 40),
    "microthreads": (microthreads, (1, 0), 8),
}


def session(name, record=True) -> Session:
    make, tile, _ = PROGRAMS[name]
    m = make()
    m.launch()
    s = Session(m)
    s.set_focus(*tile)
    if record:
        s.record_start(interval=4)
    return s


def state(s: Session) -> dict:
    """Every array of the mesh's state (views are the same bytes), and the debugger's view
    of it; the engine's batch budget (scratch that mesh.run sets before each call) aside."""
    out = {f: getattr(s.S, f).copy() for f in s.S._fields if f not in VIEW_FIELDS}
    out["misc"][K.M_BUDGET] = 0
    out["stats"] = s.tile_stats()
    out["registers"] = s.registers()
    return out


def assert_same(a: dict, b: dict):
    for f in a:
        if isinstance(a[f], np.ndarray):
            assert a[f].tobytes() == b[f].tobytes(), f"{f} differs"
        else:
            assert a[f] == b[f], f


def forward(name, n) -> dict:
    """The state after stepping the program's tile n instructions, with no recording."""
    s = session(name, record=False)
    if n:
        s.stepi(n)
    return state(s)


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_reverse_stepi_then_stepi_returns_to_the_same_state(name):
    n = PROGRAMS[name][2]
    s = session(name)
    s.stepi(n)
    here = state(s)
    for back in (1, 3, n // 2):
        s.reverse_stepi(back)
        assert_same(state(s), forward(name, n - back))  # what a forward run showed there
        s.stepi(back)
        assert_same(state(s), here)


@pytest.mark.parametrize("name", ["gemv", "gemm_dense"])
def test_goto_backwards_then_forwards_lands_on_the_same_state(name):
    s = session(name)
    p = s.fp
    s.goto(30)
    at30 = state(s)
    assert int(s.S.pe[p, K.P_CLOCK]) >= 30
    s.goto(12)
    assert 12 <= int(s.S.pe[p, K.P_CLOCK]) < 30
    s.goto(30)
    assert_same(state(s), at30)
    # the first point at or past the cycle: one instruction less is before it
    s.reverse_stepi(1)
    assert int(s.S.pe[p, K.P_CLOCK]) < 30


def test_reverse_continue_stops_at_the_previous_breakpoint_hit():
    s = session("gemv")
    s.set_focus(2, 0)
    s.add_breakpoint("column", [(2, 0)])
    outs, states = [], []
    for _ in range(3):
        outs.append(s.cont())
        states.append(state(s))
    assert s.breakpoints[1].hits == 3
    assert s.reverse_continue() == outs[1]
    assert_same(state(s), states[1])
    assert s.breakpoints[1].hits == 2
    assert s.reverse_continue() == outs[0]
    assert_same(state(s), states[0])
    assert s.breakpoints[1].hits == 1
    out = s.reverse_continue()
    assert "no breakpoint or watchpoint stops" in out[0]
    assert int(s.S.pe[:, K.P_INSTR].sum()) == 0  # at the start of the recording


def test_reverse_continue_to_a_watch_reports_it_as_the_forward_run_did():
    s = session("gemv")
    s.set_focus(2, 0)
    s.watch_symbol("y[0]")
    first = s.cont()
    at_first = state(s)
    assert first[0].startswith("Watchpoint 1: y[0]") and first[1].startswith("Old value")
    second = s.cont()
    assert second[1:3] != first[1:3]  # other old and new values
    s.stepi(5)
    assert s.reverse_continue() == second
    assert s.reverse_continue() == first
    assert_same(state(s), at_first)
    assert s.watches[1].hits == 1


def test_reverse_continue_stops_at_a_breakpoint_set_after_passing_it():
    """A breakpoint set now stops reverse-continue where a forward continue from the last
    recorded point before the hit stops."""
    s = session("gemv")
    s.set_focus(2, 0)
    s.stepi(30)
    s.add_breakpoint("column", [(2, 0)])
    fwd = session("gemv", record=False)
    fwd.set_focus(2, 0)
    fwd.add_breakpoint("column", [(2, 0)])
    counts = []  # the tile's instructions at each hit of a forward run
    while fwd.cont()[0].startswith("Breakpoint"):
        counts.append(int(fwd.S.pe[fwd.fp, K.P_INSTR]))
    last = max(c for c in counts if c < 30)
    expected = session("gemv", record=False)
    expected.set_focus(2, 0)
    expected.stepi(last - 1)  # the recorded point before the hit
    expected.add_breakpoint("column", [(2, 0)])
    expected.cont()
    assert s.reverse_continue()[0] == "Breakpoint 1, column on tile (2, 0)"
    assert int(s.S.pe[s.fp, K.P_PC]) == s.image().labels["column"]
    assert_same(state(s), state(expected))


def test_stats_after_a_reverse_step_are_those_of_that_point():
    s = session("gemv")
    s.stepi(10)
    at10 = s.tile_stats()
    s.stepi(25)
    assert s.tile_stats() != at10
    s.reverse_stepi(25)
    assert s.tile_stats() == at10


def test_reverse_without_a_recording_tells_to_start_one():
    s = session("gemv", record=False)
    s.stepi(3)
    for command in (lambda: s.reverse_stepi(1), s.reverse_continue, lambda: s.goto(1)):
        with pytest.raises(DebugError, match="type 'record' first"):
            command()
    out = io.StringIO()
    run_commands(s, ["rsi", "reverse-continue", "goto 2"], out)
    assert out.getvalue().count("error: reverse execution needs a recording") == 3


def test_reverse_past_the_start_of_the_recording_stays_at_the_start():
    s = session("gemv", record=False)
    s.stepi(5)
    start = state(s)
    s.record_start()
    s.stepi(7)
    out = s.reverse_stepi(100)
    assert "reached the start of the recording" in out[0]
    assert_same(state(s), start)
    out = s.goto(2)
    assert "before the start of the recording" in out[0]
    assert_same(state(s), start)


def test_record_stop_frees_the_snapshots_and_info_record_shows_the_cost():
    s = session("gemv", record=False)
    out = io.StringIO()
    run_commands(s, ["record", "record interval 3", "stepi 10", "info record"], out)
    text = out.getvalue()
    snaps = 1 + 10 // 3  # the start, then one every 3 steps
    assert f"a snapshot every 3 units: {snaps} snapshots" in text
    S = s.S
    size = sum(getattr(S, f).nbytes for f in run_fields(S) if f != "sram8")
    size += sum(int(np.flatnonzero(row).max(initial=-1)) + 1 for row in S.sram8)
    reported = int(re.search(r"snapshots, .*?(\d+) bytes", text).group(1))
    # arrays that did not change are shared; SRAM rows are kept without trailing zeros
    assert size < reported <= snaps * size
    run_commands(s, ["record stop", "info record"], out)
    assert s.rec is None
    assert "Not recording" in out.getvalue()


def test_every_array_a_run_writes_is_in_the_snapshot():
    """A run to the end changes only arrays the snapshot copies (a new engine array that a
    run mutates is caught here)."""
    for name in PROGRAMS:
        m = PROGRAMS[name][0]()
        before = {f: getattr(m.state, f).copy() for f in m.state._fields}
        m.launch()
        m.run()
        changed = {f for f in before if before[f].tobytes() != getattr(m.state, f).tobytes()}
        assert changed - set(VIEW_FIELDS) <= set(run_fields(m.state)), name


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("stepi"), st.integers(1, 12)),
        st.tuples(st.just("rsi"), st.integers(1, 12)),
        st.tuples(st.just("goto"), st.integers(0, 200)),
        st.tuples(st.just("interval"), st.integers(1, 6)),
    ),
    min_size=1,
    max_size=8,
)


@fuzz_settings(25)
@given(ops=OPS)
def test_any_mix_of_forward_and_reverse_equals_a_forward_run(ops):
    """After any sequence, the state is the one a plain forward run reaches when the tile
    has run as many instructions."""
    s = session("gemv")
    p = s.fp
    for op, n in ops:
        count = int(s.S.pe[p, K.P_INSTR])
        halted = int(s.S.pe[p, K.P_STATE]) == K.S_HALT
        if op == "stepi" and not halted:
            s.stepi(n)
            now = int(s.S.pe[p, K.P_INSTR])
            assert now == count + n or int(s.S.pe[p, K.P_STATE]) == K.S_HALT
        elif op == "rsi":
            s.reverse_stepi(n)
            assert int(s.S.pe[p, K.P_INSTR]) == max(0, count - n)
        elif op == "goto":
            s.goto(n)
            assert int(s.S.pe[p, K.P_CLOCK]) >= n or int(s.S.pe[p, K.P_STATE]) == K.S_HALT
        elif op == "interval":
            s.record_interval(n)
    assert_same(state(s), forward("gemv", int(s.S.pe[p, K.P_INSTR])))


def test_the_readme_session_is_what_the_debugger_prints(tmp_path, monkeypatch):
    """README's "Going back" session, run again: the same output, line for line."""
    import shutil
    from pathlib import Path

    from click.testing import CliRunner

    from wse_emu.cli import main

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("**Going back.**", 1)[1].split("```\n", 2)[1]
    commands = [line[len("(wse) ") :] for line in block.splitlines() if line.startswith("(wse) ")]
    shutil.copy(programs.path("gemv"), tmp_path / "gemv.wsa")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.standard_normal((1, 4, 16, 32)).astype(np.float16))
    np.save(tmp_path / "x.npy", rng.standard_normal((1, 4, 16)).astype(np.float16))
    (tmp_path / "cmds.txt").write_text("\n".join(commands) + "\n")
    monkeypatch.chdir(tmp_path)
    args = ["debug", "gemv.wsa", "--in", "a=a.npy", "--in", "x=x.npy", "--tile", "2,0"]
    r = CliRunner().invoke(main, [*args, "--record", "--commands", "cmds.txt"])
    assert r.output == block


def test_help_names_the_reverse_commands_as_they_are_typed():
    out = io.StringIO()
    run_commands(session("gemv", record=False), ["help", "help rsi", "help reverse-continue"], out)
    text = out.getvalue()
    assert "reverse-stepi" in text and "reverse_stepi" not in text
    assert "reverse-stepi [N] (rsi): back N instructions" in text
    assert "reverse-continue (rc): back to the last point" in text


@pytest.mark.parametrize("watch", ["color", "link"])
def test_reverse_continue_to_a_wavelet_or_link_watch(watch):
    """Wavelet and link events happen while the tiles wait (no instruction runs between
    them): each reverse-continue still goes back one event, to the forward run's state."""
    s = session("gemv")
    if watch == "color":
        s.watch_color(0, (3, 0))
    else:
        s.watch_link((2, 0), "east")
    outs, states = [], []
    for _ in range(3):
        outs.append(s.cont())
        states.append(state(s))
    assert len({o[0] for o in outs}) == (3 if watch == "color" else 1)
    for i in (1, 0):
        assert s.reverse_continue() == outs[i]
        assert_same(state(s), states[i])
    assert "no breakpoint or watchpoint stops" in s.reverse_continue()[0]


MIXED = st.lists(
    st.one_of(
        st.tuples(st.just("stepi"), st.integers(1, 12)),
        st.tuples(st.just("rsi"), st.integers(1, 12)),
        st.tuples(st.just("goto"), st.integers(0, 200)),
        st.tuples(st.sampled_from(["cont", "rc", "tile"]), st.integers(0, 3)),
    ),
    min_size=1,
    max_size=8,
)


@fuzz_settings(20)
@given(ops=MIXED)
def test_any_mix_with_continues_equals_a_forward_run_of_its_history(ops):
    """With breakpoints, continues and reverse-continues in the mix: the state is the one a
    fresh session reaches running the recorded history forward (each unit with the
    breakpoints and the tile it had), and that history only ever moves forward."""
    s = session("gemv")
    s.add_breakpoint("column", [(2, 0)])
    s.watch_symbol("y[1]")  # on tile (3, 0)
    for op, n in ops:
        if op == "tile":
            s.set_focus(n, 0)
        elif op == "stepi" and int(s.S.pe[s.fp, K.P_STATE]) not in (K.S_HALT, K.S_FAULT):
            s.stepi(n)
        elif op == "rsi":
            s.reverse_stepi(n)
        elif op == "goto":
            s.goto(n)
        elif op == "cont":
            s.cont(max_cycles=400)
        elif op == "rc":
            s.reverse_continue()
    fresh = session("gemv", record=False)
    for e in s.rec.entries:
        fresh.breakpoints, fresh.watches = copy.deepcopy(e.config)
        fresh.focus = e.focus
        fresh._advance(e.kind, e.arg)
    fresh.breakpoints, fresh.watches, fresh.focus = s.breakpoints, s.watches, s.focus
    fresh._sync()
    assert_same(state(fresh), state(s))
    totals = [m.total for m in s.rec.marks]
    assert totals == sorted(totals)
