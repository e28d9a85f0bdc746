"""The step debugger, driven by scripts (every command, values checked against the emulator's
own state and NumPy) and once through a real terminal."""

import re
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import pair_layout, source_line
from test_switches import MOVING_ROOT
from test_timing import SLOW_CONSUMER, STREAMS

from wse_emu import Mesh, assemble, parse_file, programs
from wse_emu.cli import main
from wse_emu.debug import DebugError, Session
from wse_emu.engine import kinds as K

GEMV = programs.path("gemv")


@pytest.fixture
def gemv_inputs(tmp_path):
    rng = np.random.default_rng(11)
    a = rng.standard_normal((1, 4, 16, 32)).astype(np.float16)
    x = rng.standard_normal((1, 4, 16)).astype(np.float16)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "x.npy", x)
    return tmp_path, a, x


def debug(prog, commands, *args, tmp=None):
    """Run `wse-emu debug` with a command script; returns (exit code, output)."""
    import tempfile
    from pathlib import Path

    d = Path(tmp or tempfile.mkdtemp())
    script = d / "cmds.txt"
    script.write_text("\n".join(commands) + "\n")
    r = CliRunner().invoke(main, ["debug", str(prog), "--commands", str(script), *map(str, args)])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output and "internal error" not in r.output, r.output
    return r.exit_code, r.output


def gemv_image(x):
    linked = assemble(parse_file(GEMV), 4, 1)
    return linked.image_at(x, 0)


def section(out, command):
    """The lines a command printed (up to the next prompt)."""
    part = out.split(f"(wse) {command}\n", 1)[1]
    return part.split("(wse) ", 1)[0].splitlines()


def test_breakpoint_on_a_label_stops_only_that_tile(gemv_inputs):
    d, _, _ = gemv_inputs
    col = gemv_image(2).labels["column"]
    code, out = debug(
        GEMV,
        ["break column tile 2,0", "continue", "continue", "info breakpoints"],
        *gemv_flags(d),
    )
    stops = re.findall(r"Breakpoint 1, column on tile \((\d), (\d)\)\ntile \(2, 0\) pc (\d+)", out)
    assert stops == [("2", "0", str(col))] * 2
    assert "hit 2 times" in out
    assert code == 4  # the script ended before the program did


def test_write_watchpoint_reports_pc_and_old_and_new_values(gemv_inputs):
    d, a, x = gemv_inputs
    im = gemv_image(2)
    code, out = debug(
        GEMV,
        ["tile 2 0", "watch y[0]", "continue", "continue"],
        *gemv_flags(d),
    )
    writer = im.labels["column"] + 2  # the vfmachs
    hits = re.findall(
        r"Watchpoint 1: y\[0\] on tile \(2, 0\) written by pc (\d+) .*\n"
        r"Old value = (\S+)\nNew value = (\S+)",
        out,
    )
    assert [int(h[0]) for h in hits] == [writer, writer]
    a2 = a[0, 2].astype(np.float64)  # tile 2's columns: a2[k, :] is column k
    x2 = x[0, 2].astype(np.float64)
    y1 = np.float32(a2[0, 0] * x2[0])
    y2 = np.float32(np.float64(y1) + a2[1, 0] * x2[1])
    assert float(hits[0][1]) == 0.0 and np.float32(hits[0][2]) == y1
    assert np.float32(hits[1][1]) == y1 and np.float32(hits[1][2]) == y2


def test_fabric_watchpoint_reports_payload_and_source(gemv_inputs):
    d, a, x = gemv_inputs
    code, out = debug(
        GEMV,
        ["watch color 0 at 1,0", "continue"],
        *gemv_flags(d),
    )
    m = re.search(
        r"Watchpoint 1: a wavelet of color 0 landed at tile \(1, 0\) at cycle \d+, "
        r"sent by tile \((\d), (\d)\)\npayload 0x([0-9a-f]{8})",
        out,
    )
    assert m and m.group(1, 2) == ("0", "0")
    y = np.float32(0)  # tile 0's partial y[0], as the kernel sums it
    for k in range(16):
        y = np.float32(np.float64(y) + a[0, 0, k, 0].astype(np.float64) * np.float64(x[0, 0, k]))
    assert int(m.group(3), 16) == int(np.array([y]).view(np.uint32)[0])


def test_link_watchpoint_contention_and_backpressure(tmp_path):
    prog = tmp_path / "streams.wsa"
    prog.write_text(STREAMS)
    _, out = debug(prog, ["watch link 1,0 east"] + ["continue"] * 40, "--mesh", "3x1")
    # both streams cross that link: one waits for the other
    assert re.search(
        r"Watchpoint 1: link \(1, 0\) east is full: a wavelet of color \d from "
        r"tile \(\d, 0\) waited \d+ cycles for it",
        out,
    )
    # the sink takes color 1 first: when color 2's queue fills, its sender is held back
    assert "link (1, 0) east is backpressured: tile (1, 0) is blocked sending color 2" in out
    prog2 = tmp_path / "slow.wsa"
    prog2.write_text(SLOW_CONSUMER)
    _, out = debug(prog2, ["watch link 0,0 east", "continue"], "--mesh", "2x1")
    assert (
        "Watchpoint 1: link (0, 0) east is backpressured: tile (0, 0) is blocked sending "
        "color 5 through it"
    ) in out


def test_why_names_the_cycle_of_a_deadlock(tmp_path):
    from test_errors_and_cli import DEADLOCK

    prog = tmp_path / "dl.wsa"
    prog.write_text(DEADLOCK)
    code, out = debug(prog, ["continue", "why", "why 1,0", "mesh"], "--mesh", "2x1")
    assert code == 3
    assert (
        "tile (0, 0) pc 0 waits for a wavelet of color 1; it can come from (1, 0)\n"
        "tile (1, 0) pc 3 waits for a wavelet of color 2; it can come from (0, 0)\n"
        "deadlock: a cycle of waits: (0, 0) -> (1, 0) -> (0, 0)"
    ) in out
    assert section(out, "mesh")[:2] == ["     0  1 ", "  0 [r] r "]


def test_why_on_a_tile_waiting_for_a_halted_sender(tmp_path):
    prog = tmp_path / "p.wsa"
    prog.write_text(
        """.program snd
main:
    halt
.program rcv
main:
    recv r1, 4
    halt
"""
        + pair_layout("snd", "rcv", 4)
    )
    _, out = debug(prog, ["continue", "why 1,0"], "--mesh", "2x1")
    assert "every tile that could send it has halted: it will never come" in out


def test_stepping_commands(gemv_inputs):
    d, _, _ = gemv_inputs
    im = gemv_image(0)
    code, out = debug(
        GEMV,
        ["stepi", "stepi 3", "step", "until 100", "info stats"],
        *gemv_flags(d),
    )
    pcs = [int(m) for m in re.findall(r"^tile \(0, 0\) pc (\d+)", out, re.M)]
    main_pc = im.labels["main"]
    assert pcs[0] == main_pc + 1 and pcs[1] == main_pc + 4
    assert pcs[2] == main_pc + 5  # one source line on
    assert "Stopped at cycle 100." in out
    stop = re.search(r"Stopped at cycle 100\.\ntile \(0, 0\) pc \d+ .* clock (\d+)", out)
    clock = int(stop.group(1))
    assert 100 <= clock <= 110
    assert re.search(r"instructions \d+, wavelets sent 0", out)


def test_finish_runs_to_the_end_of_the_task(tmp_path):
    prog = tmp_path / "p.wsa"
    prog.write_text(
        """.program snd
main:
    send 1, 7
    send 1, 9
    halt
.program rcv
.data got i32[2]
main:
    mov r2, 0
    ret
.task on_data color 1
    shl r4, r2, 2
    st.i32 [r4 + got], r0
    add r2, r2, 1
    bne r2, 2, more
    halt
more:
    ret
"""
        + pair_layout("snd", "rcv", 1)
    )
    code, out = debug(
        prog,
        [
            "break on_data tile 1,0",
            "continue",
            "info registers",
            "info tasks",
            "finish",
            "info queues",
            "continue",
            "finish",
            "print got",
        ],
        "--mesh",
        "2x1",
    )
    assert "Breakpoint 1, on_data on tile (1, 0)" in out
    regs = section(out, "info registers")
    assert regs[0].split()[1] == "7"  # the wavelet's payload, in r0 at task entry
    tasks = section(out, "info tasks")
    assert re.match(r"\*\s*0 on_data\s+\d+\s+color 1", tasks[1])
    after = section(out, "finish")
    assert "waiting for a task" in after[-1] or "running" in after[-1]
    assert "print got" in out and "got = [7 9]" in out
    assert code == 0


def test_inspection_commands(gemv_inputs):
    d, a, x = gemv_inputs
    code, out = debug(
        GEMV,
        [
            "tile 1 0",
            "break forward tile 1,0",
            "continue",
            "info dsds",
            "print y[0:4]",
            "x/4f32 y",
            "x/2f16 x",
            "x/2x y",
            "x/1i16 x",
            "x/2bf16 a",
            "x/2i8 a",
            "list",
            "disassemble",
            "info routes",
            "info queues",
            "info tasks",
        ],
        *gemv_flags(d),
    )
    m = Mesh(4, 1)
    m.load(assemble(parse_file(GEMV), 4, 1, m.arch))
    m.memcpy_h2d("a", a)
    m.memcpy_h2d("x", x)
    m.launch()
    s = Session(m)
    s.set_focus(1, 0)
    s.add_breakpoint("forward", [(1, 0)])
    s.cont()
    y = m.memcpy_d2h("y", 1, 0, 1, 1)[0, 0]
    assert section(out, "print y[0:4]") == [f"y[0:4] = {np.array2string(y[0:4])}"]
    assert section(out, "x/4f32 y")[0].split(":")[1].split() == [str(v) for v in y[:4]]
    assert section(out, "x/2f16 x")[0].split(":")[1].split() == [str(v) for v in x[0, 1, :2]]
    words = y[:2].view(np.uint32)
    assert section(out, "x/2x y")[0].split(":")[1].split() == [f"0x{w:08x}" for w in words]
    assert section(out, "x/1i16 x")[0].split(":")[1].split() == [str(x[0, 1, :1].view(np.int16)[0])]
    assert len(section(out, "x/2bf16 a")[0].split(":")[1].split()) == 2
    assert section(out, "x/2i8 a")[0].split(":")[1].split() == [
        str(v) for v in a[0, 1].ravel()[:1].view(np.int8)
    ]
    dsds = section(out, "info dsds")
    assert any(re.match(r"d2\s+fabric in\s+color 0\s+length 32", ln) for ln in dsds)
    assert any(re.match(r"d0\s+memory\s+address \d+\s+length 32\s+stride 1", ln) for ln in dsds)
    listing = section(out, "list")
    assert any(ln.startswith("=>") and "mov r5, LAST" in ln for ln in listing)
    dis = section(out, "disassemble")
    assert any(ln.startswith("=>") and "mov r5, 0" in ln for ln in dis)
    assert section(out, "info routes") == [
        "color  0: *pos 0: rx west tx ramp",
        "color  1: *pos 0: rx ramp tx east",
    ]
    assert section(out, "info queues")[0].startswith("color  0: 0 waiting")
    assert section(out, "info tasks") == ["no tasks; running main"]


def test_info_routes_shows_switch_positions(tmp_path):
    prog = tmp_path / "m.wsa"
    prog.write_text(MOVING_ROOT)
    _, out = debug(
        prog,
        ["tile 1 0", "info routes", "break next tile 1,0", "continue", "continue", "info routes"],
        "--mesh",
        "3x1",
    )
    first = section(out, "info routes")
    assert first == [
        "color  0: *pos 0: rx west tx east,ramp; pos 1: rx ramp tx east,west; "
        "pos 2: rx east tx west,ramp"
    ]
    assert "*pos 2" in out.rsplit("(wse) info routes\n", 1)[1]  # after its turn as root


def test_breakpoint_management(gemv_inputs):
    d, _, _ = gemv_inputs
    code, out = debug(
        GEMV,
        [
            "break column tile 1,0 if r1 == 3",
            "tbreak forward tile 3,0",
            "break done all",
            "disable 3",
            "info breakpoints",
            "continue",
            "info registers",
            "delete 1",
            "continue",
            "info breakpoints",
            "enable 3",
            "continue",
            "delete",
            "info breakpoints",
            "break nowhere",
            "break column if r1 ==",
            "delete 99",
            "bogus",
        ],
        *gemv_flags(d),
    )
    table = section(out, "info breakpoints")
    assert table[1].startswith("1    breakpoint  y") and "if r1 == 3" in table[1]
    assert table[2].startswith("2    tbreakpoint y")
    assert table[3].startswith("3    breakpoint  n") and "tile all" in table[3]
    assert "Breakpoint 1, column on tile (1, 0)" in out
    assert section(out, "info registers")[1].split()[1] == "3"  # r1 == 3 when it stopped
    assert "Temporary breakpoint 2, forward on tile (3, 0)" in out
    later = out.split("(wse) enable 3\n")[1]
    assert re.search(r"Breakpoint 3, done on tile \(\d, 0\)", later)
    assert "No breakpoints or watchpoints." in out
    assert "error: no label or task 'nowhere'" in out
    assert "error: bad condition 'r1 =='" in out
    assert "error: no breakpoint or watchpoint 99" in out
    assert "error: unknown command 'bogus'" in out


def test_exit_status_follows_the_program(gemv_inputs):
    d, _, _ = gemv_inputs
    code, out = debug(GEMV, ["continue"], "--mesh", "4x1")
    assert code == 0 and "The program finished: every PE halted at cycle" in out
    code, out = debug(GEMV, ["stepi"], "--mesh", "4x1", "--batch")
    assert code == 4 and "(wse)" not in out


def test_post_mortem_opens_the_debugger_at_the_fault(tmp_path):
    prog = tmp_path / "f.wsa"
    prog.write_text("main:\n    mov r1, 60000\n    st.i32 [r1], r1\n    halt\n")
    r = CliRunner().invoke(
        main,
        ["run", str(prog), "--post-mortem", "-q"],
        input="status\nprint\ninfo registers\nquit\n",
    )
    assert r.exit_code == 3
    assert "tile (0, 0) pc 1" in r.output and "faulted" in r.output
    assert "runtime fault at PE (0,0) pc 1" in r.output
    assert section(r.output, "info registers")[1].split()[1] == "60000"


def test_session_errors_are_clear():
    m = Mesh(2, 1)
    m.load(assemble(parse_file(GEMV), 2, 1, m.arch))
    m.launch()
    s = Session(m)
    with pytest.raises(DebugError, match="outside the 2x1 mesh"):
        s.set_focus(5, 0)
    with pytest.raises(DebugError, match="no symbol 'zz'"):
        s.print_symbol("zz")
    with pytest.raises(DebugError, match="format must be one of"):
        s.examine(1, "q", "y")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")
def test_interactive_session_through_a_terminal(gemv_inputs):

    d, _, _ = gemv_inputs
    child = spawn_debug(
        GEMV, d, "--mesh", "4x1", "--in", f"a={d / 'a.npy'}", "--in", f"x={d / 'x.npy'}"
    )
    child.expect(r"tile \(0, 0\) pc \d+ .*running")
    child.expect_exact("(wse) ")
    converse(
        child,
        [
            ("break column tile 1,0", "Breakpoint 1 at pc"),
            ("continue", r"Breakpoint 1, column on tile \(1, 0\)"),
            ("print y[0:2]", r"y\[0:2\] = \["),
        ],
    )
    quit_with(child, 4)


def spawn_debug(prog, home, *args):
    """`wse-emu debug prog *args` in a terminal, with HOME at home (its history goes there)."""
    import os

    import pexpect

    env = {k: v for k, v in os.environ.items() if k != "XDG_STATE_HOME"}
    env["HOME"] = str(home)
    cmd = ["-m", "wse_emu.cli", "debug", str(prog), *args]
    return pexpect.spawn(sys.executable, cmd, encoding="utf-8", timeout=120, env=env)


def test_tab_completion_and_history_in_a_terminal(tmp_path):
    """Tab completes a hyphenated command and a label; the next session recalls the last
    command with the up arrow."""

    def session():
        child = spawn_debug(GEMV, tmp_path)
        child.expect_exact("(wse) ")
        return child

    child = session()
    converse(child, [("record", "Recording from here")])
    child.send("break col\t")
    child.expect_exact("break column")
    converse(child, [(" tile 2,0", "Breakpoint 1 at pc")])
    converse(child, [("stepi", r"pc \d+")])
    child.send("reverse-s\t")
    child.expect_exact("reverse-stepi")
    converse(child, [("", r"tile \(0, 0\) pc \d+")])
    quit_with(child, 4)
    assert "reverse-stepi" in (tmp_path / ".wse_emu_history").read_text()
    child = session()
    child.send("\x1b[A\x1b[A")  # two commands back: reverse-stepi, then quit was the last
    child.expect_exact("reverse-stepi")
    child.sendline("")
    child.expect("error: reverse execution needs a recording")
    child.expect_exact("(wse) ")
    quit_with(child, 4)


def converse(child, steps):
    """Send each command line, expect its answer (a regex), then the next prompt."""
    for line, answer in steps:
        child.sendline(line)
        child.expect(answer)
        child.expect_exact("(wse) ")


def quit_with(child, status):
    import pexpect

    child.sendline("quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == status


def test_ctrl_c_during_continue_returns_to_the_prompt(tmp_path):
    """A long continue, interrupted in a real terminal: the run stops, the session stays."""
    import signal
    import time

    prog = tmp_path / "spin.wsa"
    prog.write_text("main:\nloop:\n    jmp loop\n")
    child = spawn_debug(prog, tmp_path)
    child.expect_exact("(wse) ")
    child.sendline("continue")
    child.expect_exact("continue")
    time.sleep(1.5)  # the run is under way (it would take hours to reach its cycle limit)
    child.kill(signal.SIGINT)
    child.expect_exact("Interrupted.")
    child.expect(r"tile \(0, 0\) pc \d+ .*running")
    child.expect_exact("(wse) ")
    converse(child, [("status", r"tile \(0, 0\) pc \d+"), ("stepi", r"pc \d+")])
    quit_with(child, 4)


def test_break_by_line_and_address_and_watch_by_address(gemv_inputs):
    d, _, _ = gemv_inputs
    im = gemv_image(0)
    line = source_line(programs.path("gemv"), "vfmachs d0, d1, r3")
    pc = next(i for i, pos in enumerate(im.positions) if pos.line == line) + im.base
    y_addr = im.symbols["y"].addr
    code, out = debug(
        GEMV,
        [
            f"break {line}",
            "continue",
            "delete",
            f"break *{pc + 1}",
            "continue",
            "delete",
            f"watch {y_addr}",
            "continue",
        ],
        *gemv_flags(d),
    )
    assert re.search(rf"Breakpoint 1, line {line} on tile \(0, 0\)\ntile \(0, 0\) pc {pc} ", out)
    assert re.search(rf"Breakpoint 2, \*{pc + 1} on tile \(0, 0\)\ntile \(0, 0\) pc {pc + 1} ", out)
    assert re.search(rf"Watchpoint 3: \*{y_addr} on tile \(0, 0\) written by pc {pc} ", out)


def test_queue_contents_show_payloads_and_arrival_times(tmp_path):
    prog = tmp_path / "q.wsa"
    prog.write_text(
        """.program snd
main:
    send 3, 0x11
    send 3, 0x22
    halt
.program rcv
main:
    mov r1, 0
spin:
    add r1, r1, 1
    blt r1, 50, spin
    recv r2, 3
    recv r2, 3
    halt
"""
        + pair_layout("snd", "rcv", 3)
    )
    code, out = debug(prog, ["tile 1 0", "until 40", "info queues"], "--mesh", "2x1")
    queue = section(out, "info queues")[0]
    m = re.fullmatch(r"color  3: 2 waiting: 0x00000011@(\d+) 0x00000022@(\d+)", queue)
    assert m and int(m.group(2)) == int(m.group(1)) + 1  # one wavelet per cycle on the link


def test_fabric_watch_on_the_broadcast_program(tmp_path):
    rng = np.random.default_rng(2)
    src = rng.standard_normal((2, 1, 32)).astype(np.float32)
    np.save(tmp_path / "src.npy", src)
    code, out = debug(
        programs.path("row_broadcast"),
        ["watch color 0 at 3,1", "continue", "tile 3 1", "info stats"],
        "--mesh",
        "4x2",
        "--in",
        f"src={tmp_path / 'src.npy'}",
    )
    m = re.search(
        r"landed at tile \(3, 1\) at cycle \d+, sent by tile \((\d), (\d)\)\n"
        r"payload 0x([0-9a-f]{8})",
        out,
    )
    assert m and m.group(1, 2) == ("0", "1")  # row 1's root
    assert int(m.group(3), 16) == int(src[1, 0, :1].view(np.uint32)[0])


def test_malformed_numbers_are_errors_not_internal_errors():
    code, out = debug(
        GEMV,
        [
            "break *171*",
            "watch 99999999999999999999",
            "stepi x",
            "until 0",
            "list abc",
            "tbreak *",
            "status",
        ],
        "--mesh",
        "4x1",
    )
    assert "'*171*' is not an address" in out and "is outside SRAM" in out
    assert "stepi wants a number, got 'x'" in out and "until needs a cycle in" in out
    assert "no line or label 'abc'" in out and re.search(r"tile \(0, 0\) pc \d+", out)


def test_ctrl_c_before_the_engine_runs_does_not_hide_the_next_breakpoint(monkeypatch):
    """Interrupted right after `continue` armed the step over the breakpoint it sat on: the
    armed skip is dropped, so the PE cannot pass its next breakpoint unseen."""
    src = "main:\n    mov r1, 0\nloop:\n    add r1, r1, 1\n    blt r1, 5, loop\n    halt\n"
    m = Mesh(1, 1)
    m.load(assemble(src, 1, 1, m.arch))
    m.launch()
    s = Session(m)
    s.add_breakpoint("loop", None)
    first = s.cont()
    assert any("Breakpoint 1" in line for line in first)

    def interrupted(self, max_cycles=None):
        self.S.misc[K.M_SKIP_PE] = 0  # what going on from a breakpoint arms first
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(Session, "_engine", interrupted)
        assert s.cont()[0] == "Interrupted."
    assert s.S.misc[K.M_SKIP_PE] == -1
    hits = [s.cont() for _ in range(5)]  # r1 = 0 (again, the one it sat on), then 1 .. 4
    assert all(any("Breakpoint 1" in line for line in out) for out in hits)
    s.cont()
    assert m.state.pe[0, K.P_STATE] == K.S_HALT and m.state.regs[0, 1] == 5


def gemv_flags(d, mesh="4x1"):
    """The debug command's options for programs/gemv.wsa with the fixture's inputs in d."""
    flags = ["--mesh", mesh] if mesh else []
    return flags + ["--in", f"a={d / 'a.npy'}", "--in", f"x={d / 'x.npy'}"]


CALLS = """.data v i32[1]
main:
    mov r1, 5
    call inc
    add r1, r1, 1
    st.i32 [v], r1
    halt
inc:
    add r1, r1, 10
    ret
"""


def test_next_steps_over_calls_and_bt_shows_frames(tmp_path):
    prog = tmp_path / "p.wsa"
    prog.write_text(CALLS)
    code, out = debug(
        prog,
        ["next", "next", "p $r1", "next", "p $pc"],
    )
    assert code == 4  # still running
    assert section(out, "p $r1") == ["$r1 = 15"]  # the call ran as one step
    assert section(out, "p $pc") == ["$pc = 3"]  # st.i32 after the add
    prog.write_text(CALLS)
    code, out = debug(prog, ["break inc", "continue", "bt", "p $r99", "p $x"])
    frames = section(out, "bt")
    assert frames[0].startswith("#0  pc 5 in inc (") and "add r1, r1, 10" in frames[0]
    assert frames[1].startswith("#1  pc 1 in main (") and "call inc" in frames[1]
    assert frames[2] == "    task: main"
    assert section(out, "p $r99") == ["error: no register $r99: r0-r15, f0-f15"]
    assert "error: no register $x" in section(out, "p $x")[0]


def test_enter_repeats_steps_and_conditions_take_gdb_operators(tmp_path):
    from io import StringIO

    from wse_emu.debug.repl import Debugger

    m = Mesh(1, 1)
    m.load(assemble(CALLS, 1, 1))
    m.launch()
    out = StringIO()
    dbg = Debugger(Session(m), stdout=out)
    dbg.onecmd(dbg.precmd("stepi"))
    dbg.onecmd("")  # Enter: another stepi
    dbg.onecmd(dbg.precmd("p $pc"))
    assert out.getvalue().splitlines()[-1] == "$pc = 5"  # mov, call: now in inc
    dbg.onecmd(dbg.precmd("p $r1"))
    dbg.onecmd("")  # print is not repeated
    assert out.getvalue().splitlines()[-1] == "$r1 = 5"
    assert out.getvalue().count("$r1 = 5") == 1
    dbg.onecmd(dbg.precmd("break main if r1 > 100 || (x == 0 && !(y == 1))"))
    help_out = StringIO()
    Debugger(Session(m), stdout=help_out).onecmd("help")
    assert "EOF" not in help_out.getvalue() and "backtrace" in help_out.getvalue()


def test_list_takes_a_label_and_bad_arguments_are_errors(tmp_path):
    prog = tmp_path / "p.wsa"
    prog.write_text(CALLS)
    _, out = debug(prog, ["list inc", "list nowhere", "list 999", "stepi abc"])
    assert any("add r1, r1, 10" in line for line in section(out, "list inc"))
    assert section(out, "list nowhere")[0].startswith("error: no line or label 'nowhere'")
    assert section(out, "list 999") == ["error: line 999 is outside the program (1-10)"]
    assert section(out, "stepi abc") == ["error: stepi wants a number, got 'abc'"]


WHY_PROGRAM = """; R waits for color 1 from A or B; A waits for C, C for D (halted); B waits for R
.program R
main:
    recv r1, 1
    send 2, r1
    halt
.program A
main:
    recv r1, 3
    send 1, r1
    halt
.program B
main:
    recv r1, 2
    send 1, r1
    halt
.program C
main:
    recv r1, 4
    send 3, r1
    halt
.program D
main:
    halt
.layout
.place A at 0, 0 size 1, 1
.place R at 1, 0 size 1, 1
.place B at 2, 0 size 1, 1
.place C at 0, 1 size 1, 1
.place D at 1, 1 size 1, 1
.route 1 at 0, 0 size 1, 1 rx ramp tx east
.route 1 at 2, 0 size 1, 1 rx ramp tx west
.route 1 at 1, 0 size 1, 1 rx west, east tx ramp
.route 2 at 1, 0 size 1, 1 rx ramp tx east
.route 2 at 2, 0 size 1, 1 rx west tx ramp
.route 3 at 0, 1 size 1, 1 rx ramp tx north
.route 3 at 0, 0 size 1, 1 rx south tx ramp
.route 4 at 1, 1 size 1, 1 rx ramp tx west
.route 4 at 0, 1 size 1, 1 rx east tx ramp
"""


def test_why_follows_every_sender_of_the_color_a_tile_waits_for(tmp_path):
    """R's color can come from A and from B: both chains are followed, A's to the halted D
    through C, B's around the cycle back to R."""
    prog = tmp_path / "why.wsa"
    prog.write_text(WHY_PROGRAM)
    code, out = debug(prog, ["continue", "why 1,0"], "--mesh", "3x2")
    assert code == 3
    linked = assemble(WHY_PROGRAM, 3, 2)
    at = {"A": (0, 0), "R": (1, 0), "B": (2, 0), "C": (0, 1)}
    pcs = {n: linked.image_at(*xy).labels["main"] for n, xy in at.items()}
    assert section(out, "why 1,0") == [
        f"tile (1, 0) pc {pcs['R']} waits for a wavelet of color 1; it can come from "
        "(0, 0), (2, 0)",
        f"  tile (0, 0) pc {pcs['A']} waits for a wavelet of color 3; it can come from (0, 1)",
        f"  tile (0, 1) pc {pcs['C']} waits for a wavelet of color 4; it can come from (1, 1)",
        "    every tile that could send it has halted: it will never come",
        f"  tile (2, 0) pc {pcs['B']} waits for a wavelet of color 2; it can come from (1, 0)",
        "  deadlock: a cycle of waits: (1, 0) -> (2, 0) -> (1, 0)",
    ]


def test_why_output_is_bounded_on_a_long_chain(tmp_path):
    """A row of W tiles, each waiting for its east neighbour: one line per tile up to the
    bound, then a note."""
    from wse_emu.debug.session import WHY_LINES

    w = WHY_LINES + 10
    prog = tmp_path / "chain.wsa"
    text = ".program ev\nmain:\n    recv r1, 0\n    halt\n"
    text += ".program od\nmain:\n    recv r1, 1\n    halt\n.layout\n"
    for x in range(w):  # tile x receives color x % 2 from tile x + 1
        text += f".place {'od' if x % 2 else 'ev'} at {x}, 0 size 1, 1\n"
        if x + 1 < w:
            text += f".route {x % 2} at {x}, 0 size 1, 1 rx east tx ramp\n"
            text += f".route {x % 2} at {x + 1}, 0 size 1, 1 rx ramp tx west\n"
    prog.write_text(text)
    _, out = debug(prog, ["continue", "why 0,0"], "--mesh", f"{w}x1")
    lines = section(out, "why 0,0")
    assert len(lines) == WHY_LINES + 1
    assert lines[0].startswith("tile (0, 0) pc 0 waits for a wavelet of color 0")
    assert lines[WHY_LINES - 1].startswith(f"tile ({WHY_LINES - 1}, 0) pc")
    assert lines[-1].startswith(f"... (more than {WHY_LINES} lines")


def gemv_debugger():
    from wse_emu.debug.repl import Debugger

    m = Mesh(4, 1)
    m.load(GEMV)
    m.launch()
    return Debugger(Session(m))


def test_completion_of_commands_labels_symbols_registers_and_tiles():
    d = gemv_debugger()
    assert sorted(d.completenames("rev")) == ["reverse-continue", "reverse-stepi"]
    assert "EOF" not in d.completenames("")
    assert d.complete_break("col", "break col", 6, 9) == ["column"]
    assert d.complete_break("", "break column tile ", 18, 18) == ["0,0", "1,0", "2,0", "3,0"]
    assert d.complete_list("ma", "list ma", 5, 7) == ["main"]
    assert d.complete_print("", "print ", 6, 6) == sorted(
        set(gemv_image(0).symbols)
        | {f"${r}{i}" for r in "rf" for i in range(16)}
        | {"$pc", "$clock"}
    )
    # readline splits words at $ and ,: the completion continues the current word
    assert d.complete_print("r1", "p $r1", 3, 5) == ["r1", "r10", "r11", "r12", "r13", "r14", "r15"]
    assert d.complete_x("", "x/4f32 ", 7, 7) == sorted(gemv_image(0).symbols)
    assert d.complete_watch("y", "watch y", 6, 7) == ["y"]
    assert d.complete_tile("", "tile 2,", 7, 7) == ["0"]
    assert d.complete_tile("", "tile ", 5, 5) == ["0,0", "1,0", "2,0", "3,0"]
    assert d.complete_record("s", "record s", 7, 8) == ["stop"]


def test_history_is_kept_between_sessions(tmp_path, monkeypatch):
    readline = pytest.importorskip("readline")
    from wse_emu.debug import repl

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert repl.history_path() == tmp_path / ".wse_emu_history"
    readline.clear_history()
    readline.add_history("break column tile 2,0")
    assert repl.save_history()
    readline.clear_history()
    assert repl.load_history()
    assert readline.get_history_item(1) == "break column tile 2,0"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert repl.save_history()
    assert (tmp_path / "state" / "wse-emu" / "history").read_text().strip().endswith("2,0")


def test_history_never_fails_the_session(tmp_path, monkeypatch):
    from wse_emu.debug import repl

    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))  # a file where a folder must go
    assert repl.save_history() is False
    assert repl.load_history() is False
    monkeypatch.setitem(sys.modules, "readline", None)  # no readline at all
    assert repl.save_history() is False
    assert repl.load_history() is False


def test_mesh_map_numbers_columns_and_folds_a_large_mesh(tmp_path):
    prog = tmp_path / "p.wsa"
    prog.write_text(".program a\nmain:\n    halt\n.program b\nmain:\n    recv r1, 0\n    halt\n"
                    ".layout\n.place a at 0, 0 size WIDTH, HEIGHT - 1\n"
                    ".place b at 70, HEIGHT - 1 size 1, 1\n")  # fmt: skip
    _, out = debug(prog, ["continue", "mesh"], "--mesh", "100x40")
    rows = section(out, "mesh")
    assert rows[0].split() == [str(x) for x in range(0, 100, 4)]  # 4 tiles a cell
    assert [r.split()[0] for r in rows[1:21]] == [str(y) for y in range(0, 40, 2)]
    # (70, 39) is blocked on receive, the rest halted or empty: the cell of columns
    # 68-71, rows 38-39 shows the receive, the most urgent state in it
    cells = [c.strip("[]") for c in rows[20].split()[1:]]
    assert cells[68 // 4] == "r" and rows[20].split()[1:][68 // 4] == "[r]"  # and the focus
    assert set(cells) == {"H", "r"}
    assert "each cell is 4 x 2 tiles" in out


def test_included_code_is_shown_and_broken_at_in_its_own_file(tmp_path):
    (tmp_path / "lib.wsa").write_text(".macro bump R\n    add R, R, 1\n    add R, R, 2\n.endm\n")
    prog = tmp_path / "p.wsa"
    prog.write_text('.include "lib.wsa"\nmain:\n    mov r1, 0\n    bump r1\n    halt\n')
    _, out = debug(prog, ["break lib.wsa:3", "continue", "list", "bt", "step", "break 9"])
    assert "Breakpoint 1 at pc 2 (" in out and "lib.wsa:3: add r1, r1, 2)" in out
    listing = section(out, "list")
    assert listing[0].endswith("lib.wsa:") and any(ln.startswith("=>    3") for ln in listing)
    assert "#0  pc 2 in main (" in out
    assert "p.wsa:5: halt)" in section(out, "step")[0]
    assert "error: no instruction on line 9 of" in out
