"""The `wse-emu` command line: asm, disasm, run, info, isa."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
import time
from pathlib import Path

import click
import numpy as np

from . import isa
from .arch import ARCHS, ArchError, ArchProfile
from .asm import AsmError, assemble, declared_mesh, parse_file
from .asm.disasm import DisasmError, disassemble, disassemble_binary, encoding_hex
from .host import peak_rss_bytes
from .memory import MeshSizeError, check_memory
from .paths import unwritable
from .progress import COMPILE_NOTE, RunProgress, engine_is_cold
from .runtime import Mesh, RunError, parse_mesh
from .stats import run_record, version
from .trace import (
    DEFAULT_MAX_EVENTS,
    TraceError,
    TraceOptions,
    parse_rect,
    parse_window,
)

EXIT_USAGE = 2  # bad input: program, arguments, files
EXIT_RUNTIME = 3  # the program faulted, deadlocked or hit the cycle limit


def _fail(message: str, code: int = EXIT_USAGE):
    click.echo(message, err=True)
    sys.exit(code)


def _mesh_option(f):
    return click.option(
        "--mesh",
        default=None,
        metavar="WxH",
        help="mesh size in PEs, width x height [default: the program's .mesh, else 1x1]",
    )(f)


def _arch_option(f):
    return click.option(
        "--arch",
        type=click.Choice(ARCHS),
        default=isa.costs()["default_arch"],
        show_default=True,
        help="arch profile (cost table column)",
    )(f)


def _set_option(f):
    return click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="override a cost-table parameter, e.g. --set hop_latency=2 (see `wse-emu info`)",
    )(f)


def _const_option(f):
    return click.option(
        "--const",
        "consts",
        multiple=True,
        metavar="NAME=VALUE",
        help="override a .const of the program, e.g. --const N=64",
    )(f)


def _parse_consts(items) -> dict:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            _fail(f"error: --const wants NAME=VALUE, got {item!r}")
        try:
            out[name] = int(value, 0)
        except ValueError:
            try:
                out[name] = float(value)
            except ValueError:
                _fail(f"error: --const {name}: value must be a number, got {value!r}")
    return out


def _parse_overrides(items) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            _fail(f"error: --set wants KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = int(value)
        except ValueError:
            _fail(f"error: --set {key}: value must be an integer, got {value!r}")
    return out


def _profile(arch: str, overrides) -> ArchProfile:
    try:
        return ArchProfile(arch, _parse_overrides(overrides))
    except ArchError as e:
        _fail(f"error: {e}")


@contextlib.contextmanager
def _mesh_checked():
    """A mesh refused for its size or memory, anywhere inside, is a --mesh usage error."""
    try:
        yield
    except MeshSizeError as e:
        _fail(f"error: --mesh: {e}")


def _mesh_size(text: str, profile: ArchProfile | None = None):
    """WxH from --mesh; with a profile, also refuse a mesh whose state cannot fit in memory."""
    with _mesh_checked():
        w, h = parse_mesh(text)
        if profile is not None:
            check_memory(w, h, profile)
        return w, h


def _writable(path: str | None, option: str):
    """Refuse, before any work, an output path whose directory is missing or read-only."""
    problem = unwritable(path) if path else None
    if problem:
        _fail(f"error: {option} {problem}")


def _link(prog: str, mesh: str | None, profile: ArchProfile, consts=()):
    """Parse and link prog on --mesh, or on the mesh its .mesh declares (else 1x1), with the
    --const overrides."""
    values = _parse_consts(consts)
    try:
        pset = parse_file(prog)
        if mesh is None:
            w, h = declared_mesh(pset, values) or (1, 1)
            with _mesh_checked():
                check_memory(w, h, profile)
        else:
            w, h = _mesh_size(mesh, profile)
        with _mesh_checked():
            return assemble(pset, w, h, profile, consts=values)
    except AsmError as e:
        _fail(str(e))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="wse-emu")
def main():
    """wse-emu: a functional, cycle-approximate emulator of the Cerebras Wafer-Scale Engine."""


@main.command()
@click.argument("prog", type=click.Path(dir_okay=False))
@_mesh_option
@_arch_option
@_set_option
@_const_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="write the linked binary (.npz) for `wse-emu disasm`",
)
def asm(prog, mesh, arch, overrides, consts, output):
    """Check a program and print its listing: addresses, encodings, source lines."""
    _writable(output, "--output")
    linked = _link(prog, mesh, _profile(arch, overrides), consts)
    for image in linked.images:
        regions = [
            f"{r.x},{r.y} size {r.w},{r.h}"
            for r in linked.regions
            if linked.images[r.image] is image
        ]
        params = ", ".join(f"{k}={v}" for k, v in image.params.items()) or "none"
        click.echo(f"program {image.program} (params: {params}) at {'; '.join(regions)}")
        click.echo(f"  data {image.data_bytes} B, code {len(image.code)} instructions")
        for s in image.symbols.values():
            click.echo(f"  symbol {s.name:<12} @{s.addr:<6} {s.dtype}{list(s.shape)} {s.nbytes} B")
        names = {pc: n for n, pc in image.labels.items()}
        tasks = [t[0] for t in image.tasks]
        for i, word in enumerate(image.code):
            pc = image.base + i
            label = f"{names[pc]}:" if pc in names else ""
            if label:
                click.echo(f"{'':>6}  {label}")
            click.echo(
                f"{pc:>6}  {encoding_hex(word)}  {disassemble(word, names, tasks):<36}"
                f" ; {linked.where(pc).removeprefix(linked.filename + ':')}"
            )
    if output:
        np.savez(
            output,
            code=linked.code,
            bases=np.array([im.base for im in linked.images], np.int64),
            names=np.array([im.program for im in linked.images]),
        )
        click.echo(f"wrote {output}")


@main.command()
@click.argument("binary", type=click.Path(exists=True, dir_okay=False))
def disasm(binary):
    """Disassemble a linked binary written by `wse-emu asm -o`."""
    try:
        data = np.load(binary)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        code, bases, names = data["code"], data["bases"], data["names"]
    except (OSError, KeyError, ValueError, EOFError) as e:
        _fail(f"error: {binary}: not a wse-emu binary ({e})")
    try:
        listing = disassemble_binary(code, bases, names)
    except DisasmError as e:
        _fail(f"error: {binary}: not a wse-emu binary ({e})")
    for line in listing:
        click.echo(line)


def _parse_binding(text: str, what: str):
    sym, sep, path = text.partition("=")
    if not sep or not sym or not path:
        _fail(f"error: {what} wants SYMBOL=FILE.npy, got {text!r}")
    return sym, path


def _symbol_rect(linked, sym: str):
    """Bounding box of the PEs whose program has sym; every PE in it must have it."""
    has = np.array([img >= 0 and sym in linked.images[img].symbols for img in linked.pe_image])
    if not has.any():
        names = sorted({s for im in linked.images for s in im.symbols})
        _fail(f"error: no program has a symbol {sym!r}; symbols: {', '.join(names)}")
    grid = has.reshape(linked.height, linked.width)
    ys, xs = np.nonzero(grid)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    if not grid[y0:y1, x0:x1].all():
        _fail(f"error: the PEs with symbol {sym!r} do not form a rectangle")
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def _inputs_option(f):
    return click.option(
        "--in",
        "inputs",
        multiple=True,
        metavar="SYM=FILE.npy",
        help="copy an array into a symbol before the run (shape (h, w, *shape) or flat)",
    )(f)


def _program_options(f):
    """PROG and what places and fills it: --mesh, --arch, --set, --const, --in."""
    for option in (_inputs_option, _const_option, _set_option, _arch_option, _mesh_option):
        f = option(f)
    return click.argument("prog", type=click.Path(dir_okay=False))(f)


def _compile_note(quiet: bool = False):
    """Say so before the engine compiles: the first run would otherwise sit silent."""
    if not quiet and engine_is_cold():
        click.echo(COMPILE_NOTE, err=True)


def _prepare(prog, mesh, arch, overrides, consts, inputs, quiet=False):
    """Link, load and fill a mesh from the command line: (linked program, mesh, profile)."""
    profile = _profile(arch, overrides)
    linked = _link(prog, mesh, profile, consts)
    _compile_note(quiet)
    with _mesh_checked():
        m = Mesh(linked.width, linked.height, profile)
        try:
            m.load(linked)
        except RunError as e:
            _fail(f"{prog}: {e}")
    for warning in m.route_warnings:
        click.echo(f"{prog}: warning: {warning}", err=True)
    for binding in inputs:
        sym, path = _parse_binding(binding, "--in")
        try:
            arr = np.load(path)
        except (OSError, ValueError) as e:
            _fail(f"error: --in {sym}: cannot read {path}: {e}")
        x0, y0, w, h = _symbol_rect(linked, sym)
        try:
            m.memcpy_h2d(sym, arr, x0, y0, w, h)
        except (ValueError, KeyError, TypeError) as e:
            _fail(f"error: --in {sym}: {e}")
    m.launch()
    return linked, m, profile


TRACE_FLAGS = (  # (name, dest, extra click.option arguments, help)
    ("--trace", "trace_path", dict(type=click.Path(dir_okay=False), metavar="FILE.json"),
     "write a timeline of the run (Chrome trace-event JSON) for https://ui.perfetto.dev"),
    ("--trace-pes", "trace_pes", dict(metavar="X,Y,WxH"),
     "trace only this rectangle of PEs (X,Y alone: one PE) [default: all]"),
    ("--trace-cycles", "trace_cycles", dict(metavar="A:B"),
     "trace only cycles A to B (an end may be left out) [default: the whole run]"),
    ("--trace-max-events", "trace_max_events",
     dict(type=click.IntRange(1), default=DEFAULT_MAX_EVENTS, show_default=True),
     "stop recording after this many events (the run goes on; a message says where)"),
)  # fmt: skip


def _trace_flags(f):
    """--trace and its filters (see trace.py)."""
    for name, dest, extra, text in reversed(TRACE_FLAGS):
        f = click.option(name, dest, help=text, **extra)(f)
    return f


@main.command()
@_program_options
@click.option(
    "--out",
    "outputs",
    multiple=True,
    metavar="SYM=FILE.npy",
    help="save a symbol after the run, as an array (h, w, *shape)",
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False), help="write the run statistics as JSON"
)
@click.option(
    "--max-cycles",
    type=click.IntRange(1, (1 << 62) - 1),
    default=None,
    help="stop the run at this cycle",
)
@click.option("--quiet", "-q", is_flag=True, help="print nothing but errors")
@click.option(
    "--heatmap",
    "heatmap_path",
    type=click.Path(dir_okay=False),
    help="draw per-PE busy / stalled / idle fractions and wavelets per link to this PNG "
    "(needs matplotlib)",
)
@click.option(
    "--post-mortem",
    is_flag=True,
    help="on a runtime fault or deadlock, open the debugger at the tile, state intact",
)
@_trace_flags
def run(
    prog,
    mesh,
    arch,
    overrides,
    consts,
    inputs,
    outputs,
    json_path,
    max_cycles,
    quiet,
    heatmap_path,
    post_mortem,
    trace_path,
    trace_pes,
    trace_cycles,
    trace_max_events,
):
    """Assemble PROG, load it onto a mesh, run it and report cycles and statistics."""
    trace = _trace_options(trace_path, trace_pes, trace_cycles, trace_max_events)
    outs = [_parse_binding(b, "--out") for b in outputs]
    # np.save appends .npy to a name without it: check and report the file it writes
    outs = [(sym, path if path.endswith(".npy") else path + ".npy") for sym, path in outs]
    _writable(json_path, "--json")
    _writable(heatmap_path, "--heatmap")
    if heatmap_path and importlib.util.find_spec("matplotlib") is None:
        _fail("error: --heatmap needs matplotlib: pip install matplotlib")
    for sym, path in outs:
        _writable(path, f"--out {sym}")
    linked, m, profile = _prepare(prog, mesh, arch, overrides, consts, inputs, quiet)
    if trace is not None and trace.pes is not None:
        try:
            parse_rect(trace.pes, linked.width, linked.height)
        except TraceError as e:
            _fail(f"error: --trace-pes: {e}")
    rects = {sym: _symbol_rect(linked, sym) for sym, _ in outs}
    for sym, rect in rects.items():  # copies that would fail after the run fail now
        try:
            m.memcpy_d2h(sym, *rect)
        except ValueError as e:
            _fail(f"error: --out {sym}: {e}")
    progress = RunProgress(sys.stderr) if not quiet and sys.stderr.isatty() else None
    started = time.perf_counter()
    try:
        result = m.run(max_cycles=max_cycles, check=False, progress=progress, trace=trace)
    except KeyboardInterrupt:
        if progress:
            progress.close()
        stats = m.stats()
        click.echo(f"{prog}: interrupted at cycle {stats.cycles}", err=True)
        click.echo(stats.summary(), err=True)
        sys.exit(130)
    host = {"host_seconds": time.perf_counter() - started, "peak_rss_bytes": peak_rss_bytes()}
    if progress:
        progress.close()
    saved = {}
    for sym, path in outs:
        x0, y0, w, h = rects[sym]
        arr = m.memcpy_d2h(sym, x0, y0, w, h)
        np.save(path, arr)
        saved[sym] = {"path": path, "origin": [x0, y0], "shape": list(arr.shape)}
    if heatmap_path:
        result.stats.heatmap(heatmap_path, f"{prog} on {profile.name}: {result.status}")
    if result.trace is not None and (not quiet or result.trace.cut_at is not None):
        click.echo(result.trace.message(), err=True)
    if json_path:
        record = run_record(result, prog, profile, linked, max_cycles, saved, host)
        Path(json_path).write_text(json.dumps(record, indent=1))
    if not quiet:
        click.echo(f"{prog} on {linked.width}x{linked.height} {profile.name}: {result.status}")
        click.echo(result.stats.summary())
        for sym, out in saved.items():
            (x0, y0), shape = out["origin"], tuple(out["shape"])
            click.echo(f"wrote {out['path']}: {sym} of PEs from ({x0},{y0}), shape {shape}")
    if not result.ok:
        click.echo(f"{prog}: {result.report}", err=True)
        if post_mortem and result.status in ("fault", "deadlock"):
            from .debug import Session

            session = Session(m)
            session.last = result
            session._ended(result)  # focus the faulting or first blocked tile
            sys.exit(_debug_loop(session, None, batch=False, banner=True))
        sys.exit(EXIT_RUNTIME)


def _trace_options(path, pes, cycles, max_events):
    """--trace and its filters as TraceOptions (None without --trace), checked before the
    run: the path writable, the window well formed (the rectangle once the mesh is known)."""
    if path is None:
        if pes is not None or cycles is not None:
            _fail("error: --trace-pes and --trace-cycles filter a trace: give --trace FILE too")
        return None
    _writable(path, "--trace")
    if cycles is not None:
        try:
            parse_window(cycles)
        except TraceError as e:
            _fail(f"error: --trace-cycles: {e}")
    return TraceOptions(path, pes=pes, cycles=cycles, max_events=max_events)


EXIT_UNFINISHED = 4  # debug: the commands ran out before the program ended


def _program_status(session) -> int:
    status = session.program_status()
    if status == "running":
        return EXIT_UNFINISHED
    return 0 if status == "done" else EXIT_RUNTIME


def _debug_loop(session, commands, batch, banner=False) -> int:
    """Run the debugger: commands from a file, else a pipe, else the terminal."""
    from .debug.repl import Debugger, run_commands

    if commands is not None:
        try:
            lines = Path(commands).read_text().splitlines()
        except OSError as e:
            _fail(f"error: --commands: cannot read {commands}: {e.strerror}")
        run_commands(session, lines, sys.stdout, echo=not batch)
        return _program_status(session)
    if not sys.stdin.isatty():
        run_commands(session, sys.stdin.read().splitlines(), sys.stdout, echo=not batch)
        return _program_status(session)
    dbg = Debugger(session, history=True)
    if banner:
        dbg.say("post-mortem: the run stopped here; the mesh's state is intact")
    dbg.say(session.status_line())
    dbg.cmdloop()
    return _program_status(session)


@main.command()
@_program_options
@click.option("--tile", default=None, metavar="X,Y", help="the tile to focus first")
@click.option(
    "--commands",
    type=click.Path(dir_okay=False),
    help="run the debugger commands in this file, then exit with the program's status",
)
@click.option("--batch", is_flag=True, help="scripted: print no prompt or command echo")
@click.option(
    "--record",
    "record",
    is_flag=True,
    help="start recording at once, for reverse-stepi, reverse-continue and goto",
)
def debug(prog, mesh, arch, overrides, consts, inputs, tile, commands, batch, record):
    """Step-debug PROG on a mesh: breakpoints, watchpoints (memory, color, link), stepping a
    tile, inspection, and `why` for hangs. Commands follow gdb; type `help` in the session.
    Exit status when scripted: 0 the program finished, 3 it faulted or deadlocked, 4 the
    commands ended before the program did."""
    from .debug import DebugError, Session

    if commands is not None and not Path(commands).is_file():
        _fail(f"error: --commands: cannot read {commands}: no such file")
    linked, m, _ = _prepare(prog, mesh, arch, overrides, consts, inputs)
    session = Session(m)
    if tile:
        try:
            from .debug.repl import _tile

            session.set_focus(*_tile(tile))
        except DebugError as e:
            _fail(f"error: --tile: {e}")
    if record:
        session.record_start()
    sys.exit(_debug_loop(session, commands, batch))


@main.command()
@_arch_option
@click.option("--pes", default=4, show_default=True, help="PEs in the row")
@click.option("--rows", default=64, show_default=True, help="rows of A (M)")
@click.option("--cols", default=256, show_default=True, help="columns of A (K)")
@click.option("--seed", default=0, show_default=True)
def demo(arch, pes, rows, cols, seed):
    """Run GEMV (y = A x, programs/gemv.wsa) on a row of PEs and check it against NumPy."""
    from .kernels.gemv import gemv, reference

    if pes < 1 or rows < 1 or cols < 1 or cols % pes:
        _fail(f"error: need positive sizes with --cols a multiple of --pes, got {cols} and {pes}")
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((rows, cols)).astype(np.float16)
    x = rng.standard_normal(cols).astype(np.float16)
    _compile_note()
    try:
        y, result = gemv(A, x, pes, arch)
    except (AsmError, RunError) as e:
        _fail(f"error: {e}", EXIT_RUNTIME)
    exact = A.astype(np.float64) @ x.astype(np.float64)
    same = np.array_equal(y, reference(A, x, pes))
    err = float(np.max(np.abs(y - exact)))
    click.echo(f"GEMV {rows}x{cols} (fp16 in, fp32 accumulate) on {pes}x1 PEs, {arch}")
    click.echo(result.stats.summary())
    click.echo(
        f"check: bit-exact with the kernel's arithmetic in NumPy: {'yes' if same else 'NO'};"
        f" max |y - A@x (float64)| = {err:.3g}"
    )
    if not same:
        sys.exit(1)


@main.group()
def bench():
    """Benchmarks of the emulated machine."""


def _float_list(text: str, option: str = "--sparsity"):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        _fail(f"error: {option} wants numbers separated by commas, got {text!r}")
    if not values or any(not 0.0 <= v < 1.0 for v in values):
        _fail(f"error: {option} values must lie in [0, 1), got {text!r}")
    return values


@bench.command("gemm")
@click.option("--m", "m", default=256, show_default=True, help="rows of A and C")
@click.option("--k", "k", default=256, show_default=True, help="columns of A, rows of B")
@click.option("--n", "n", default=256, show_default=True, help="columns of B and C")
@click.option("--mesh", default="8x8", show_default=True, metavar="PxP", help="square mesh")
@_arch_option
@click.option(
    "--sparsity",
    default="0,0.5,0.75,0.9,0.95,0.99",
    show_default=True,
    help="fractions of zeros in A, comma separated",
)
@click.option(
    "--pattern",
    type=click.Choice(["random", "2:4", "block", "moe", "all"]),
    default="random",
    show_default=True,
    help="where A's zeros are: unstructured, 2 of every 4, 4x4 blocks, or mixture-of-experts "
    "routing (each row uses round(8 (1 - s)) of 8 expert blocks of K); all: every one of "
    "them at every sparsity, in one table (and plot) against one dense run",
)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--matrix",
    type=click.Path(exists=True, dir_okay=False),
    help="take A from a Matrix Market file (zero-padded to the mesh)",
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="write the results")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    help="draw cycles and speedup against sparsity (PNG; needs matplotlib)",
)
@click.option(
    "--compare",
    type=click.Choice(["gpu"]),
    help="print a roofline model of A100 and H100 on the same GEMMs beside the wafer's "
    "figures (and with --plot, draw it to FILE-gpu.png)",
)
@click.option(
    "--activation-sparsity",
    "activation",
    metavar="S[,S...]",
    help="instead: dynamic activation sparsity, C = ReLU(X W1 + b) B with the ReLU on the "
    "mesh and its zeros filtered by the sender; about S of the ReLU's outputs are zero; "
    "each level with the filter against the same program without it. With --pattern all: "
    "besides every static form, in one plot",
)
def bench_gemm(
    m, k, n, mesh, arch, sparsity, pattern, seed, matrix, json_path, plot_path, compare, activation
):
    """Dense (SUMMA) against sparse (dataflow) GEMM: emulated cycles, speedup, utilisation,
    MACs skipped, effective TFLOP/s at the arch clock, host seconds, and a check of C."""
    from .kernels import sweep

    w, h = _mesh_size(mesh, _profile(arch, ()))
    if w != h:
        _fail(f"error: --mesh must be square for GEMM, got {mesh}")
    _writable(json_path, "--json")
    _writable(plot_path, "--plot")
    gpu_plot = plot_path and compare and str(Path(plot_path).with_suffix("")) + "-gpu.png"
    _writable(gpu_plot, "--plot")
    levels = _float_list(sparsity)
    A = None
    if matrix:
        ctx = click.get_current_context()
        for name in ("sparsity", "pattern", "m", "k"):
            if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT:
                _fail(f"error: --{name} does not apply with --matrix (A is the matrix given)")
        try:
            A = sweep.load_matrix_market(matrix, w)
        except (OSError, ValueError) as e:
            _fail(f"error: --matrix {matrix}: {e}")
        click.echo(A.describe())
        m, k = A.padded.shape
    for name, v in (("m", m), ("k", k), ("n", n)):
        if v <= 0 or v % w:
            _fail(f"error: --{name} = {v} must be a positive multiple of the mesh side {w}")
    if pattern == "all" and compare:
        _fail("error: --compare gpu takes one --pattern, not all")
    dynamic_levels = None
    if activation is not None:
        dynamic_levels = _float_list(activation, "--activation-sparsity")
        ctx = click.get_current_context()
        alone = ("sparsity", "pattern", "matrix", "compare")
        for name in alone if pattern != "all" else ("matrix",):
            if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT:
                _fail(f"error: --{name} does not apply with --activation-sparsity")
        if pattern != "all":
            dynamic = _bench_activation(m, k, n, w, arch, seed, dynamic_levels, json_path)
            _plot(plot_path, lambda: sweep.plot_dynamic(dynamic, plot_path))
            _exit_unless_verified(dynamic)
            return
    runs = 1 + (1 if matrix else len(levels))
    label = f"{m}x{k}x{n} on {w}x{w}"
    _compile_note()
    shown = sys.stderr.isatty()  # a bar on a terminal; nothing in logs and pipes
    bar_or_nothing = (
        click.progressbar(length=runs, label=label, file=sys.stderr)
        if shown
        else contextlib.nullcontext()
    )
    with bar_or_nothing as bar:

        def progress(done, total):
            if shown:
                bar.update(1)

        with _kernel_errors():
            dense, rows = sweep.run_sweep(m, k, n, w, arch, levels, pattern, seed, A, progress)
    what = (
        f"matrix {matrix} (checked against its float64 values)"
        if matrix
        else "every pattern (form)"
        if pattern == "all"
        else f"pattern {pattern}"
    )
    click.echo(f"GEMM {m}x{k}x{n} on {w}x{w} PEs, {arch}, {what}")
    click.echo(
        f"dense: {dense.cycles} cycles, {dense.tflops_at_clock:.2f} TFLOP/s at the clock, "
        f"utilisation {dense.utilisation * 100:.1f}%, host {dense.host_seconds:.2f} s"
    )
    click.echo(
        "sparse, one row per sparsity: speedup = dense / sparse cycles; util, MACs skipped, "
        "eff TFLOP/s\n(the dense FLOPs over the sparse run's time) and host s are the "
        "sparse run's"
    )
    columns = (("form",) if pattern == "all" else ()) + sweep.COLUMNS
    _echo_table([columns] + sweep.table_rows(dense, rows, pattern == "all"))
    models = {}
    if compare:
        from .kernels import gpu

        models = gpu.compare(dense, rows, "random" if matrix else pattern)
        click.echo(
            "\nGPU roofline model (lower bounds on the GPU's time; assumptions: README, "
            '"Beside a GPU");\nwafer: the emulated run on its '
            f"{w}x{w} PEs; speedups are over each machine's own dense GEMM"
        )
        _echo_table([gpu.COLUMNS] + gpu.table_rows(dense, rows, models))
    dynamic = None
    if dynamic_levels is not None:
        click.echo("\ndynamic activation sparsity, the same M, K, N:")
        dynamic = _bench_activation(m, k, n, w, arch, seed, dynamic_levels, None)
    if json_path:
        sparse = [dict(r.to_dict(), sparsity=s) for s, r in rows]
        record = {"dense": dense.to_dict(), "sparse": sparse, "wse_emu_version": version()}
        if dynamic is not None:
            record["activation_sparsity"] = _activation_record(dynamic)
        if models:
            record["gpu_model"] = {k: [g.to_dict() for g in v] for k, v in models.items()}
        if A is not None:
            record["matrix"] = {
                "path": A.path,
                "shape": list(A.shape),
                "padded_shape": list(A.padded.shape),
                "nonzeros": A.nonzeros,
                "sparsity": A.sparsity,
                "fp16_changed": A.changed,
                "fp16_underflowed": A.underflowed,
                "fp16_overflowed": A.overflowed,
            }
        Path(json_path).write_text(json.dumps(record, indent=1))
    _plot(plot_path, lambda: sweep.plot(dense, rows, plot_path, dynamic))
    if gpu_plot:
        sweep.plot_gpu(dense, rows, models, gpu_plot)
        click.echo(f"wrote {gpu_plot}")
    if not all(r.verified for _, r in rows) or not dense.verified:
        sys.exit(1)
    _exit_unless_verified(dynamic or [])


def _plot(path, draw):
    if path:
        try:
            draw()
        except RuntimeError as e:
            _fail(f"error: {e}")
        click.echo(f"wrote {path}")


def _exit_unless_verified(dynamic):
    if not all(off.verified and on.verified for _, off, on in dynamic):
        sys.exit(1)


@contextlib.contextmanager
def _kernel_errors():
    """A host driver's refusal (bad shapes, a program that does not fit) is a usage error; a
    fault or deadlock of the run is a runtime error."""
    try:
        yield
    except (ValueError, AsmError) as e:
        _fail(f"error: {e}")
    except RunError as e:
        _fail(f"error: {e}", EXIT_RUNTIME)


def _activation_record(rows):
    return [
        {"level": s, "unfiltered": off.to_dict(), "filtered": on.to_dict()} for s, off, on in rows
    ]


def _bench_activation(m, k, n, p, arch, seed, levels, json_path):
    """`bench gemm --activation-sparsity`: the filtered and unfiltered runs per level, printed
    (and written to json_path); returns them."""
    from .kernels import activation

    _compile_note()
    with _kernel_errors():
        rows = activation.run_sweep(m, k, n, p, arch, levels, activation.D, seed)
    click.echo(
        f"C = ReLU(X W1 + b) B: X {m}x{activation.D}, W1 {activation.D}x{k}, B {k}x{n} on "
        f"{p}x{p} PEs, {arch}; the ReLU and the filter on the mesh\n"
        "cycles of the whole program without the filter (every element of the ReLU's output "
        "sent) and with it;\nlayer 2: the speedup after the last PE has made its tile; "
        "wavelets: all the run sent, unfiltered -> filtered"
    )
    _echo_table([activation.COLUMNS] + activation.table_rows(rows))
    if json_path:
        record = {"activation_sparsity": _activation_record(rows), "wse_emu_version": version()}
        Path(json_path).write_text(json.dumps(record, indent=1))
    return rows


@bench.command("wstream")
@click.option("--m", "m", default=256, show_default=True, help="rows of X and C (activations)")
@click.option("--k", "k", default=256, show_default=True, help="columns of X, rows of W")
@click.option("--n", "n", default=256, show_default=True, help="columns of W and C")
@click.option("--mesh", default="8x8", show_default=True, metavar="WxH", help="PEs")
@_arch_option
@click.option(
    "--host-gbps",
    "gbps",
    default=None,
    metavar="G[,G...]",
    help="the host link in Gb/s (cost table host_gbps, default 1200), shared by the rows' "
    "streams; several, comma separated: one run each",
)
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="write the results")
def bench_wstream(m, k, n, mesh, arch, gbps, seed, json_path):
    """Weight-streaming GEMM C = X W (programs/gemm_wstream.wsa): X resident, its rows split
    over the PEs; W streamed by the host into the West edge of every row and multicast
    along it. Prints cycles, MAC utilisation, how much of the run the host link set the
    pace and the mesh held it back, and the same GEMM with W resident (dense SUMMA)."""
    from .kernels import wstream

    profile = _profile(arch, ())
    w, h = _mesh_size(mesh, profile)
    _writable(json_path, "--json")
    links = [profile["host_gbps"]] if gbps is None else _int_list(gbps, "--host-gbps")
    for g in links:
        _profile(arch, [f"host_gbps={g}"])  # refuses a link outside the parameter's range
    with _kernel_errors():
        wstream.check_shape(m, k, n, w, h, profile)
    X, W = wstream.inputs(m, k, n, seed)
    _compile_note()
    with _kernel_errors():
        rows = [wstream.wstream(X, W, w, h, arch, {"host_gbps": g})[1] for g in links]
        dense = wstream.resident(X, W, w, h, arch)
    r0 = rows[0]
    click.echo(
        f"weight-streaming GEMM {m}x{k}x{n} on {w}x{h} PEs, {arch}: X resident ({m // (w * h)} "
        f"rows a PE), W ({k}x{n}) streamed into each of the {h} rows from the West edge"
    )
    click.echo(
        f"{r0.wavelets_streamed:,} wavelets in all; each row's stream gets 1/{h} of the host "
        "link, at most one wavelet a cycle; MAC util = MACs / (PEs x cycles x vfmachs "
        "elements a cycle);\nlink paced: the share of the run in which the host link set the "
        "pace; held: in which full queues held the host back (backpressure)"
    )
    _echo_table([wstream.COLUMNS] + wstream.table_rows(rows, dense and dense[0].cycles))
    if dense:
        click.echo(
            f"W resident (dense SUMMA, programs/gemm_dense.wsa, on {w}x{h}): {dense[0].cycles} "
            f"cycles, MAC util {dense[1] * 100:.1f}%"
        )
    else:
        click.echo(
            "W resident: not run (the dense kernel needs a square mesh whose side divides "
            "M, K and N, and tiles that fit its SRAM and DSDs)"
        )
    if json_path:
        record = {
            "wstream": [r.to_dict() for r in rows],
            "resident": dense and dict(dense[0].to_dict(), mac_utilisation=dense[1]),
            "wse_emu_version": version(),
        }
        Path(json_path).write_text(json.dumps(record, indent=1))
    if not all(r.verified for r in rows) or (dense and not dense[0].verified):
        sys.exit(1)


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        _fail(f"error: {option} wants whole numbers separated by commas, got {text!r}")
    if not values:
        _fail(f"error: {option} wants at least one number, got {text!r}")
    return values


@bench.command("ffn")
@click.option("--tokens", default=32, show_default=True, help="tokens (rows of X) in all")
@click.option("--d", "d", default=64, show_default=True, help="model width: columns of X")
@click.option("--f", "f", default=256, show_default=True, help="hidden width: columns of W")
@click.option("--mesh", default="8x1", show_default=True, metavar="WxH", help="PEs")
@click.option("--arch", type=click.Choice(ARCHS), default="wse3", show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="write the result")
def bench_ffn(tokens, d, f, mesh, arch, seed, json_path):
    """A transformer block's feed-forward half with a layer norm, LayerNorm(GELU(X W + b)),
    on the mesh (programs/ffn_layernorm.wsa): cycles, cycles per token, a check against
    NumPy. W's F columns are split along each row of PEs, the tokens over the rows."""
    from .kernels.transformer import ffn_layernorm

    w, h = _mesh_size(mesh, _profile(arch, ()))
    _writable(json_path, "--json")
    if min(tokens, d, f) < 1:
        _fail("error: --tokens, --d and --f must be positive")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((tokens, d)) * 0.5
    W = rng.standard_normal((d, f)) / np.sqrt(d)
    b = rng.standard_normal(f) * 0.1
    _compile_note()
    with _kernel_errors():
        _, r = ffn_layernorm(X, W, b, w, h, arch)
    click.echo(
        f"LayerNorm(GELU(X W + b)): {tokens} tokens, D = {d}, F = {f} on {w}x{h} PEs, {arch}\n"
        f"cycles {r.cycles:,}, {r.cycles_per_token:,.1f} per token of a row of PEs, "
        f"{r.tokens_per_second:,.0f} tokens/s at the clock, utilisation "
        f"{r.utilisation * 100:.1f}%\nmax |error| against NumPy (float64) "
        f"{r.max_abs_error:.2e} (tolerance {r.tolerance:.0e}): "
        + ("verified" if r.verified else "NOT verified")
    )
    if json_path:
        Path(json_path).write_text(json.dumps(r.to_dict(), indent=1))
    if not r.verified:
        sys.exit(1)


@bench.command("summa")
@click.option("--mesh", default="8x8", show_default=True, metavar="WxH", help="PEs")
@click.option(
    "--tile",
    default="4x4x4",
    show_default=True,
    metavar="MTxKTxNT",
    help="each PE's tiles: C is MT x NT, A MT x KT, B KT x NT",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    help="panels of K (the roots: the first STEPS columns and rows)  [default: min(W, H)]",
)
@_arch_option
@click.option("--acc16", is_flag=True, help="accumulate C in fp16 (default: fp32)")
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="write the result")
def bench_summa(mesh, tile, steps, arch, acc16, seed, json_path):
    """Dense GEMM alone (SUMMA, programs/gemm_dense.wsa) on any W x H mesh, up to the whole
    wafer: C (H*MT x W*NT) = A (H*MT x STEPS*KT) B. Cycles, utilisation, TFLOP/s at the
    clock, a check against NumPy, and the host's seconds and peak memory."""
    from .kernels import gemm

    started = time.perf_counter()
    w, h = _mesh_size(mesh, _profile(arch, ()))
    _writable(json_path, "--json")
    try:
        mt, kt, nt = (int(v) for v in tile.lower().split("x"))
        if min(mt, kt, nt) < 1:
            raise ValueError
    except ValueError:
        _fail(f"error: --tile must be MTxKTxNT (three positive integers), got {tile!r}")
    steps = min(w, h) if steps is None else steps
    if steps > min(w, h):
        _fail(f"error: --steps {steps} is more than min(W, H) = {min(w, h)} of {w}x{h}")
    m, k, n = h * mt, steps * kt, w * nt
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, k)).astype(np.float16)
    B = rng.standard_normal((k, n)).astype(np.float16)
    _compile_note()
    with _kernel_errors():
        _, r = gemm.dense(A, B, (w, h), arch, acc16, steps=steps)
    host = {"host_seconds": time.perf_counter() - started, "peak_rss_bytes": peak_rss_bytes()}
    rss = host["peak_rss_bytes"]
    click.echo(
        f"SUMMA C = A B, {m}x{k}x{n} on {w}x{h} PEs ({steps} panels of K), {arch}, "
        f"{r.accumulate} accumulate\ncycles {r.cycles:,}, {r.tflops_at_clock:.3f} TFLOP/s at "
        f"the clock, utilisation {r.utilisation * 100:.1f}%, {r.hops:,} wavelet-hops\n"
        f"max |error| against NumPy (float64) {r.max_abs_error:.2e} (tolerance "
        f"{r.tolerance:.1e}): " + ("verified" if r.verified else "NOT verified") + "\n"
        f"host: {host['host_seconds']:.1f} s in all ({r.host_seconds:.1f} s load, run and "
        "gather), peak RSS " + (f"{rss / 2**30:.2f} GiB" if rss else "unknown")
    )
    if json_path:
        record = dict(r.to_dict(), steps=steps, **host, wse_emu_version=version())
        Path(json_path).write_text(json.dumps(record, indent=1))
    if not r.verified:
        sys.exit(1)


@main.group()
def cluster():
    """A cluster of wafers joined by SwarmX; its wafers run in this process, or spread over
    the ranks of `mpiexec -n R wse-emu cluster ...`."""


@cluster.command("gemm")
@click.option("--batch", default=64, show_default=True, help="rows of X, split over the wafers")
@click.option("--k", "k", default=32, show_default=True, help="columns of X, rows of W")
@click.option("--n", "n", default=32, show_default=True, help="columns of W")
@click.option("--mesh", default="4x4", show_default=True, metavar="PxP", help="each wafer's PEs")
@click.option("--wafers", default=4, show_default=True, help="wafers in the cluster")
@_arch_option
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="override a cost-table parameter, of the wafers (see `wse-emu info`) or of SwarmX "
    "(swarmx.link_gbit_s, links, hop_ns, fanout, max_wafers; isa/costs.toml)",
)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--timeout",
    default=3600.0,
    show_default=True,
    help="seconds a rank waits for the others at one exchange before it gives up",
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="write the results")
def cluster_gemm(batch, k, n, mesh, wafers, arch, overrides, seed, timeout, json_path):
    """A data-parallel GEMM step: X (batch x K) split over the wafers, W (K x N) broadcast
    to every wafer by SwarmX, each wafer's Y_i = X_i W and dW_i = X_i^T dY_i with the dense
    kernel on its own mesh, dW reduced by SwarmX. Prints per-wafer cycles, SwarmX cycles and
    bytes, the step's total, and checks Y and dW against NumPy."""
    from .cluster import command

    params = click.get_current_context().params
    sys.exit(command.gemm(**dict(params, overrides=_parse_overrides(overrides))))


def _echo_table(table):
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        click.echo("  ".join(c.rjust(wd) for c, wd in zip(r, widths)))


@main.command()
@click.option(
    "--arch", type=click.Choice(ARCHS), default=None, help="show one profile (default: all)"
)
@_set_option
@click.option(
    "--memory",
    "prog",
    type=click.Path(dir_okay=False),
    metavar="PROG",
    help="instead: the state PROG takes on --mesh (linked, not run), part by part, in total "
    "and per PE (--arch default wse3)",
)
@_mesh_option
@_const_option
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="with --memory")
def info(arch, overrides, prog, mesh, consts, json_path):
    """Show the arch profiles and their cost table, with a source for every number; or, with
    --memory PROG, what PROG's state takes."""
    if prog is not None:
        return _memory_info(prog, mesh, arch or "wse3", overrides, consts, json_path)
    ctx = click.get_current_context()
    for name in ("mesh", "consts", "json_path"):
        if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT:
            flag = {"consts": "const", "json_path": "json"}.get(name, name)
            _fail(f"error: --{flag} goes with --memory PROG")
    archs = [arch] if arch else list(ARCHS)
    profiles = [_profile(a, overrides) for a in archs]
    rows = list(profiles[0].rows())
    name_w = max(len(f"{g}.{k}") for g, k, *_ in rows) + 2
    click.echo(f"{'parameter':<{name_w}}" + "".join(f"{a:>9}" for a in archs) + "  source")
    for group, key, _, source, _ in rows:
        vals = "".join(f"{p[key]:>8}" + ("*" if key in p.overrides else " ") for p in profiles)
        click.echo(f"{group + '.' + key:<{name_w}}{vals}  {source}")
    if overrides:
        click.echo("* overridden with --set")


def _memory_info(prog, mesh, arch, overrides, consts, json_path):
    """`info --memory`: the state's parts as Mesh.load would allocate them."""
    from .memory import breakdown
    from .runtime import footprint

    _writable(json_path, "--json")
    profile = _profile(arch, overrides)
    linked = _link(prog, mesh, profile, consts)
    use, storage, _, _ = footprint(linked, profile)
    n_pe = linked.width * linked.height
    parts = breakdown(n_pe, profile, use)
    total = sum(parts.values())
    click.echo(
        f"{prog} on {linked.width}x{linked.height} {arch}: state {total:,} bytes "
        f"({total / 1e9:.3g} GB), {total / n_pe:,.0f} bytes per PE"
    )
    click.echo(
        f"SRAM {use.sram_row:,} bytes per PE allocated (the declared data; the PE has "
        f"{profile['sram_bytes']:,}); {use.queue_slots:,} ring slots, at most "
        f"{int(storage.max(initial=0)):,} in one queue; {use.microthreads:,} microthread rows; "
        f"{use.n_insn:,} instructions"
    )
    _echo_table(
        [("part", "bytes", "per PE", "share")]
        + [(k, f"{v:,}", f"{v / n_pe:,.1f}", f"{v / total:.1%}") for k, v in parts.items()]
    )
    if json_path:
        record = {
            "program": prog,
            "mesh": f"{linked.width}x{linked.height}",
            "arch": arch,
            "state_bytes": total,
            "bytes_per_pe": total / n_pe,
            "parts": parts,
            "sram_row_bytes": use.sram_row,
            "queue_slots": use.queue_slots,
            "max_queue_slots": int(storage.max(initial=0)),
            "microthread_rows": use.microthreads,
            "instructions": use.n_insn,
            "wse_emu_version": version(),
        }
        Path(json_path).write_text(json.dumps(record, indent=1))


@main.command("isa")
@click.option("--markdown", is_flag=True, help="print the full reference as Markdown")
def isa_cmd(markdown):
    """List the instruction set (the table in isa/instructions.toml)."""
    if markdown:
        from .isadoc import markdown as md

        click.echo(md(), nl=False)
        return
    for row in isa.table():
        click.echo(f"{row.syntax:<40} {row.meaning}")


if __name__ == "__main__":
    main()
