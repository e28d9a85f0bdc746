"""Fuzzing the host side: the Mesh API (constructor, overrides, load, memcpy both ways, run
with odd limits), the `wse-emu` command line (odd meshes, --set, paths, missing files) and
the debugger (random command sequences). Every call either works or fails with one of the
documented exceptions / exit codes and a message; nothing raises anything else, nothing
hangs (each example runs under an alarm), and a safe copy in reads back what went in."""

import contextlib
import io
import signal
import tempfile
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from fuzzkit import fuzz_settings, outcome
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from wse_emu import AsmError, Mesh, RunError, programs
from wse_emu.cli import main
from wse_emu.debug import Session
from wse_emu.debug.repl import ALIASES, INFO_TOPICS, Debugger, run_commands

TIMEOUT_S = 30


class Hang(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds=TIMEOUT_S):
    """Raise Hang if the block takes longer than seconds (the engine returns to Python
    between batches, so a runaway run is caught too)."""

    def alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------- the host API

TYPED = """.program main
.data a {dt}[3, 2]
.data c f32[4]
main:
    halt
"""
DTYPES = ("f16", "bf16", "f32", "i16", "i8", "i32")
CLEAN = (ValueError, TypeError, KeyError, RunError, AsmError, RuntimeError)

odd_ints = st.one_of(
    st.integers(-3, 4),
    st.sampled_from([None, 2**63, -(2**70), 10**5]),
    st.sampled_from(["1", 1.5, True, float("nan"), [1]]),
)
arrays = hnp.arrays(
    dtype=st.sampled_from(
        [np.int8, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_, np.uint16]
    ),
    shape=st.one_of(
        st.integers(0, 30), st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 6))
    ),
)
values = st.one_of(
    arrays,
    st.none(),
    st.text(max_size=4),
    st.lists(st.one_of(st.integers(-(2**40), 2**40), st.floats()), max_size=30),
    st.lists(st.lists(st.integers(-2, 2), max_size=3), max_size=4),
    st.integers(),
)
cost_keys = st.sampled_from(
    [
        "hop_latency",
        "queue_depth",
        "fp16_basic",
        "int8",
        "scalar",
        "lag_window",
        "colors",
        "sram_bytes",
        "clock_mhz",
        "warp",
    ]
)
overrides = st.one_of(
    st.none(),
    st.dictionaries(
        cost_keys, st.one_of(st.integers(-5, 300), st.integers(), st.just("3")), max_size=2
    ),
)
mesh_sizes = st.one_of(
    st.tuples(st.integers(1, 3), st.integers(1, 3)),
    # 10**9 x 2 PEs: too big for any machine's memory (since state is sized by use, 10**6
    # x 2 fits in a few GB and would really load and run)
    st.tuples(st.sampled_from([0, -1, 10**9, "2", 2.5, None, True]), st.integers(1, 2)),
)
actions = st.lists(
    st.one_of(
        st.tuples(
            st.just("h2d"),
            st.sampled_from(["a", "c", "zz", None, 3]),
            values,
            st.tuples(odd_ints, odd_ints, odd_ints, odd_ints),
            st.sampled_from(["safe", "unsafe", "bogus"]),
        ),
        st.tuples(
            st.just("d2h"),
            st.sampled_from(["a", "c", "zz", None]),
            st.tuples(odd_ints, odd_ints, odd_ints, odd_ints),
        ),
        st.tuples(st.just("launch")),
        st.tuples(st.just("run"), st.one_of(odd_ints, st.integers(1, 10**6)), odd_ints),
        st.tuples(st.just("load"), st.sampled_from(DTYPES + ("junk", "none", "vector_add"))),
    ),
    max_size=8,
)


def _act(m: Mesh, action):
    kind = action[0]
    if kind == "h2d":
        _, sym, data, (x0, y0, w, h), cast = action
        m.memcpy_h2d(sym, data, x0 or 0, y0 or 0, w, h, cast=cast)
        if cast == "safe" and isinstance(data, np.ndarray) and data.dtype.kind in "biu":
            back = m.memcpy_d2h(sym, x0 or 0, y0 or 0, w, h)
            if back.dtype.kind == "i":  # a safe integer copy reads back exactly
                assert np.array_equal(back.ravel(), data.ravel().astype(np.int64)), (data, back)
    elif kind == "d2h":
        _, sym, (x0, y0, w, h) = action
        m.memcpy_d2h(sym, x0 or 0, y0 or 0, w, h)
    elif kind == "launch":
        m.launch()
    elif kind == "run":
        _, max_cycles, batch = action
        m.run(max_cycles=max_cycles, batch=batch if batch is not None else 1000)
    else:
        what = action[1]
        if what == "vector_add":
            m.load(programs.path("vector_add"))
        elif what == "junk":
            m.load("main:\n  frobnicate r1\n")
        elif what == "none":
            m.load(None)
        else:
            m.load(TYPED.format(dt=what))


@fuzz_settings(200)
@given(
    size=mesh_sizes, over=overrides, first=st.sampled_from(DTYPES + ("vector_add",)), steps=actions
)
def test_fuzz_host_api(size, over, first, steps):
    with deadline():
        try:
            m = Mesh(*size, overrides=over)
            _act(m, ("load", first))
        except CLEAN as e:
            assert str(e), type(e)
            outcome("host.setup_error")
            return
        for action in steps:
            try:
                _act(m, action)
                outcome("host.ok")
            except CLEAN as e:
                assert str(e).strip(), type(e)
                outcome("host.error")


# ---------------------------------------------------------------- the command line


def _paths(tmp):
    """Files a user might pass: good, missing, in a missing directory, a directory."""
    good = tmp / "a.npy"
    np.save(good, np.arange(64, dtype=np.float16))
    (tmp / "wrong.npy").write_bytes(b"not numpy")
    prog = tmp / "p.wsa"
    prog.write_text("main:\n    recv r1, 1\n    halt\n")
    return {
        "good": str(good),
        "wrong": str(tmp / "wrong.npy"),
        "missing": str(tmp / "missing.npy"),
        "nodir": str(tmp / "no" / "dir" / "x.npy"),
        "dir": str(tmp),
        "out": str(tmp / "out.npy"),
        "prog": str(prog),
    }


PROGS = ["vector_add", "prog", "missing", "dir"]
OPTIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("--mesh"),
            st.sampled_from(["1x1", "2x1", "0x1", "-1x2", "axb", "99999x99999", "1x1x1", "", "2"]),
        ),
        st.tuples(
            st.just("--set"),
            st.sampled_from(
                [
                    "hop_latency=2",
                    "queue_depth=0",
                    f"scalar={2**70}",
                    "colors=x",
                    "=",
                    "nope=1",
                    "lag_window=-3",
                ]
            ),
        ),
        st.tuples(
            st.just("--in"),
            st.sampled_from(["a", "b", "zz", ""]),
            st.sampled_from(["good", "wrong", "missing", "dir"]),
        ),
        st.tuples(
            st.just("--out"), st.sampled_from(["c", "zz"]), st.sampled_from(["out", "nodir", "dir"])
        ),
        st.tuples(st.just("--json"), st.sampled_from(["out", "nodir", "dir"])),
        st.tuples(
            st.just("--max-cycles"), st.sampled_from(["0", "-1", "10", "x", "2e3", str(2**70)])
        ),
        st.tuples(st.just("--arch"), st.sampled_from(["wse2", "wse9"])),
    ),
    max_size=4,
)


def _argv(command, prog, options, paths):
    argv = [command]
    if command in ("run", "asm", "debug"):
        argv.append(str(programs.path(prog)) if prog == "vector_add" else paths[prog])
    for opt in options:
        name = opt[0]
        if command != "run" and name in ("--out", "--json", "--max-cycles"):
            continue
        if command in ("info", "disasm") and name != "--set":
            continue
        if name in ("--in", "--out"):
            argv += [name, f"{opt[1]}={paths[opt[2]]}"]
        elif name == "--json":
            argv += [name, paths[opt[1]]]
        else:
            argv += [name, opt[1]]
    if command == "disasm":
        argv.append(paths[prog] if prog != "vector_add" else paths["wrong"])
    if command == "debug":
        argv.append("--batch")
    return argv


@fuzz_settings(100)
@given(
    command=st.sampled_from(["run", "run", "asm", "info", "disasm", "debug"]),
    prog=st.sampled_from(PROGS),
    options=OPTIONS,
)
def test_fuzz_cli(command, prog, options):
    with tempfile.TemporaryDirectory() as tmp:
        _cli_example(command, prog, options, _paths(Path(tmp)))


def _cli_example(command, prog, options, paths):
    argv = _argv(command, prog, options, paths)
    with deadline():
        r = CliRunner().invoke(main, argv, input="status\ncontinue\nquit\n")
    assert r.exception is None or isinstance(r.exception, SystemExit), (argv, r.exception)
    assert "Traceback" not in r.output and "internal error" not in r.output, (argv, r.output)
    assert r.exit_code in (0, 2, 3, 4), (argv, r.exit_code, r.output)
    if r.exit_code:
        assert r.output.strip(), argv  # an error says something
    outcome(
        {0: "cli.ok", 2: "cli.usage_error", 3: "cli.runtime_error", 4: "cli.unfinished"}[
            r.exit_code
        ]
    )


# ---------------------------------------------------------------- the debugger

COMMANDS = sorted(
    {name[3:] for name in dir(Debugger) if name.startswith("do_") and name != "do_EOF"}
    | set(ALIASES)
)
ARGS = st.one_of(
    st.just(""),
    st.sampled_from(
        [
            "1",
            "0",
            "-1",
            "3",
            "99999999999999999999",
            "x",
            "1,0",
            "0,0",
            "7,7",
            "main",
            "column",
            "y[0]",
            "y[0:2]",
            "y[9999]",
            "*3",
            "*99999",
            "color 0 at 1,0",
            "color 99 at 0,0",
            "link 0,0 east",
            "link 0,0 up",
            "column tile 1,0 if r1 == 1",
            "main if r99 >",
            "/4f16 y",
            "/2x 0",
            "/3q y",
            "/999999f32 0",
        ]
        + list(INFO_TOPICS)
    ),
    st.text(alphabet="0123456789 ,xy[]:*/-if=r", max_size=8),
)


@fuzz_settings(60)
@given(lines=st.lists(st.tuples(st.sampled_from(COMMANDS), ARGS), max_size=8))
def test_fuzz_debugger(lines):
    m = Mesh(4, 1)
    m.load(programs.path("gemv"))
    m.launch()
    session = Session(m)
    out = io.StringIO()
    script = [
        f"{c}{a}" if a.startswith("/") else f"{c} {a}" for c, a in lines if c not in ("quit", "q")
    ]
    with deadline():
        run_commands(session, script, out)
    text = out.getvalue()
    assert "internal error" not in text and "Traceback" not in text, text
    outcome("debug.ok")
