"""A host API shaped like the Cerebras SDK's `SdkRuntime`, so a host script written for the
SDK runs against the emulator with few changes: same method names and argument order
(`load`, `run`, `get_id`, `memcpy_h2d`, `launch`, `memcpy_d2h`, `stop`), the memcpy
rectangle, `elem_per_pe`, `order` and `data_type` conventions. It maps onto `Mesh`.

What differs, by design: the program is a `.wsa` file (or text) instead of a compiled CSL
directory; every call is synchronous (`nonblock=True` is accepted and behaves the same);
`launch` starts a label of the program on every PE that has it and runs until they are
done. A streaming memcpy_h2d (`streaming=True`: `dest` is a color, the wavelets go to the
program's data task on it) enters at the mesh's West or East edge (Mesh.stream_h2d): the
rectangle is one edge column (px = 0 or the last column, w = 1), each of its PEs takes
elem_per_pe wavelets from the host link, and the program's routes carry them on. A call
returns when every PE has halted or waits for a task (the device waiting for the host)."""

from __future__ import annotations

import enum
import json
from pathlib import Path

import numpy as np

from .asm import assemble, parse_file, parse_source
from .checks import integer
from .engine import kinds as K
from .runtime import Mesh, RunError, RunResult


class MemcpyDataType(enum.Enum):
    """Width of one element in the host array: 32-bit words (16-bit values in the low half),
    or 16-bit."""

    MEMCPY_32BIT = 32
    MEMCPY_16BIT = 16


class MemcpyOrder(enum.Enum):
    """Layout of the host array over (height, width, elem_per_pe): C order (ROW_MAJOR) or
    Fortran order (COLUMN_MAJOR, element-major then column then row)."""

    ROW_MAJOR = "C"
    COLUMN_MAJOR = "F"


class SdkError(RuntimeError):
    pass


class SdkRuntime:
    """runner = SdkRuntime("prog.wsa"); runner.load(); runner.run(); runner.memcpy_h2d(...);
    runner.launch("compute"); runner.memcpy_d2h(...); runner.stop()."""

    def __init__(
        self,
        program,
        cmaddr=None,
        *,
        mesh: tuple[int, int] | None = None,
        arch="wse3",
        consts: dict | None = None,
        overrides: dict | None = None,
        stats_dir=None,
        **_simulator_options,
    ):
        """program: a .wsa path (the SDK takes its compile output directory), or the text of
        one. mesh: (width, height), by default the program's .mesh. stats_dir: where stop()
        writes sim_stats.json, as the Cerebras simulator does (None: nowhere). Options of
        the Cerebras simulator (suppress_simfab_trace, ...) are accepted and ignored."""
        if cmaddr is not None:
            raise SdkError(f"cmaddr={cmaddr!r}: the emulator runs no CS system; leave it None")
        if isinstance(program, Path) or (isinstance(program, str) and "\n" not in program):
            self._pset = parse_file(str(program))
        elif isinstance(program, str):
            self._pset = parse_source(program)
        else:
            raise TypeError(f"program must be a .wsa path or its text, got {program!r}")
        width, height = mesh if mesh is not None else (None, None)
        self._linked = assemble(self._pset, width, height, arch, consts=consts)
        self.mesh = Mesh(self._linked.width, self._linked.height, arch, overrides=overrides)
        self._stats_dir = stats_dir
        self._loaded = self._started = self._stopped = False
        self.last: RunResult | None = None

    # ------------------------------------------------------------------ lifecycle
    def get_id(self, name: str) -> str:
        """The symbol handle memcpy takes: here the symbol's name, checked to exist."""
        if not any(name in image.symbols for image in self._linked.images):
            have = sorted({s for im in self._linked.images for s in im.symbols})
            raise SdkError(f"no symbol {name!r} in the program; symbols: {', '.join(have)}")
        return name

    def load(self):
        self._check(stopped=False)
        self.mesh.load(self._linked)
        self._loaded = True

    def run(self):
        """Start the device: each PE whose program has a `main` runs it until it halts or
        waits for tasks; then the host's memcpy and launch calls go on."""
        self._check(loaded=True, stopped=False)
        if any("main" in image.labels for image in self._linked.images):
            self.mesh.launch()
            self.last = self._run_device()
        self.mesh.launched = True
        self._started = True

    def launch(self, name: str, *args, nonblock: bool = False):
        """Call the host-callable function `name` (a label) on every PE that has it, with
        integer arguments in r1, r2, ...; returns when every PE is done."""
        self._check(loaded=True, started=True, stopped=False)
        if len(args) > 8:
            raise SdkError(f"launch {name!r}: at most 8 arguments (r1-r8), got {len(args)}")
        for i, a in enumerate(args, 1):
            try:
                v = integer(a, f"launch {name!r}: argument {i}", -(1 << 31), (1 << 32) - 1)
            except (TypeError, ValueError) as e:
                raise SdkError(str(e)) from None
            self.mesh.state.regs[:, i] = ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
        try:
            self.mesh.launch(name)
        except ValueError as e:
            raise SdkError(str(e)) from None
        self.last = self._run_device()
        return self.last

    def _run_device(self) -> RunResult:
        """Run until every PE has halted or waits for a task: the device then waits for the
        host, as after an SDK call returns. A fault, a deadlock (a PE blocked on a receive or
        a send), a stream its PEs do not take, or the cycle limit raises RunError."""
        result = self.mesh.run(check=False)
        S = self.mesh.state
        pes = S.pe[: self.mesh.n_pe]
        placed = pes[:, K.P_IMG] >= 0
        waiting = np.isin(pes[placed, K.P_STATE], (K.S_HALT, K.S_IDLE)).all()
        streamed = all(st.done for st in self.mesh.streams())
        if result.status == "deadlock" and waiting and streamed:
            result.status, result.report = "done", ""
        if result.status != "done":
            raise RunError(result.status, result.report, result)
        return result

    def stop(self):
        """End the session; with stats_dir, write sim_stats.json there."""
        self._check(loaded=True, stopped=False)
        self._stopped = True
        if self._stats_dir is not None:
            path = Path(self._stats_dir) / "sim_stats.json"
            path.write_text(json.dumps(self.sim_stats(), indent=1) + "\n")

    def sim_stats(self) -> dict:
        """The totals in the Cerebras simulator's sim_stats.json keys."""
        st = self.mesh.stats()
        return {
            "cycle_count": int(st.cycles),
            "idle_ce_cycles": int(st.idle.sum()),
            "stall_count": int(st.stalled.sum()),
            "wavelet_count": int(st.wavelets_sent.sum()),
            "busy_ce_cycles": int(st.busy.sum()),
            "pe_count": int(st.placed.sum()),
        }

    def _check(self, loaded=None, started=None, stopped=None):
        if loaded and not self._loaded:
            raise SdkError("call load() first")
        if started and not self._started:
            raise SdkError("call run() first: it starts the device, as in the SDK")
        if stopped is False and self._stopped:
            raise SdkError("the runtime was stopped")

    # ------------------------------------------------------------------ memcpy
    def memcpy_h2d(self, dest: str, src, px, py, w, h, elem_per_pe, **options):
        """Copy src (w * h * elem_per_pe elements) into the first elem_per_pe elements of
        symbol dest on each PE of the rectangle. options: streaming, order, data_type,
        nonblock, as in the SDK."""
        self._check(loaded=True, stopped=False)
        order, data_type = _options("memcpy_h2d", options)
        if options.get("streaming", False):
            self._stream(dest, src, px, py, w, h, elem_per_pe, order, data_type)
            return
        shape = self._symbol_shape(dest)
        count = int(np.prod(shape))
        host = self._host_array(src, w, h, elem_per_pe, data_type, "src")
        per_pe = host.reshape((h, w, elem_per_pe), order=order.value)
        if elem_per_pe > count:
            raise SdkError(f"elem_per_pe = {elem_per_pe}: symbol {dest!r} has {count} elements")
        current = self.mesh.memcpy_d2h(dest, px, py, w, h).reshape(h, w, count).copy()
        current[..., :elem_per_pe] = self._to_symbol(per_pe, current.dtype, data_type)
        self.mesh.memcpy_h2d(dest, current.reshape((h, w, *shape)), px, py, w, h)

    def _stream(self, color, src, px, py, w, h, elem_per_pe, order, data_type):
        """memcpy_h2d(streaming=True): src into the fabric at the edge column px (Mesh.
        stream_h2d), elem_per_pe wavelets into each PE (px, py..py+h-1), then run the device
        until it waits for the host again."""
        self._check(started=True)
        if isinstance(color, str) or not isinstance(color, (int, np.integer)):
            raise SdkError(
                f"memcpy_h2d(streaming=True): dest is the color the wavelets go on (an int), "
                f"got {color!r}"
            )
        if w != 1 or px not in (0, self.mesh.width - 1):
            raise SdkError(
                f"memcpy_h2d(streaming=True): the host streams in at the mesh's West or East "
                f"edge: the rectangle must be one edge column (px = 0 or "
                f"{self.mesh.width - 1}, w = 1), got px = {px}, w = {w}"
            )
        host = self._host_array(src, w, h, elem_per_pe, data_type, "src")
        rows = host.reshape((h, w, elem_per_pe), order=order.value)[:, 0, :]
        try:
            self.mesh.stream_h2d(color, np.ascontiguousarray(rows), px, py)
        except (TypeError, ValueError, RunError) as e:
            raise SdkError(f"memcpy_h2d(streaming=True): {e}") from None
        self.last = self._run_device()

    def memcpy_d2h(self, dest, src: str, px, py, w, h, elem_per_pe, **options):
        """Copy the first elem_per_pe elements of symbol src on each PE of the rectangle into
        the host array dest (w * h * elem_per_pe elements, written in place)."""
        self._check(loaded=True, stopped=False)
        order, data_type = _options("memcpy_d2h", options)
        count = int(np.prod(self._symbol_shape(src)))
        if not isinstance(dest, np.ndarray) or not dest.flags.writeable:
            raise SdkError("memcpy_d2h: dest must be a writable NumPy array")
        self._host_array(dest, w, h, elem_per_pe, data_type, "dest")
        if elem_per_pe > count:
            raise SdkError(f"elem_per_pe = {elem_per_pe}: symbol {src!r} has {count} elements")
        got = self.mesh.memcpy_d2h(src, px, py, w, h).reshape(h, w, count)[..., :elem_per_pe]
        words = self._from_symbol(got, got.dtype, data_type)
        flat = words.ravel(order=order.value)
        dest.reshape(-1)[:] = flat.view(dest.dtype) if flat.dtype != dest.dtype else flat

    # ------------------------------------------------------------------ helpers
    def _symbol_shape(self, name):
        for image in self._linked.images:
            if name in image.symbols:
                return image.symbols[name].shape
        self.get_id(name)  # raises, listing the symbols

    @staticmethod
    def _host_array(arr, w, h, elem_per_pe, data_type, what):
        if not isinstance(data_type, MemcpyDataType):
            raise SdkError(f"data_type must be a MemcpyDataType, got {data_type!r}")
        arr = np.asarray(arr)
        if arr.size != w * h * elem_per_pe:
            raise SdkError(
                f"{what} has {arr.size} elements; w * h * elem_per_pe = {w * h * elem_per_pe}"
            )
        if arr.dtype.itemsize * 8 != data_type.value:
            raise SdkError(
                f"{what} has {arr.dtype.itemsize * 8}-bit elements ({arr.dtype}) but "
                f"data_type is {data_type.name}"
            )
        return arr.reshape(-1)

    @staticmethod
    def _to_symbol(values, dtype, data_type):
        """Host elements as the symbol's dtype: 32-bit words carry 16-bit values in their
        low half; same-size elements are taken bit for bit."""
        if dtype.itemsize == values.dtype.itemsize:
            return values.view(dtype) if values.dtype.kind != dtype.kind else values
        if dtype.itemsize == 2 and values.dtype.itemsize == 4:
            return (values.view(np.uint32) & 0xFFFF).astype(np.uint16).view(dtype)
        raise SdkError(
            f"a {dtype} symbol cannot be copied with {data_type.name} "
            f"({values.dtype.itemsize * 8}-bit host elements)"
        )

    @staticmethod
    def _from_symbol(values, dtype, data_type):
        if data_type.value == dtype.itemsize * 8:
            return values
        if dtype.itemsize == 2 and data_type is MemcpyDataType.MEMCPY_32BIT:
            return values.view(np.uint16).astype(np.uint32)
        raise SdkError(f"a {dtype} symbol cannot be copied with {data_type.name}")


def _options(what: str, options: dict):
    """(order, data_type) from the SDK's keyword options; nonblock is accepted (every call
    here is synchronous), streaming only by memcpy_h2d, anything else is an error."""
    unknown = set(options) - {"streaming", "order", "data_type", "nonblock"}
    if unknown:
        raise SdkError(f"{what}: unknown option(s) {', '.join(sorted(unknown))}")
    if options.get("streaming", False) and what != "memcpy_h2d":
        raise SdkError(f"{what}(streaming=True): only host-to-device streaming is modelled")
    order = options.get("order", MemcpyOrder.ROW_MAJOR)
    if not isinstance(order, MemcpyOrder):
        raise SdkError(f"{what}: order must be a MemcpyOrder, got {order!r}")
    return order, options.get("data_type", MemcpyDataType.MEMCPY_32BIT)
