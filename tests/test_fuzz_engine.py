"""Engine fuzzing: valid random programs, generated from the instruction table, run in a
worker subprocess (a crash or hang kills only the worker, and is a finding).

Every program must end in one of: done, a located fault (PE (x,y), pc and source line),
a deadlock report or the cycle limit; give the same status, cycles and output bits when
run again; the same status, bits and cycles under another lag window and batch size (a
third of the colors merge several senders into one queue, where only time order keeps
that true); and leave untouched the SRAM of every PE where no program is placed."""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
import sys

from fuzzkit import fuzz_settings, outcome
from hypothesis import given
from hypothesis import strategies as st

from wse_emu import isa
from wse_emu.asm.assembler import ASYNC_TARGETS

TIMEOUT = 60.0  # seconds for one program (its four runs)
WARMUP = 900.0  # seconds for a new worker to compile the engine (or load it from the cache)
MAX_CYCLES = 20_000
COLORS = 4
N_LABELS = 3
SYMBOLS = (("fa", "f32", 8), ("ha", "f16", 16), ("ia", "i16", 16), ("ba", "i8", 16))
REGS = [f"r{i}" for i in range(isa.N_REGS)]
SPECIALS = [f"%{s}" for s in isa.SPECIALS]
LOCATED = re.compile(r"PE \(\d+,\d+\) pc \d+ \(\S+:\d+: \S")

# ---------------------------------------------------------------- program generation


def _int(draw):
    return draw(st.one_of(st.integers(-4, 40), st.sampled_from([-1 << 31, 65535, 1 << 20])))


def _operand(draw, kind, labels, tasks):
    if kind == "rd":
        return draw(st.sampled_from(REGS))
    if kind == "rs":
        return draw(st.sampled_from(REGS + SPECIALS))
    if kind == "dim":
        return str(draw(st.integers(1, 3)))
    if kind in ("ri", "rv", "len"):
        choice = draw(st.integers(0, 3))
        if choice == 0:
            return draw(st.sampled_from(REGS + SPECIALS))
        if choice == 1 and kind == "rv":
            return repr(draw(st.floats(-100, 100, allow_nan=False, width=32)))
        if choice == 2:
            return draw(st.sampled_from([s[0] for s in SYMBOLS]))  # an address as a value
        return str(_int(draw))
    if kind == "imm":
        return str(_int(draw))
    if kind == "dsd":
        return f"d{draw(st.integers(0, 3))}"
    if kind == "addr":
        sym = draw(st.sampled_from([s[0] for s in SYMBOLS]))
        off = draw(st.sampled_from([0, 0, 2, 4, 1, -4, 50000]))
        if draw(st.booleans()):
            return f"[{draw(st.sampled_from(REGS))} + {sym} + {off}]"
        return f"[{sym} + {off}]"
    if kind == "color":
        return str(draw(st.integers(0, COLORS - 1)))
    if kind == "label":
        return draw(st.sampled_from(labels))
    if kind == "task":
        return draw(st.sampled_from(tasks))
    if kind == "ut":
        return str(draw(st.integers(0, 7)))
    if kind == "ctl":
        return draw(st.sampled_from(isa.CONTROL_ACTIONS))
    if kind == "ctlid":
        return draw(st.sampled_from(["1", "1", "0"]))  # 1: task t2; 0: no such task
    raise AssertionError(f"no generator for operand kind {kind!r}")


def _instruction(draw, labels, tasks, rows=None):
    rows = rows or [r for r in isa.table() if r.mnemonic != "halt"]
    row = draw(st.sampled_from(rows))
    name = row.mnemonic
    if row.dtypes:
        name += "." + draw(st.sampled_from([d for d in row.dtypes if d != "i8"] or row.dtypes))
    if row.dtypes2:
        name += "." + draw(st.sampled_from(row.dtypes2))
    ops = []
    for op in row.operands:
        if op.default is not None and draw(st.booleans()):
            break
        if row.mnemonic == "dmem" and op.kind == "addr":
            ops.append(draw(st.sampled_from([s[0] for s in SYMBOLS])))
            continue
        ops.append(_operand(draw, op.kind, labels, tasks))
    text = f"{name} {', '.join(ops)}".strip()
    if row.sem == "async":  # mostly followed by a vector op it can run
        ops = [r for r in isa.table() if r.sem in ASYNC_TARGETS]
        text += "\n    " + _instruction(
            draw, labels, tasks, ops if draw(st.integers(0, 5)) else None
        )
    return text


_DSD_SETUP = [f"dmem d{{d}}, {name}, {n}" for name, _, n in SYMBOLS] + [
    "dmem d{d}, ha, 4, 2",
    "dmem d{d}, ia + 30, 8, -2",
    "dfin d{d}, 0, 4",
    "dfout d{d}, 1, 4",
    "nop",
]


@st.composite
def programs(draw):
    """(source, width, height): one or two programs on a 1-4 PE mesh with random routes,
    some of them merging the streams of every neighbour (and the tile itself) into one
    tile's queue."""
    width, height = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    n_prog = draw(st.integers(1, 2))
    lines = []
    for k in range(n_prog):
        lines.append(f".program p{k}")
        for name, dt, n in SYMBOLS:
            lines.append(f".data {name} {dt}[{n}]")
        tasks = ["t0", "t1", "t2"]
        labels = [f"L{i}" for i in range(N_LABELS)]
        body = [_instruction(draw, labels, tasks) for _ in range(draw(st.integers(1, 12)))]
        body.append(draw(st.sampled_from(["halt", "ret", "jmp L0", "nop", "call L2"])))
        spots = [draw(st.integers(0, len(body) - 1)) for _ in labels]
        lines.append("main:")
        for d in range(4):  # most DSDs set up, so that vector ops run
            lines.append("    " + draw(st.sampled_from(_DSD_SETUP)).format(d=d))
        for i, text in enumerate(body):
            lines += [f"{labels[j]}:" for j, s in enumerate(spots) if s == i]
            lines.append("    " + text)
        color = draw(st.integers(0, COLORS - 1))
        lines.append(f".task t0 color {color}")
        for _ in range(draw(st.integers(1, 4))):
            lines.append("    " + _instruction(draw, ["L0"], tasks))
        lines.append("    " + draw(st.sampled_from(["halt", "ret"])))
        lines.append(".task t1")
        lines.append("    " + draw(st.sampled_from(["halt", "ret", "jmp L1"])))
        lines.append(".task t2 control 1")  # started by sendctl C, ACTION, 1
        lines.append("    " + _instruction(draw, ["L0"], tasks))
        lines.append("    " + draw(st.sampled_from(["halt", "ret"])))
    lines.append(".layout")
    cells = [(x, y) for y in range(height) for x in range(width)]
    for x, y in cells:
        k = draw(st.integers(-1, n_prog - 1))  # -1: nothing placed here
        if k >= 0:
            lines.append(f".place p{k} at {x}, {y} size 1, 1")
    dirs = {"east": (1, 0), "west": (-1, 0), "south": (0, 1), "north": (0, -1)}
    back = {"east": "west", "west": "east", "south": "north", "north": "south"}
    for c in range(COLORS):
        x, y = draw(st.sampled_from(cells))
        feeders = [d for d in sorted(dirs) if (x - dirs[d][0], y - dirs[d][1]) in cells]
        if len(feeders) > 0 and draw(st.integers(0, 2)) == 0:  # several senders, one queue
            rx = [back[d] for d in feeders]
            for d in feeders:
                lines.append(
                    f".route {c} at {x - dirs[d][0]}, {y - dirs[d][1]} size 1, 1 rx ramp tx {d}"
                )
            if draw(st.booleans()):  # the receiving tile sends to itself too
                rx.append("ramp")
            lines.append(f".route {c} at {x}, {y} size 1, 1 rx {', '.join(rx)} tx ramp")
            continue
        d = draw(st.sampled_from(sorted(dirs)))
        nx, ny = x + dirs[d][0], y + dirs[d][1]
        if 0 <= nx < width and 0 <= ny < height:
            lines.append(f".route {c} at {x}, {y} size 1, 1 rx ramp tx {d}")
            lines.append(f".route {c} at {nx}, {ny} size 1, 1 rx {back[d]} tx ramp")
        else:
            lines.append(f".route {c} at {x}, {y} size 1, 1 rx ramp tx ramp")
    return "\n".join(lines) + "\n", width, height


_PACE = ["nop", "add r5, r5, 1", "mov r6, %cycle", "mul r7, r5, 3", "ld.i32 r8, [ia]"]


@st.composite
def merge_programs(draw):
    """(source, width, height): two or three senders, each a loop of sends at its own
    random pace, merged into one queue of a sink that stores what arrives in arrival
    order (by recv, or by a data task per sender color); every payload carries the cycle
    it was sent at, so the sink's record shows any change of timing or order."""
    width, height, sink, feeders = draw(
        st.sampled_from(
            [
                (3, 1, (1, 0), ["east", "west"]),
                (2, 2, (1, 1), ["south", "east"]),
                (3, 2, (1, 1), ["east", "west", "south"]),
            ]
        )
    )
    dirs = {"east": (1, 0), "west": (-1, 0), "south": (0, 1), "north": (0, -1)}
    back = {"east": "west", "west": "east", "south": "north", "north": "south"}
    tasks = draw(st.booleans())  # a data task per sender color instead of one merged queue
    n = 0
    lines = [".program sink", ".data got i32[64]", ".data at i32[1]"]
    lines += ["main:", "    mov r2, 0", "    st.i32 [at], r2"]  # SRAM starts random
    lines += ["    ret"] if tasks else ["loop:", "    recv r0, 0", "    call keep", "    jmp loop"]
    lines += ["keep:", "    ld.i32 r2, [at]", "    st.i32 [r2 + got], r0", "    add r2, r2, 4"]
    lines += ["    st.i32 [at], r2", "    ret"]
    layout = [".layout", f".place sink at {sink[0]}, {sink[1]} size 1, 1"]
    senders = []
    for k, d in enumerate(feeders):
        color = k if tasks else 0
        if tasks:
            lines += [f".task t{k} color {color}", "    call keep", "    ret"]
        count = draw(st.integers(1, 12))
        n += count
        pace = [draw(st.sampled_from(_PACE)) for _ in range(draw(st.integers(0, 4)))]
        senders += [f".program s{k}", ".data ia i32[1]", "main:", "    mov r2, 0", "loop:"]
        senders += ["    mov r1, %cycle", "    shl r1, r1, 2", f"    add r1, r1, {k}"]
        senders += [f"    send {color}, r1"] + ["    " + p for p in pace]
        senders += ["    add r2, r2, 1", f"    blt r2, {count}, loop", "    halt"]
        x, y = sink[0] - dirs[d][0], sink[1] - dirs[d][1]
        layout.append(f".place s{k} at {x}, {y} size 1, 1")
        layout.append(f".route {color} at {x}, {y} size 1, 1 rx ramp tx {d}")
        if tasks:
            layout.append(f".route {color} at {sink[0]}, {sink[1]} size 1, 1 rx {back[d]} tx ramp")
    if not tasks:
        rx = ", ".join(back[d] for d in feeders)
        layout.append(f".route 0 at {sink[0]}, {sink[1]} size 1, 1 rx {rx} tx ramp")
    # the sink halts after the last wavelet (a recv loop would wait for more: deadlock)
    end = lines.index("keep:") + 5  # after keep's st.i32 [at], r2
    lines[end:end] = [
        f"    blt r2, {4 * n}, more",
        "    halt",
        "more:",
    ]
    return "\n".join(lines + senders + layout) + "\n", width, height


# ---------------------------------------------------------------- the worker process


def _run_once(source, width, height, lag, batch):
    import numpy as np

    from wse_emu import Mesh
    from wse_emu.asm import AsmError
    from wse_emu.runtime import RunError

    mesh = Mesh(width, height, overrides={"lag_window": lag})
    try:
        linked = mesh.load(source)
    except (AsmError, RunError) as e:
        return {"status": "load-error", "report": str(e)}
    rng = np.random.default_rng(0)
    mesh.state.sram8[linked.pe_image >= 0] = rng.integers(
        0, 256, mesh.state.sram8[linked.pe_image >= 0].shape, dtype=np.uint8
    )
    mesh.launch()
    result = mesh.run(max_cycles=MAX_CYCLES, check=False, batch=batch)
    sram = mesh.state.sram8
    unplaced = linked.pe_image < 0
    inside = True  # every PE's pc within its own image
    for p, i in enumerate(linked.pe_image):
        if i >= 0:
            image = linked.images[i]
            inside &= image.base <= mesh.state.pe[p, 0] < image.base + len(image.code)
    return {
        "status": result.status,
        "report": result.report,
        "cycles": int(result.cycles),
        "bits": sram.tobytes().hex(),
        "unplaced_clean": bool((sram[unplaced] == 0).all()),
        "pc_inside": bool(inside),
    }


def worker():
    """Compile the engine, say so, then read one JSON request a line and answer each with
    the results of its runs."""
    _run_once("main:\n    halt\n", 1, 1, 256, 100)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        req = json.loads(line)
        runs = [_run_once(req["source"], req["w"], req["h"], *run) for run in req["runs"]]
        sys.stdout.write(json.dumps(runs) + "\n")
        sys.stdout.flush()


class Worker:
    """A persistent worker process, restarted after it dies or hangs."""

    proc = None

    @classmethod
    def _start(cls):
        cls.proc = subprocess.Popen(
            [sys.executable, "-c", "import test_fuzz_engine as t; t.worker()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=os.path.dirname(os.path.abspath(__file__)),
        )
        if cls._answer(WARMUP) != "ready\n":
            raise RuntimeError("the engine worker did not start")

    @classmethod
    def _answer(cls, timeout) -> str | None:
        """The worker's next line, or None when it hung (then it is killed) or died."""
        proc = cls.proc
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            proc.kill()
        line = proc.stdout.readline() if proc.poll() is None else ""
        if not line:
            proc.wait()
            cls.proc = None
            return None
        return line

    @classmethod
    def ask(cls, req) -> list | str:
        if cls.proc is None or cls.proc.poll() is not None:
            cls._start()
        cls.proc.stdin.write(json.dumps(req) + "\n")
        cls.proc.stdin.flush()
        proc = cls.proc
        line = cls._answer(TIMEOUT)
        if line is None:
            return "hang" if proc.returncode == -9 else f"crash (exit status {proc.returncode})"
        return json.loads(line)


RUNS = [(256, 5_000_000), (256, 5_000_000), (1, 7), (3, 1)]


def check_program(source, width, height):
    runs = Worker.ask({"source": source, "w": width, "h": height, "runs": RUNS})
    assert not isinstance(runs, str), f"engine {runs} on:\n{source}"
    first = runs[0]
    status = first["status"]
    if status == "load-error":
        outcome("engine.load_error")
        return
    outcome(
        {
            "done": "engine.done",
            "fault": "engine.fault",
            "deadlock": "engine.deadlock",
            "cycle-limit": "engine.cycle_limit",
        }[status]
    )
    if status == "fault":
        assert LOCATED.search(first["report"]), first["report"]
        assert "runtime fault at" in first["report"]
    elif status == "deadlock":
        assert first["report"].startswith("deadlock:"), first["report"]
    for r in runs:
        assert r["pc_inside"], f"a PE's pc left its program:\n{source}"
        assert r["unplaced_clean"], f"a PE with no program had its SRAM changed:\n{source}"
    again = runs[1]
    assert (again["status"], again["cycles"], again["bits"]) == (
        status,
        first["cycles"],
        first["bits"],
    ), f"rerun differs:\n{source}"
    if status in ("done", "deadlock"):  # a fault stops the others wherever they are
        for r in runs[2:]:
            assert r["status"] == status, f"lag/batch changed the status:\n{source}"
            assert r["bits"] == first["bits"], f"lag/batch changed the results:\n{source}"
            assert r["cycles"] == first["cycles"], f"lag/batch changed the cycles:\n{source}"


@fuzz_settings(150)
@given(programs())
def test_fuzz_engine_programs(prog):
    check_program(*prog)


@fuzz_settings(40)
@given(merge_programs())
def test_fuzz_engine_merges(prog):
    check_program(*prog)
