"""Every user-facing error path: file:line:col with a caret for programs, PE (x,y) + pc +
source line for runtime faults, a wait list for deadlocks; exit codes, no tracebacks.
And the CLI commands themselves."""

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import run_program, source_line, vector_add_cycles

from wse_emu import AsmError, Mesh, RunError, assemble, parse_file, programs
from wse_emu.cli import main
from wse_emu.isadoc import markdown


def cli(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r


def write(tmp_path, text, name="p.wsa"):
    p = tmp_path / name
    p.write_text(text)
    return p


ASM_ERRORS = [
    ("main:\n    vadd.f61 d0, d1, d2\n", 2, 5, "vadd does not take .f61", "allowed: .f16"),
    ("main:\n    add r1, r2\n", 2, 5, "add takes 3 operands, got 2", "syntax: add rd, rs, ri"),
    ("main:\n    add r1, r2, , 3\n", 2, 17, "unexpected ','", "expected"),
    ("main:\n    jmp nowhere\n", 2, 9, "undefined label 'nowhere'", "labels: main"),
    ("main:\n    vaad.f16 d0, d1, d2\n", 2, 5, "unknown instruction 'vaad'", "did you mean"),
    ("main:\n    mov r99, 1\n", 2, 9, "must be a register", ""),
    ("main:\n    send 30, r1\n", 2, 10, "color 30 out of range", ""),
    (".data a f17[4]\nmain:\n  halt\n", 1, 9, "unknown dtype 'f17'", ""),
    ("main:\n    mov r1, UNDEF + 1\n", 2, 13, "undefined name 'UNDEF'", ""),
    ("main:\n    halt\nmain:\n    halt\n", 3, 1, "label 'main' defined twice", ""),
    ("main:\n  mov r1, 1 $\n", 2, 13, "unexpected character '$'", ""),
    (
        ".program p\nmain:\n  halt\n.layout\n.place nope at 0, 0 size 1, 1\n",
        5,
        8,
        "no program named 'nope'",
        "programs: p",
    ),
    (
        ".program p\nmain:\n  halt\n.layout\n.place p at 0, 0 size 2, 1\n",
        5,
        8,
        "leaves the 1x1 mesh",
        "",
    ),
    (
        ".program p\n.data big f32[20000]\nmain:\n  halt\n.layout\n.place p at 0, 0 size 1, 1\n",
        6,
        8,
        "needs 80004 bytes of SRAM per PE but a PE has 49152",
        "big f32[20000] = 80000 B",
    ),
    (".layout\n", 1, 1, "no program", ""),
    (".layout\n.repeat I = 0, 2\n", 2, 1, ".repeat without a matching .end", ""),
]


@pytest.mark.parametrize("src,line,col,message,hint", ASM_ERRORS)
def test_assembler_errors_point_at_file_line_col(tmp_path, src, line, col, message, hint):
    p = write(tmp_path, src)
    r = cli("run", p)
    assert r.exit_code == 2
    out = r.output
    assert out.startswith(f"{p}:{line}:{col}: error: ") and message in out, out
    assert "Traceback" not in out
    lines = out.splitlines()
    caret = next(ln for ln in lines if ln.strip() == "^")
    assert caret.index("^") == 4 + col - 1  # under the column
    if hint:
        assert hint in out


def test_non_utf8_and_cr_files_are_located_errors(tmp_path):
    p = tmp_path / "p.wsa"
    p.write_bytes(b"main:\r    halt\r    nop \xff\r")
    r = cli("asm", p)
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.output.startswith(f"{p}:3:9: error: invalid UTF-8 byte 0xff"), r.output
    assert "\n        nop \ufffd\n            ^\n" in r.output


def test_asm_error_object_carries_position():
    with pytest.raises(AsmError) as e:
        assemble("main:\n  add r1, r2\n", filename="x.wsa")
    assert (e.value.filename, e.value.line, e.value.column) == ("x.wsa", 2, 3)


RUNTIME_FAULTS = [
    (
        "main:\n  mov r1, 50000\n  ld.i32 r2, [r1]\n  halt\n",
        2,
        "SRAM access out of range",
        "address 50000",
    ),
    ("main:\n  mov r1, 3\n  ld.i32 r2, [r1]\n  halt\n", 2, "misaligned", "address 3"),
    ("main:\n  vadd.f16 d0, d1, d2\n  halt\n", 1, "DSD register used before it was set up", "d0"),
    (
        ".data a f16[8]\nmain:\n  dmem d0, a, 8\n  dmem d1, a, 4\n  vadd.f16 d0, d0, d1\n  halt\n",
        4,
        "source shorter than destination",
        "d1",
    ),
    (
        ".data a f16[8]\nmain:\n  dmem d0, a, 30000\n  vadd.f16 d0, d0, d0\n  halt\n",
        3,
        "SRAM access out of range",
        "address",
    ),
    ("main:\n  send 2, r1\n  halt\n", 1, "no route", "color 2"),
    ("main:\n  call main\n", 1, "call stack overflow", ""),
    ("main:\n  mov r1, -1\n  dmem d0, [0], r1\n  halt\n", 2, "bad DSD length", "length -1"),
    ("main:\n  recv r1, 4\n  halt\n.task t color 4\n  ret\n", 1, "queue misuse", "color 4"),
]


@pytest.mark.parametrize("src,pc_line,reason,arg", RUNTIME_FAULTS)
def test_runtime_faults_name_pe_pc_and_source_line(tmp_path, src, pc_line, reason, arg):
    p = write(tmp_path, src)
    r = cli("run", p, "-q")
    assert r.exit_code == 3
    m = re.search(
        r"runtime fault at PE \((\d+),(\d+)\) pc (\d+) \((.+?):(\d+): (.*)\): (.*)", r.output
    )
    assert m, r.output
    assert m.group(1, 2) == ("0", "0")
    line = int(m.group(5)) if m.group(5) else 0
    src_lines = src.splitlines()
    assert m.group(6) == src_lines[line - 1].strip()
    assert reason in m.group(7) and arg in m.group(7)
    assert "Traceback" not in r.output


DEADLOCK = """; two PEs each wait for the other before sending
.program left
main:
    recv r1, 1
    send 2, r1
    halt
.program right
main:
    recv r1, 2
    send 1, r1
    halt
.layout
.place left at 0, 0 size 1, 1
.place right at 1, 0 size 1, 1
.route 2 at 0, 0 size 1, 1 rx ramp tx east
.route 2 at 1, 0 size 1, 1 rx west tx ramp
.route 1 at 1, 0 size 1, 1 rx ramp tx west
.route 1 at 0, 0 size 1, 1 rx east tx ramp
"""


def test_deadlock_report_lists_each_blocked_pe_and_its_color(tmp_path):
    r = cli("run", write(tmp_path, DEADLOCK), "--mesh", "2x1", "-q")
    assert r.exit_code == 3
    assert "deadlock: no PE can run and 2 have not halted" in r.output
    assert re.search(r"PE \(0,0\) pc 0 \(.*:4: recv r1, 1\): blocked on receive, color 1", r.output)
    assert re.search(
        r"PE \(1,0\) pc \d+ \(.*:9: recv r1, 2\): blocked on receive, color 2", r.output
    )


def test_cycle_limit_stops_and_reports(tmp_path):
    r = cli("run", write(tmp_path, "main:\nloop:\n  jmp loop\n"), "--max-cycles", 500, "-q")
    assert r.exit_code == 3
    assert "cycle limit 500 reached" in r.output and "PE (0,0) pc 0" in r.output
    with pytest.raises(RunError) as e:
        run_program("main:\nloop:\n  jmp loop\n", max_cycles=100)
    assert e.value.kind == "cycle-limit" and e.value.result.cycles > 100


@pytest.mark.parametrize(
    "routes,message",
    [
        (".route 1 at 0, 0 size 1, 1 rx ramp tx east\n", "transmits east off the edge"),
        (".route 1 at 0, 0 size 1, 1 rx ramp tx south\n", "off the edge"),
    ],
)
def test_route_errors_at_load(tmp_path, routes, message):
    src = ".program p\nmain:\n  halt\n.layout\n.place p at 0, 0 size 1, 1\n" + routes
    r = cli("run", write(tmp_path, src), "-q")
    assert r.exit_code == 2 and message in r.output and "color 1" in r.output


def test_route_not_received_names_the_missing_rx(tmp_path):
    src = (
        ".program p\nmain:\n  halt\n.layout\n.place p at 0, 0 size 2, 1\n"
        ".route 1 at 0, 0 size 1, 1 rx ramp tx east\n"
        ".route 1 at 1, 0 size 1, 1 rx north tx ramp\n"
    )
    r = cli("run", write(tmp_path, src), "--mesh", "2x1", "-q")
    assert r.exit_code == 2
    assert "PE (1,0) does not receive from west (add 'west' to its rx)" in r.output


def test_cli_input_errors(tmp_path):
    prog = programs.path("vector_add")
    assert "must look like 16x16" in cli("run", prog, "--mesh", "4by4").output
    r = cli("run", prog, "--in", "a=" + str(tmp_path / "missing.npy"))
    assert r.exit_code == 2 and "cannot read" in r.output
    np.save(tmp_path / "a.npy", np.zeros(3))
    r = cli("run", prog, "--in", f"a={tmp_path / 'a.npy'}")
    assert r.exit_code == 2 and "64 values, got an array of shape (3,)" in r.output
    r = cli("run", prog, "--in", f"zz={tmp_path / 'a.npy'}")
    assert r.exit_code == 2 and "no program has a symbol 'zz'" in r.output
    r = cli("run", prog, "--set", "hop_latency=x")
    assert r.exit_code == 2 and "must be an integer" in r.output
    r = cli("run", prog, "--set", "warp_speed=9")
    assert r.exit_code == 2 and "unknown cost parameter 'warp_speed'" in r.output
    r = cli("run", tmp_path / "nope.wsa")
    assert r.exit_code == 2 and "cannot read" in r.output


def test_run_with_inputs_outputs_and_json(tmp_path, rng):
    a = rng.standard_normal(64).astype(np.float16)
    b = rng.standard_normal(64).astype(np.float16)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    r = cli(
        "run",
        programs.path("vector_add"),
        "--in",
        f"a={tmp_path / 'a.npy'}",
        "--in",
        f"b={tmp_path / 'b.npy'}",
        "--out",
        f"c={tmp_path / 'c.npy'}",
        "--json",
        tmp_path / "s.json",
    )
    assert r.exit_code == 0, r.output
    assert ": done" in r.output and f"cycles          {vector_add_cycles()}" in r.output
    c = np.load(tmp_path / "c.npy")
    assert c.shape == (1, 1, 64) and np.array_equal(c[0, 0], a + b)
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["cycles"] == vector_add_cycles() and stats["flops"]["f16"] == 64
    assert stats["per_pe"]["busy"] == [[vector_add_cycles()]]  # never idle or stalled
    # what the run cost this process: a positive time, and at least the PE's SRAM resident
    assert 0 < stats["host_seconds"] < 600
    assert stats["peak_rss_bytes"] > 48 * 1024


def test_asm_listing_and_disasm_round_trip(tmp_path):
    prog = programs.path("gemv")
    r = cli("asm", prog, "--mesh", "4x1", "-o", tmp_path / "g.npz")
    assert r.exit_code == 0, r.output
    assert "program gemv (params: IN=0, OUT=0, FIRST=1, LAST=0)" in r.output
    line = source_line(programs.path("gemv"), "vfmachs d0, d1, r3")
    assert f"; {line}: vfmachs d0, d1, r3" in r.output
    rows, labels, pending = [], [], []
    for ln in r.output.splitlines():
        if ln.startswith("program "):
            labels.append({})
        elif re.match(r"\s+\w+:$", ln):
            pending.append(ln.strip()[:-1])
        elif m := re.match(r"\s*(\d+)  ((?:[0-9a-f]{8} ){9}) (.*?)\s+; \d+:", ln):
            for name in pending:
                labels[-1][name] = m.group(1)
            pending = []
            rows.append((m, len(labels) - 1))
    code = np.load(tmp_path / "g.npz")["code"]
    assert len(rows) == len(code) and len(labels) == 4  # 4 instances of gemv on 4x1
    for m, _ in rows:  # the listing shows the encoding that was written
        words = [int(w, 16) for w in m.group(2).split()]
        assert words == [int(v) & 0xFFFFFFFF for v in code[int(m.group(1))]]
    d = cli("disasm", tmp_path / "g.npz")
    assert d.exit_code == 0
    dis = [ln.split(None, 1)[1] for ln in d.output.splitlines() if not ln.startswith(";")]
    for (m, image), text in zip(rows, dis):  # same text; disasm shows label addresses
        want = m.group(3).strip()
        for name, pc in labels[image].items():
            want = re.sub(rf"\b{name}\b", pc, want)
        assert text == want


def test_info_and_isa_commands():
    r = cli("info")
    assert r.exit_code == 0 and "simd.fp16_basic" in r.output and "facts:" in r.output
    r = cli("info", "--arch", "wse2", "--set", "hop_latency=3")
    assert "3*" in r.output


def test_set_takes_the_names_info_prints_and_info_lines_up():
    r = cli("info")
    lines = r.output.splitlines()
    names = [ln.split()[0] for ln in lines[1:]]
    source_at = {
        re.search(r" (facts|assumed|calibrated|simulation)", ln).start() for ln in lines[1:]
    }
    assert len(source_at) == 1, "the source column starts at one place"
    for name in (names[0], "cycles.scalar", "scalar"):
        r = cli("info", "--arch", "wse3", "--set", f"{name}=2")
        assert r.exit_code == 0, r.output
        row = next(ln for ln in r.output.splitlines() if ln.split()[0].endswith(name))
        assert row.split()[1] == "2*"
    for bad in ("simd.scalar=2", "cycles.=2", ".scalar=2"):
        r = cli("info", "--set", bad)
        assert r.exit_code == 2 and "unknown cost parameter" in r.output, r.output
    r = cli("isa")
    assert "vfmacs.T dsd, dsd, rv" in r.output
    assert cli("isa", "--markdown").output == markdown()


def test_every_command_has_help():
    for cmd in ([], ["asm"], ["disasm"], ["run"], ["info"], ["isa"], ["demo"]):
        r = cli(*cmd, "--help")
        assert r.exit_code == 0 and "Usage:" in r.output


def test_run_progress_line_shows_cycle_and_halted_pes_then_erases_itself(tmp_path):
    import io

    from wse_emu.progress import RunProgress

    m = Mesh(2, 1)
    m.load(
        assemble(".mesh 2x1\n.program a\nmain:\n    halt\n.layout\n.place a at 0, 0 size 2, 1\n")
    )
    m.launch()
    out = io.StringIO()
    bar = RunProgress(out, after=0.0, every=0.0)
    m.run(progress=bar, batch=1)  # one instruction per batch: called between them
    assert re.search(r"running: cycle \d+, [0-2]/2 PEs halted, \d+ s", out.getvalue())
    bar.close()
    assert out.getvalue().endswith("\r" + " " * bar_width(out.getvalue()) + "\r")
    quiet = RunProgress(io.StringIO(), after=3600.0)
    quiet(m)
    quiet.close()
    assert quiet.stream.getvalue() == ""  # a short run shows nothing


def bar_width(text):
    return len(text.split("\r")[1])


def test_compile_note_is_printed_only_when_the_engine_cache_is_cold(monkeypatch):
    from wse_emu import cli as cli_mod

    monkeypatch.setattr(cli_mod, "engine_is_cold", lambda: True)
    r = cli("run", programs.path("vector_add"))
    assert r.exit_code == 0 and "compiling the engine with Numba" in r.output
    assert "compiling" not in cli("run", programs.path("vector_add"), "-q").output
    monkeypatch.setattr(cli_mod, "engine_is_cold", lambda: False)
    assert "compiling" not in cli("run", programs.path("vector_add")).output
    from wse_emu.progress import engine_is_cold

    assert not engine_is_cold()  # this session has compiled (or loaded) the run loop


def test_heatmap_draws_the_stats_fractions_to_a_png(tmp_path):
    from wse_emu.heatmap import fractions

    out = tmp_path / "h.png"
    r = cli("run", programs.path("row_broadcast"), "--heatmap", out, "--json", tmp_path / "s.json")
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stats = json.loads((tmp_path / "s.json").read_text())
    m = Mesh(8, 4)
    m.load(assemble(parse_file(programs.path("row_broadcast"))))
    m.launch()
    st = m.run().stats
    f = fractions(st)
    assert np.allclose(f["busy"] * st.cycles, np.array(stats["per_pe"]["busy"]))
    assert np.allclose(f["busy"] + f["stalled"] + f["idle"], 1.0)
    bad = cli("run", programs.path("vector_add"), "--heatmap", tmp_path / "no" / "h.png")
    assert bad.exit_code == 2 and "does not exist" in bad.output
