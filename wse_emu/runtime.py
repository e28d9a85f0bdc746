"""Host API: a mesh of PEs you load a program onto, copy tensors into and out of
(memcpy_h2d / memcpy_d2h, as in the Cerebras SDK), launch and run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import isa
from .arch import ArchProfile
from .asm import Linked, ProgramSet, assemble, parse_file
from .asm.assembler import dtype_array, out_of_range
from .asm.linker import microthread_id
from .checks import integer
from .engine import kinds as K
from .engine.core import launch as engine_launch
from .engine.core import run as engine_run
from .engine.decode import decode, engine_config
from .engine.fabric import (
    ROUTE_FAULTS,
    ROUTE_LOOP,
    ROUTE_NO_RAMP,
    ROUTE_NOT_RECEIVED,
    ROUTE_NOWHERE,
    ROUTE_OFF_MESH,
    check_routes,
    queue_storage,
)
from .engine.hoststream import StreamError, add_streams
from .engine.ref import StateRef
from .engine.state import new_state
from .engine.stream import check_stream, start_stream
from .memory import Footprint, MeshSizeError, check_memory, check_size, sram_footprint
from .stats import Stats

DEFAULT_MAX_CYCLES = 10**12
MAX_CYCLES = (1 << 62) - 1  # cycle counts are int64 in the engine
BATCH_INSTRUCTIONS = 5_000_000
DIR_NAMES = ("north", "east", "south", "west")


class RunError(Exception):
    """A run that did not finish: a runtime fault, a deadlock or the cycle limit."""

    def __init__(self, kind: str, message: str, result: "RunResult | None" = None):
        super().__init__(message)
        self.kind = kind
        self.result = result


class UnknownSymbol(ValueError, KeyError):
    """memcpy of a symbol the program does not have (a ValueError; a KeyError as before)."""

    __str__ = ValueError.__str__


@dataclass
class RunResult:
    status: str  # "done", "fault", "deadlock", "cycle-limit", "stopped" (by the debugger)
    stats: Stats
    report: str = ""  # what went wrong, for the statuses other than done
    trace: "object | None" = None  # a trace.TraceSummary when the run was traced

    @property
    def cycles(self) -> int:
        return self.stats.cycles

    @property
    def ok(self) -> bool:
        return self.status == "done"

    def _repr_html_(self) -> str:
        """A notebook shows the status, what went wrong, and the statistics."""
        from html import escape

        report = f"<pre>{escape(self.report)}</pre>" if self.report else ""
        return f"<p><b>{escape(self.status)}</b></p>{report}{self.stats._repr_html_()}"


@dataclass
class StreamStat:
    """What one host stream did (Mesh.streams): where it entered, how much it sent, when, and
    how long the mesh held it back (a full queue: backpressure)."""

    x: int
    y: int
    color: int
    wavelets: int  # asked to send
    sent: int
    start: int  # the cycle it began
    first: int  # the cycles of its first and last wavelet
    last: int
    cycles_per_wavelet: float  # its share of the host link (at least 1)
    held: int  # cycles it had a wavelet to send but the destination queue was full

    @property
    def done(self) -> bool:
        return self.sent == self.wavelets

    @property
    def paced(self) -> int:
        """Cycles the host link set the pace: its life (start to last send) less the holds."""
        return max(self.last - self.start - self.held, 0) if self.sent else 0


STREAM_DTYPES = ("float16", "bfloat16", "float32", "int16", "uint16", "int32", "uint32")
SIDES = {"west": K.D_WEST, "east": K.D_EAST}


def parse_mesh(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise MeshSizeError(f"mesh size must look like 16x16, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise MeshSizeError(f"mesh size must be positive, got {text!r}")
    return w, h


class Mesh:
    """A width x height mesh of PEs on one arch profile."""

    def __init__(
        self,
        width: int,
        height: int,
        arch: str | ArchProfile = "wse3",
        overrides: dict | None = None,
    ):
        self.width, self.height = check_size(width, height)
        if not isinstance(arch, (str, ArchProfile)):
            raise TypeError(f"arch must be a name (wse2, wse3) or an ArchProfile, got {arch!r}")
        if isinstance(arch, ArchProfile) and overrides:
            raise ValueError("overrides go into the ArchProfile when arch is one, not next to it")
        self.arch = arch if isinstance(arch, ArchProfile) else ArchProfile(arch, overrides or {})
        check_memory(self.width, self.height, self.arch)
        self.program: Linked | None = None
        self.state = None
        self._ref = None
        self.route_warnings: list[str] = []  # found at load (Mesh._check_delivery)
        self.launched = False  # run() before launch() would report an empty run as done

    @property
    def n_pe(self) -> int:
        return self.width * self.height

    # ------------------------------------------------------------------ loading
    def load(self, program) -> Linked:
        """Load a program: a Linked program, a .wsa path, or a ProgramSet / source text."""
        if isinstance(program, Linked):
            linked = program
            if (linked.width, linked.height) != (self.width, self.height):
                raise ValueError(
                    f"program linked for {linked.width}x{linked.height}, "
                    f"mesh is {self.width}x{self.height}"
                )
        elif isinstance(program, Path) or (
            isinstance(program, str) and program.endswith(".wsa") and "\n" not in program
        ):
            linked = assemble(parse_file(program), self.width, self.height, self.arch)
        elif isinstance(program, (str, ProgramSet)):
            linked = assemble(program, self.width, self.height, self.arch)
        else:
            raise TypeError(
                "load takes a Linked program, a .wsa path or program text, "
                f"got {type(program).__name__}"
            )
        self.program = None
        self.launched = False
        self.route_warnings = []
        code = decode(linked.code, self.arch)
        a = self.arch
        placed = (linked.pe_image >= 0).astype(np.uint8)
        use, storage, hosts, per_host = footprint(linked, a)
        sram_row, n_ut = use.sram_row, use.microthreads
        check_memory(self.width, self.height, a, use)
        self.state = None  # published below, only once every check has passed
        S = new_state(
            code,
            self.n_pe,
            len(linked.images),
            engine_config(a, self.width, self.height, sram_row, per_host),
            linked.rx,
            linked.tx,
            storage,
            sram_row,
            a["colors"],
            n_ut,
        )
        ref = StateRef(S)
        key, problem, where = check_routes(ref, placed)
        if key >= 0:
            src, color = divmod(int(key), a["colors"])
            raise RunError(
                "route",
                f"route error on color {color} (sent from PE ({src % self.width},"
                f"{src // self.width})): {self._route_problem(int(problem), int(where))}",
            )
        self.route_warnings = self._check_delivery(linked)
        pes = S.pe[: self.n_pe]
        pes[:, K.P_IMG] = linked.pe_image
        ends = np.array([im.base + len(im.code) for im in linked.images] + [0], np.int64)
        pes[:, K.P_CEND] = ends[linked.pe_image]  # -1 (no image) picks the 0
        _add_microthreads(S, hosts, self.n_pe, per_host)
        for r in linked.regions:
            block = pes.reshape(self.height, self.width, K.NPE)[r.y : r.y + r.h, r.x : r.x + r.w]
            block[..., K.P_X0] = r.x
            block[..., K.P_Y0] = r.y
        for i, image in enumerate(linked.images):
            for t, (_, entry, color) in enumerate(image.tasks):
                S.task_entry[i, t] = entry
                S.task_color[i, t] = color
                if color >= 0:
                    S.color_task[i, color] = t
            for cid, t in image.controls.items():
                S.ctl_task[i, cid] = t
            S.ctl_task[i, isa.CONTROL_IDS] = len(image.controls)
            pes = np.flatnonzero(linked.pe_image == i)
            for addr, data in image.init:
                S.sram8[pes, addr : addr + len(data)] = np.frombuffer(data, np.uint8)
        self.program, self.state, self._ref = linked, S, ref
        return linked

    def _check_delivery(self, linked: Linked) -> list[str]:
        """Tiles whose code receives on a color (recv, fabric input, data task) while their
        router forwards that color past them at every switch position, never to their ramp.
        Such a tile waits forever if it reaches the receive, and the deadlock report would
        blame another tile; but one image may hold both roles (a relay copy that never runs
        its receive), so this is a warning kept with the mesh, not an error. One per color."""
        near = sum(1 << d for d in range(4))  # rx bits of the four neighbours
        ramp = 1 << 4
        passes = (linked.rx & near).any(axis=2) & ~(linked.tx & ramp).any(axis=2)
        found, seen = [], set()
        for p, c in zip(*np.nonzero(passes)):
            i = linked.pe_image[p]
            if i < 0 or int(c) in seen:
                continue
            use = _receives(linked.images[i], int(c))
            if use:
                seen.add(int(c))
                x, y = p % self.width, p // self.width
                found.append(
                    f"color {c}: PE ({x},{y}) receives on it ({use}) but its route passes "
                    f"the color on without delivering it (add 'ramp' to the tx of color {c} "
                    f"at {x}, {y} if it should receive)"
                )
        return found

    def _route_problem(self, problem: int, where: int) -> str:
        """What is wrong where a multicast tree failed (fabric.walk's error)."""
        node, d = divmod(where, 4)
        nx, ny = node % self.width, node // self.width
        if problem == ROUTE_OFF_MESH:
            return f"PE ({nx},{ny}) transmits {DIR_NAMES[d]} off the edge of the mesh"
        if problem == ROUTE_NOT_RECEIVED:
            tx = nx + (d == 1) - (d == 3)
            ty = ny + (d == 2) - (d == 0)
            back = DIR_NAMES[(d + 2) % 4]
            return (
                f"PE ({nx},{ny}) transmits {DIR_NAMES[d]} but PE ({tx},{ty}) does "
                f"not receive from {back} (add '{back}' to its rx)"
            )
        if problem == ROUTE_LOOP:
            return f"the route loops back through PE ({nx},{ny})"
        if problem == ROUTE_NOWHERE:
            return "no PE's tx includes ramp on this tree, so nobody receives it"
        return "the PE's rx for this color lacks ramp, so it cannot send on it"

    def _need_program(self):
        if self.program is None:
            raise RuntimeError("no program loaded: call Mesh.load first")

    # ------------------------------------------------------------------ memcpy
    def _symbol_targets(self, symbol, x0, y0, w, h):
        """[(image, pe indices in row-major order of the rectangle)] for symbol."""
        self._need_program()
        if not isinstance(symbol, str):
            raise TypeError(f"symbol must be a name (str), got {symbol!r}")
        x0, y0 = integer(x0, "x0"), integer(y0, "y0")
        w = self.width - x0 if w is None else integer(w, "w")
        h = self.height - y0 if h is None else integer(h, "h")
        if x0 < 0 or y0 < 0 or w <= 0 or h <= 0 or x0 + w > self.width or y0 + h > self.height:
            raise ValueError(
                f"rectangle at ({x0},{y0}) size {w}x{h} is not inside the "
                f"{self.width}x{self.height} mesh"
            )
        ys, xs = np.mgrid[y0 : y0 + h, x0 : x0 + w]
        pes = (ys * self.width + xs).ravel()
        images = self.program.pe_image[pes]
        syms = {}
        for i in np.unique(images):
            if i < 0:
                raise ValueError(
                    f"no program is placed on some PEs of the rectangle at ({x0},{y0}) size {w}x{h}"
                )
            image = self.program.images[i]
            if symbol not in image.symbols:
                raise UnknownSymbol(
                    f"program {image.program!r} has no symbol {symbol!r}; it has: "
                    + ", ".join(image.symbols)
                )
            syms[i] = image.symbols[symbol]
        shapes = {s.shape for s in syms.values()}
        dtypes = {s.dtype for s in syms.values()}
        if len(shapes) > 1 or len(dtypes) > 1:
            raise ValueError(f"symbol {symbol!r} differs in shape or dtype across the rectangle")
        return syms, pes, images, w, h

    def memcpy_h2d(
        self,
        symbol: str,
        array,
        x0: int = 0,
        y0: int = 0,
        w: int | None = None,
        h: int | None = None,
        cast: str = "safe",
    ):
        """Copy array into symbol on every PE of the rectangle. array has shape
        (h, w, *symbol shape), or any shape with h*w*elements values (PE-major, row-major).
        cast="safe" refuses values the symbol's dtype cannot hold (an integer out of range,
        a finite float that would become inf); cast="unsafe" stores them anyway, as a C cast
        would (integers wrap, floats overflow to inf)."""
        if cast not in ("safe", "unsafe"):
            raise ValueError(f"cast must be 'safe' or 'unsafe', got {cast!r}")
        syms, pes, images, w, h = self._symbol_targets(symbol, x0, y0, w, h)
        sym = next(iter(syms.values()))
        arr = _numeric(symbol, array)
        if arr.size != len(pes) * sym.count:
            raise ValueError(
                f"{symbol!r}: {w}x{h} PEs x {sym.count} elements = "
                f"{len(pes) * sym.count} values, got an array of shape {arr.shape}"
            )
        raw = _convert(symbol, arr, sym.dtype, cast == "safe")
        raw = raw.reshape(len(pes), sym.count)
        data = raw.view(np.uint8).reshape(len(pes), sym.nbytes)
        for i, s in syms.items():
            sel = images == i
            self.state.sram8[pes[sel], s.addr : s.addr + s.nbytes] = data[sel]

    def memcpy_d2h(
        self, symbol: str, x0: int = 0, y0: int = 0, w: int | None = None, h: int | None = None
    ) -> np.ndarray:
        """symbol from every PE of the rectangle as an array of shape (h, w, *symbol shape)."""
        syms, pes, images, w, h = self._symbol_targets(symbol, x0, y0, w, h)
        sym = next(iter(syms.values()))
        out = np.zeros((len(pes), sym.nbytes), np.uint8)
        for i, s in syms.items():
            sel = images == i
            out[sel] = self.state.sram8[pes[sel], s.addr : s.addr + s.nbytes]
        np_type = dtype_array(np.zeros(1), sym.dtype).dtype
        return out.view(np_type).reshape((h, w) + sym.shape)

    # ------------------------------------------------------------------ host streams
    def stream_h2d(self, color: int, array, x: int = 0, y0: int = 0, side: str | None = None):
        """Stream wavelets from the host into the fabric: row i of array (shape (h, n), or
        (n,) for h = 1) goes, one wavelet an element, into the router of edge PE (x, y0 + i)
        on color, arriving from off the mesh on `side` (west at x = 0, east at x = width - 1:
        I/O enters at the East and West edges), and from there down the color's route, as
        the SDK's memcpy_h2d(streaming=True) feeds a data task. The route must receive from
        that side. The streams send while the mesh runs (from the current cycle), each at
        most one wavelet a cycle and all together no faster than the host link (cost table
        host_gbps); a full destination queue holds a stream back. Elements: float16,
        bfloat16 or int16/uint16 (the wavelet's low half), float32, int32 or uint32 (all 32
        bits). Returns the streams' indices in Mesh.streams()."""
        self._need_program()
        color = integer(color, "color", 0, self.arch["colors"] - 1)
        x, y0 = integer(x, "x"), integer(y0, "y0")
        if side is None:
            side = "west" if x == 0 else "east"
        if side not in SIDES:
            raise ValueError(f"side must be 'west' or 'east', got {side!r}")
        edge = 0 if side == "west" else self.width - 1
        if x != edge:
            raise ValueError(
                f"PE ({x},{y0}) is not on the {side} edge (x = {edge}): the host streams "
                "into the mesh only at its West and East edges"
            )
        words = _stream_words(array)
        if not 0 <= y0 or y0 + len(words) > self.height:
            raise ValueError(
                f"rows {y0}..{y0 + len(words) - 1} of the stream are not inside the mesh's "
                f"{self.height} rows"
            )
        d = SIDES[side]
        S = self.state
        for row in S.strm:
            if row[K.ST_SIDE] == d and row[K.ST_SENT] < row[K.ST_LEN]:
                p = int(row[K.ST_PE])
                if p % self.width == x and y0 <= p // self.width < y0 + len(words):
                    raise ValueError(
                        f"PE ({x},{p // self.width}) already takes a stream from the {side} "
                        "(one at a time per edge PE: they would share its one link)"
                    )
        pes = [(y0 + i) * self.width + x for i in range(len(words))]
        streams = [(p, color, d, w) for p, w in zip(pes, words)]
        rate = self.arch["host_gbps"] * 1e9 / 8 / self.arch.clock_hz  # bytes a cycle
        t0 = int(S.pe[: self.n_pe, K.P_CLOCK].max(initial=0))
        try:
            new, ids = add_streams(S, streams, rate, self.width, self.height)
        except StreamError as e:
            raise ValueError(str(e)) from None
        ref = StateRef(new)
        for s, p in zip(ids, pes):
            n, where = check_stream(ref, s)
            if n < 0:
                problem = int(-n)
                if problem == ROUTE_NO_RAMP:
                    problem_text = (
                        f"PE ({x},{p // self.width}) does not receive color {color} from the "
                        f"{side} (add '{side}' to its rx at {x}, {p // self.width})"
                    )
                else:
                    problem_text = self._route_problem(problem, int(where))
                raise RunError(
                    "route", f"route error on the host stream of color {color}: {problem_text}"
                )
        self.state, self._ref = new, ref
        for s in ids:
            start_stream(ref, s, t0)
        return ids

    def streams(self) -> list[StreamStat]:
        """What each host stream has done so far (stream_h2d)."""
        S, out = self.state, []
        if S is None:
            return out
        first = int(S.misc[K.M_STREAM0])
        for s, row in enumerate(S.strm):
            p = int(row[K.ST_PE])
            out.append(
                StreamStat(
                    p % self.width,
                    p // self.width,
                    int(row[K.ST_COLOR]),
                    int(row[K.ST_LEN]),
                    int(row[K.ST_SENT]),
                    int(row[K.ST_START]),
                    int(row[K.ST_FIRST]),
                    int(row[K.ST_LAST]),
                    int(row[K.ST_STEP]) / (1 << K.STREAM_FRAC),
                    int(S.pe[first + s, K.P_STALL]),
                )
            )
        return out

    # ------------------------------------------------------------------ running
    def launch(self, entry: str = "main"):
        """Start every placed PE's main task; or, given another label, start that function on
        every PE whose program has it (the others stay as they are), like a host-callable
        function of the Cerebras SDK. It ends with halt, or ret with an empty call stack."""
        self._need_program()
        if not isinstance(entry, str):
            raise TypeError(f"entry must be a label name (str), got {entry!r}")
        start = np.full(self.n_pe, -1, np.int64)
        for i, image in enumerate(self.program.images):
            if not len(image.code):
                continue
            if entry == "main":
                start[self.program.pe_image == i] = image.main
            elif entry in image.labels:
                start[self.program.pe_image == i] = image.labels[entry]
        if entry != "main" and not (start >= 0).any():
            raise ValueError(f"no program on the mesh has a label {entry!r} to launch")
        engine_launch(self._engine_state(), start)
        self.launched = True

    def _engine_state(self) -> StateRef:
        """self.state as the kernels take it; made again when the state is replaced."""
        if self._ref is None or self._ref.state is not self.state:
            self._ref = StateRef(self.state)
        return self._ref

    def run(
        self,
        max_cycles: int | None = None,
        check: bool = True,
        progress=None,
        batch: int = BATCH_INSTRUCTIONS,
        trace=None,
    ) -> RunResult:
        """Run until done. With check, a fault, deadlock or cycle limit raises RunError.
        The engine runs in batches of about `batch` instructions, so Ctrl-C stops a long
        run between batches; progress(mesh) is called after each batch. trace: a path or a
        trace.TraceOptions: write a Perfetto timeline of the run there (result.trace says
        what was written); tracing changes no cycle and no bit."""
        self._need_program()
        if not self.launched:
            raise RunError(
                "not-launched",
                "nothing was launched: call mesh.launch() after load and memcpy_h2d, then "
                "run() (unlike the Cerebras SDK, run does not start the device)",
            )
        limit = integer(
            DEFAULT_MAX_CYCLES if max_cycles is None else max_cycles, "max_cycles", 1, MAX_CYCLES
        )
        batch = integer(batch, "batch", 1, MAX_CYCLES)
        tracer = None
        if trace is not None:
            from .trace import Tracer

            tracer = Tracer(self, trace)
            tracer.start()
        try:
            while True:
                self.state.misc[K.M_BUDGET] = batch
                status = engine_run(self._engine_state(), limit)
                if tracer is not None:
                    tracer.drain()
                if status != K.R_PAUSED:
                    break
                if progress is not None:
                    progress(self)
        finally:
            if tracer is not None:
                tracer.stop()
        result = RunResult(
            {
                K.R_DONE: "done",
                K.R_FAULT: "fault",
                K.R_DEADLOCK: "deadlock",
                K.R_CYCLE_LIMIT: "cycle-limit",
                K.R_STOP: "stopped",
            }[int(status)],
            self.stats(),
        )
        if tracer is not None:
            result.trace = tracer.write(self.program.filename)
        if result.status == "done" and not all(st.done for st in self.streams()):
            result.status = "deadlock"  # the host's streaming memcpy would never return
        if result.status not in ("done", "stopped"):  # stopped: by the debugger, on request
            result.report = self.explain(result.status)
            if check:
                raise RunError(result.status, result.report, result)
        return result

    def stats(self) -> Stats:
        return Stats.from_state(self.state, self.width, self.height, self.arch.clock_hz)

    # ------------------------------------------------------------------ reports
    def where(self, p: int) -> str:
        """'PE (x,y) pc N (file:line: source)' for PE index p."""
        if p >= self.state.misc[K.M_STREAM0]:
            return self._stream_name(p - int(self.state.misc[K.M_STREAM0]))
        x, y = p % self.width, p // self.width
        pc = int(self.state.pe[p, K.P_PC])
        return f"PE ({x},{y}) pc {pc} ({self.program.where(pc)})"

    def _stream_name(self, s: int) -> str:
        st = self.streams()[s]
        return f"the host stream into PE ({st.x},{st.y}) on color {st.color}"

    def pe_state(self, p: int) -> str:
        text = self._pe_state(p)
        if self.state.pe[p, K.P_UTBUSY] and self.state.pe[p, K.P_STATE] != K.S_UTWAIT:
            text += "; " + self._microthreads(p, -1)
        return text

    def _microthreads(self, p: int, u: int) -> str:
        """The state of PE p's microthread u, or (u < 0) of each of its busy ones."""
        busy = int(self.state.pe[p, K.P_UTBUSY])
        ids = [u] if u >= 0 else [i for i in range(64) if busy >> i & 1]
        base = int(self.state.pe[p, K.P_UTBASE])
        return "; ".join(f"microthread {i} {self._pe_state(base + i)}" for i in ids)

    def _pe_state(self, p: int) -> str:
        pe = self.state.pe[p]
        state = int(pe[K.P_STATE])
        if state == K.S_RECV:
            return f"blocked on receive, color {int(pe[K.P_WAIT])} (queue empty)"
        if state == K.S_SEND:
            q = int(pe[K.P_WAITPE])
            return (
                f"blocked on send, color {int(pe[K.P_WAIT])}: input queue of PE "
                f"({q % self.width},{q // self.width}) is full"
            )
        if state == K.S_IDLE:
            return "waiting for a task (none is activated or has a wavelet; missing halt?)"
        if state == K.S_UTWAIT:
            u = int(pe[K.P_WAIT])
            what = "an async op on a busy microthread" if u >= 0 else "halt"
            return f"at {what}, waiting for " + self._microthreads(p, u)
        if state == K.S_UTPAUSE:
            return "blocked by utblock"
        return K.STATE_NAMES[state]

    def explain(self, status: str) -> str:
        S = self.state
        if status == "fault" and S.misc[K.M_FAULT_PE] >= S.misc[K.M_STREAM0]:
            p = int(S.misc[K.M_FAULT_PE])
            code = int(S.pe[p, K.P_FAULT])
            problem = int(np.flatnonzero(ROUTE_FAULTS == code)[0])
            return f"runtime fault of {self.where(p)}: " + self._route_problem(
                problem, int(S.misc[K.M_WALK_ERR])
            )
        if status == "fault":
            p = int(S.misc[K.M_FAULT_PE])
            code, arg = int(S.pe[p, K.P_FAULT]), int(S.pe[p, K.P_FARG])
            text = f"runtime fault at {self.where(p)}: {K.FAULT_NAMES[code]} "
            if code == K.F_CTL_NO_TASK:  # the engine packs destination PE * CONTROL_IDS + ID
                q, cid = divmod(arg, isa.CONTROL_IDS)
                text += (
                    f"(control task ID {cid}, destination PE ({q % self.width},{q // self.width}))"
                )
            else:
                text += f"({_fault_arg(code, arg)})"
            if code in (K.F_SRAM_UNDECLARED, K.F_DSD_UNDECLARED):
                row = int(S.cfg[K.CFG_SRAM_ROW])
                text += f"; declared: {f'bytes 0-{row - 1}' if row else 'none'} of the PE's "
                text += f"{int(S.cfg[K.CFG_SRAM])}"
            if code in (K.F_ROUTE_OFF_MESH, K.F_ROUTE_NOT_RECEIVED, K.F_ROUTE_LOOP):
                problem = int(np.flatnonzero(ROUTE_FAULTS == code)[0])  # where the tree failed
                text += ": " + self._route_problem(problem, int(S.misc[K.M_WALK_ERR]))
            return text
        if status == "cycle-limit":
            p = int(S.misc[K.M_FAULT_PE])
            return (
                f"cycle limit {int(S.misc[K.M_MAX_CYCLES])} reached; slowest runnable: "
                f"{self.where(p)} at cycle {int(S.pe[p, K.P_CLOCK])}"
            )
        stuck = [
            p
            for p in range(self.n_pe)
            if S.pe[p, K.P_IMG] >= 0 and S.pe[p, K.P_STATE] not in (K.S_HALT, K.S_OFF)
        ]
        lines = [
            f"deadlock: no PE can run and {len(stuck)} have not halted"
            if stuck
            else "deadlock: every PE has halted, but a host stream was not taken in full "
            "(the host's streaming memcpy would never return)"
        ]
        for p in stuck[:32]:
            lines.append(f"  {self.where(p)}: {self.pe_state(p)}")
        if len(stuck) > 32:
            lines.append(f"  ... and {len(stuck) - 32} more")
        first = int(S.misc[K.M_STREAM0])
        for s, st in enumerate(self.streams()):
            if not st.done:
                lines.append(
                    f"  {self._stream_name(s)}: sent {st.sent} of {st.wavelets} wavelets; "
                    + self._pe_state(first + s)
                )
        lines += [f"  warning: {w}" for w in self.route_warnings]
        return "\n".join(lines)


def footprint(linked: Linked, arch: ArchProfile):
    """What loading linked makes the state hold besides its fixed per-PE part, found without
    allocating it: (Footprint, the wavelet slots of every input queue's ring, the PEs
    that get microthread rows, rows each). Mesh.load sizes the state by it; `wse-emu info
    --memory` reports it."""
    placed = (linked.pe_image >= 0).astype(np.uint8)
    storage = queue_storage(
        linked.rx,
        linked.tx,
        placed,
        arch["queue_depth"],
        arch["hop_latency"],
        arch["ramp_on"],
        arch["ramp_off"],
        linked.width,
        linked.height,
    )
    hosts, per_host = _microthread_hosts(linked)
    use = Footprint(
        len(linked.code),
        int(storage.sum()),
        sram_footprint(linked.images),
        len(hosts) * per_host,
        len(linked.images),
    )
    return use, storage, hosts, per_host


def _microthread_hosts(linked: Linked) -> tuple[np.ndarray, int]:
    """The PEs whose program uses microthreads (async, utblock, utunblock), and the rows
    each gets: the highest id any program names, plus one (ids are immediates, checked
    against the arch when linked), so a program using ids 0 and 1 does not pay for 8."""
    table = isa.table()
    uses, rows = [], 0
    for i, image in enumerate(linked.images):
        top = max((microthread_id(w, table[w[0]]) for w in image.code), default=-1)
        if top >= 0:
            uses.append(i)
            rows = max(rows, top + 1)
    return np.flatnonzero(np.isin(linked.pe_image, uses)), rows


def _add_microthreads(S, hosts: np.ndarray, n_pe: int, per_pe: int) -> None:
    """Give each host PE its microthread rows (engine/microthread.py), after the PE rows."""
    for k, h in enumerate(hosts):
        base = n_pe + k * per_pe
        S.pe[h, K.P_UTBASE] = base
        rows = S.pe[base : base + per_pe]
        rows[:, K.P_UTHOST] = h
        rows[:, K.P_UTID] = np.arange(per_pe)
        rows[:, K.P_STATE] = K.S_IDLE
        rows[:, K.P_IMG] = S.pe[h, K.P_IMG]


def _numeric(symbol: str, array) -> np.ndarray:
    """array as a NumPy array of numbers (bool, int, float), or TypeError naming symbol."""
    try:
        arr = np.asarray(array)
    except (ValueError, TypeError) as e:  # ragged nested lists
        raise TypeError(f"{symbol!r}: cannot make an array of numbers from the data: {e}") from None
    if arr.dtype.kind == "V" and arr.dtype.name.startswith(("bfloat16", "float8")):
        arr = arr.astype(np.float32)  # ml_dtypes' small floats: exact in float32
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{symbol!r}: expected numbers, got an array of {arr.dtype} "
            f"(from {type(array).__name__})"
        )
    return arr


def _convert(symbol: str, arr: np.ndarray, dtype: str, safe: bool) -> np.ndarray:
    """arr in the storage type of dtype; when safe, ValueError for the first value the type
    cannot hold (integers: NaN, inf or out of range; floats: finite values that overflow)."""
    if not safe:
        with np.errstate(all="ignore"):
            return dtype_array(arr, dtype)
    flat = arr.reshape(-1)
    i = out_of_range(flat, dtype)
    if i is not None:
        if dtype in isa.FLOAT_DTYPES:
            why = f"too large for {dtype} (it would become inf)"
        else:
            info = np.iinfo(f"int{dtype[1:]}")
            why = f"outside [{info.min}, {info.max}]"
        index = np.unravel_index(i, arr.shape) if arr.ndim else ()
        where = tuple(map(int, index))
        raise ValueError(
            f"{symbol!r} ({dtype}): value {flat[i].item()!r} at index {where} is {why}; "
            "pass cast='unsafe' to store it anyway (integers wrap, floats overflow to inf)"
        )
    return dtype_array(flat, dtype)


def _receives(image, color: int) -> str:
    """Where image takes wavelets of color ('' if nowhere): a data task or an instruction."""
    for name, _, c in image.tasks:
        if c == color:
            return f"data task {name!r}"
    table = isa.table()
    for word, pos in zip(image.code, image.positions):
        row = table[word[0]]
        if row.sem in ("recv", "dfin"):
            field = 4 + row.fields[[op.kind for op in row.operands].index("color")]
            if word[field] == color:
                return f"{row.mnemonic} at line {pos.line}"
    return ""


def _fault_arg(code: int, arg: int) -> str:
    """The fault's argument, named: what the engine stored in P_FARG for each fault code."""
    if code in (K.F_SRAM_RANGE, K.F_ALIGN, K.F_SRAM_UNDECLARED):
        return f"byte address {arg}"
    if code in (K.F_NO_ROUTE, K.F_QUEUE_MISUSE, K.F_CTL_DATA) or code in ROUTE_FAULTS:
        return f"color {arg}"
    if code == K.F_BAD_SWITCH:
        return f"position {arg}"
    if code in (K.F_DSD_RANGE, K.F_DSD_UNDECLARED):  # packed: address * 16 + DSD register
        return f"DSD register d{arg & 15}, an element at byte address {arg >> 4}"
    if code in (K.F_DSD_LEN, K.F_DSD_KIND, K.F_DSD_UNSET):
        return f"DSD register d{arg}"
    if code == K.F_BAD_DSD:
        return f"length {arg}"
    if code == K.F_CALL_DEPTH:
        return f"{arg} calls deep"
    if code == K.F_BAD_TASK:
        return f"task id {arg}"
    if code == K.F_PC_RANGE:
        return f"next pc {arg} is past its last instruction"
    return f"{arg}"


def _stream_words(array) -> list[np.ndarray]:
    """The rows of a stream_h2d array as uint32 wavelet payloads (16-bit elements in the low
    half), or TypeError / ValueError saying what is wrong with it."""
    arr = array if isinstance(array, np.ndarray) else np.asarray(array)
    if arr.dtype.name not in STREAM_DTYPES:
        raise TypeError(
            f"stream elements must be one of {', '.join(STREAM_DTYPES)} (the wavelet's "
            f"payload), got {arr.dtype}: convert the array first"
        )
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] == 0 or arr.shape[0] == 0:
        raise ValueError(
            f"a stream is an array of shape (rows, wavelets) or (wavelets,), not empty; "
            f"got shape {arr.shape}"
        )
    if arr.dtype.itemsize == 2:
        words = arr.view(np.uint16).astype(np.uint32)
    else:
        words = arr.view(np.uint32)
    return list(np.ascontiguousarray(words))
