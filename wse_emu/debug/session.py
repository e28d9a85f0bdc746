"""A debugging session on one loaded mesh: breakpoints, watchpoints, stepping one tile while
the rest of the mesh keeps the model consistent, state inspection, and the hang explainer.
It drives the engine through its debug hooks (misc[M_DEBUG] and friends); with no
breakpoint or watchpoint set, runs go at full speed. Every forward move goes through
_advance, which the recording for reverse execution logs (reverse.py, record.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .. import isa
from ..asm.disasm import disassemble
from ..engine import kinds as K
from ..engine.state import MAX_WATCH
from ..runtime import Mesh, RunResult
from .record import DebugError, Entry, Recording
from .reverse import ReverseMixin

DIR_NAMES = ("north", "east", "south", "west", "ramp")
WHY_LINES = 40  # `why` on a large mesh stays readable
STATE_CHARS = {
    K.S_OFF: ".",
    K.S_RUN: "R",
    K.S_RECV: "r",
    K.S_SEND: "s",
    K.S_IDLE: "i",
    K.S_HALT: "H",
    K.S_FAULT: "F",
    K.S_UTWAIT: "u",
}
MAP_SIDE = 32  # cells per side of the `mesh` map before it folds blocks of tiles
MAP_URGENCY = "FsruiRH."  # the state a folded cell shows: the first found among its tiles
NP_TYPES = {
    "f16": np.float16,
    "f32": np.float32,
    "i16": np.int16,
    "i8": np.int8,
    "i32": np.int32,
    "x": np.uint32,
}


@dataclass
class Breakpoint:
    num: int
    pcs: tuple  # a label may stand at several addresses: one per program instance
    where: str
    tiles: tuple | None  # None: every PE whose program holds pc
    cond: str | None = None
    temporary: bool = False
    enabled: bool = True
    hits: int = 0


@dataclass
class Watch:
    num: int
    kind: str  # "write", "color", "link"
    tile: tuple
    what: str
    lo: int = 0
    hi: int = 0
    dtype: str = "x"
    color: int = -1
    link: int = -1
    hits: int = 0
    extra: dict = field(default_factory=dict)


class Session(ReverseMixin):
    """lag: the lag window while debugging. 1 runs the mesh in near lockstep, so when the run
    stops every tile is within a cycle or so of the one that stopped it (with the default
    window of `run`, others could be hundreds of cycles ahead)."""

    def __init__(self, mesh: Mesh, lag: int = 1):
        if mesh.program is None:
            raise DebugError("no program loaded")
        self.mesh = mesh
        self.linked = mesh.program
        self.S = mesh.state
        self.S.cfg[K.CFG_LAG] = lag
        self.breakpoints: dict[int, Breakpoint] = {}
        self.watches: dict[int, Watch] = {}
        self._num = 1
        placed = np.flatnonzero(self.linked.pe_image >= 0)
        self.focus = self.xy(int(placed[0])) if len(placed) else (0, 0)
        self.last: RunResult | None = None
        self._at_break: int | None = None  # a tile stopped before a breakpoint's instruction
        self.rec: Recording | None = None  # reverse execution (record.py), off until `record`
        self._replaying = False
        self._interrupted = False
        self._config_version = 0  # bumped when breakpoints or watchpoints change
        self._config_cache = (-1, None)

    # ------------------------------------------------------------------ places
    def xy(self, p: int) -> tuple:
        return p % self.mesh.width, p // self.mesh.width

    def pe(self, x: int, y: int) -> int:
        if not (0 <= x < self.mesh.width and 0 <= y < self.mesh.height):
            size = f"{self.mesh.width}x{self.mesh.height}"
            raise DebugError(f"tile ({x},{y}) is outside the {size} mesh")
        return y * self.mesh.width + x

    def placed_tiles(self) -> list[tuple]:
        """The tiles a program is placed on, row by row."""
        return [self.xy(int(p)) for p in np.flatnonzero(self.linked.pe_image >= 0)]

    @property
    def fp(self) -> int:
        return self.pe(*self.focus)

    def image(self, p: int | None = None):
        p = self.fp if p is None else p
        img = self.linked.pe_image[p]
        if img < 0:
            raise DebugError(f"no program is placed on tile {self.xy(p)}")
        return self.linked.images[img]

    def set_focus(self, x: int, y: int):
        self.pe(x, y)
        self.focus = (x, y)

    def locations(self, text: str, tiles: tuple | None) -> list[tuple[int, str]]:
        """pcs named by a label or task, a source line number, or *ADDR / a number."""
        text = text.strip()
        images = [self.image(self.pe(*t)) for t in tiles] if tiles else self.linked.images
        if text.startswith("*") or re.fullmatch(r"0x[0-9a-fA-F]+", text):
            try:
                pc = int(text.lstrip("*"), 0)
            except ValueError:
                raise DebugError(f"{text!r} is not an address (*N or 0xN)") from None
            if not 0 <= pc < len(self.linked.code):
                raise DebugError(f"no instruction at address {pc}")
            return [(pc, f"*{pc}")]
        m = re.fullmatch(r"(?:(.+):)?(\d+)", text)
        if m:  # LINE of the program's file, or FILE:LINE of a file it includes
            name, line = m.group(1), int(m.group(2))
            pcs = [
                (i, f"line {line}" if name is None else text)
                for i, pos in enumerate(self.linked.positions)
                if pos.line == line and _same_file(pos.src.filename, name, self.linked.filename)
            ]
            if not pcs:
                raise DebugError(f"no instruction on line {line} of {name or self.linked.filename}")
            return pcs
        pcs = sorted({(im.labels[text], text) for im in images if text in im.labels})
        if not pcs:
            known = sorted({n for im in images for n in im.labels})
            raise DebugError(f"no label or task {text!r}; known: {', '.join(known)}")
        return pcs

    # ------------------------------------------------------------------ breakpoints
    def add_breakpoint(self, spec: str, tiles, cond=None, temporary=False) -> Breakpoint:
        if cond:
            try:
                compile(cond, "<condition>", "eval")
            except SyntaxError as e:
                raise DebugError(f"bad condition {cond!r}: {e.msg}") from None
        locs = self.locations(spec, tiles)
        pcs = tuple(pc for pc, _ in locs)
        tiles = tuple(tiles) if tiles else None
        bp = Breakpoint(self._num, pcs, locs[0][1], tiles, cond, temporary)
        self._num += 1
        self.breakpoints[bp.num] = bp
        self._changed()
        return bp

    def delete(self, nums=None):
        if not nums:
            self.breakpoints.clear()
            self.watches.clear()
        for n in nums or ():
            if n in self.breakpoints:
                del self.breakpoints[n]
            elif n in self.watches:
                del self.watches[n]
            else:
                raise DebugError(f"no breakpoint or watchpoint {n}")
        self._changed()

    def enable(self, nums, on: bool):
        for n in nums:
            if n not in self.breakpoints:
                raise DebugError(f"no breakpoint {n}")
            self.breakpoints[n].enabled = on
        self._changed()

    # ------------------------------------------------------------------ watchpoints
    def add_watch(self, w: Watch) -> Watch:
        kinds = [v for v in self.watches.values() if v.kind == w.kind]
        if len(kinds) >= MAX_WATCH:
            raise DebugError(f"at most {MAX_WATCH} {w.kind} watchpoints")
        w.num = self._num
        self._num += 1
        self.watches[w.num] = w
        self._changed()
        return w

    def watch_symbol(self, text: str) -> Watch:
        """SYMBOL, SYMBOL[i] or an address (bytes, watched as one 32-bit word)."""
        m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*(?:\[\s*(\d+)\s*\])?\s*", text)
        image = self.image()
        if m and m.group(1) in image.symbols:
            sym = image.symbols[m.group(1)]
            size = isa.DTYPE_SIZE[sym.dtype]
            if m.group(2) is None:
                lo, hi, what = sym.addr, sym.addr + sym.nbytes, sym.name
            else:
                i = int(m.group(2))
                if i >= sym.count:
                    raise DebugError(f"{sym.name} has {sym.count} elements")
                lo, hi, what = sym.addr + i * size, sym.addr + (i + 1) * size, f"{sym.name}[{i}]"
            dtype = sym.dtype if sym.dtype != "bf16" else "x"
            return self.add_watch(Watch(0, "write", self.focus, what, lo, hi, dtype))
        try:
            addr = int(text, 0)
        except ValueError:
            raise DebugError(
                f"{text!r} is neither a symbol of {image.program!r} nor an address"
            ) from None
        self._check_sram(addr, addr + 4, f"address {addr}")
        return self.add_watch(Watch(0, "write", self.focus, f"*{addr}", addr, addr + 4, "x"))

    def watch_color(self, color: int, tile: tuple) -> Watch:
        self.pe(*tile)
        if not 0 <= color < self.mesh.arch["colors"]:
            raise DebugError(f"color {color} out of range")
        return self.add_watch(Watch(0, "color", tile, f"color {color} at {tile}", color=color))

    def watch_link(self, tile: tuple, direction: str) -> Watch:
        if direction not in DIR_NAMES[:4]:
            raise DebugError(f"direction must be one of {', '.join(DIR_NAMES[:4])}")
        link = self.pe(*tile) * 4 + DIR_NAMES.index(direction)
        return self.add_watch(Watch(0, "link", tile, f"link {tile} {direction}", link=link))

    # ------------------------------------------------------------------ engine sync
    def _changed(self):
        """Breakpoints or watchpoints changed: tell the engine, and the recording's log."""
        self._config_version += 1
        self._sync()

    def _sync(self, stepping=False):
        S = self.S
        S.bp[:] = 0
        for bp in self.breakpoints.values():
            if not bp.enabled:
                continue
            for pc in bp.pcs:
                pes = (
                    [self.pe(*t) for t in bp.tiles]
                    if bp.tiles
                    else [p for p in range(self.mesh.n_pe) if self._holds(p, pc)]
                )
                S.bp[pes, pc] = 1
        for arr in (S.watch, S.cwatch, S.lwatch):
            arr[:] = -1
        i = {"write": 0, "color": 0, "link": 0}
        for w in self.watches.values():
            k = i[w.kind]
            i[w.kind] += 1
            if w.kind == "write":
                S.watch[k] = (self.pe(*w.tile), w.lo, w.hi)
            elif w.kind == "color":
                S.cwatch[k] = (self.pe(*w.tile), w.color)
            else:
                S.lwatch[k] = w.link
        S.misc[K.M_DEBUG] = int(bool(self.breakpoints or self.watches or stepping))

    def _holds(self, p, pc) -> bool:
        img = self.linked.pe_image[p]
        if img < 0:
            return False
        im = self.linked.images[img]
        return im.base <= pc < im.base + len(im.code)

    # ------------------------------------------------------------------ running
    def _engine(self, max_cycles=None) -> RunResult:
        self.last = self.mesh.run(max_cycles=max_cycles, check=False)
        return self.last

    def cont(self, max_cycles=None) -> list[str]:
        """Run until a breakpoint or watchpoint triggers, or the run ends (or the slowest
        running tile passes max_cycles)."""
        return self._advance("cont", max_cycles or 0)

    def _advance(self, kind: str, arg: int = 0) -> list[str]:
        """One forward unit (record.Entry), logged when recording."""
        entry = None
        if self.rec is not None and not self._replaying:
            entry = Entry(kind, arg, self.focus, self._at_break, self._config())
        self._interrupted = False
        try:
            if kind == "step":
                out = self._step_one()
            elif kind == "finish":
                out = self._finish_one()
            else:
                self._sync()
                out = self._resume(arg or None)
        except KeyboardInterrupt:  # between engine calls: the unit may be half done
            self._interrupted = True
            out = ["Interrupted.", self.status_line()]
        if entry is not None:
            self.rec.add(entry, self._mark(), replayable=not self._interrupted)
        return out

    def _resume(self, max_cycles=None) -> list[str]:
        """Run on; Ctrl-C stops the run between engine batches and returns to the prompt."""
        try:
            return self._run_until_stop(max_cycles)
        except KeyboardInterrupt:
            self.S.misc[K.M_STEP_PE] = -1
            self.S.misc[K.M_FINISH_PE] = -1
            # a skip the engine has not used yet would let that PE pass its next breakpoint
            # unseen; without it, at worst the breakpoint it sat on reports once more
            self.S.misc[K.M_SKIP_PE] = -1
            self._sync()
            self._interrupted = True
            return ["Interrupted.", self.status_line()]

    def _run_until_stop(self, max_cycles=None) -> list[str]:
        misc = self.S.misc
        if self._at_break is not None:  # going on steps over the breakpoint it stopped at
            if misc[K.M_SKIP_PE] < 0:
                misc[K.M_SKIP_PE] = self._at_break
            self._at_break = None
        while True:
            res = self._engine(max_cycles)
            if res.status != "stopped":
                misc[K.M_DEBUG] = int(bool(self.breakpoints or self.watches))
                return self._ended(res)
            why = int(misc[K.M_STOP_WHY])
            p = int(misc[K.M_STOP_PE])
            if why == K.STOP_BREAK:
                out = self._at_breakpoint(p)
            elif why == K.STOP_WATCH:
                out = self._at_watch(p, int(misc[K.M_EV_A]))
            elif why == K.STOP_COLOR:
                out = self._at_color(p)
            elif why == K.STOP_LINK:
                out = self._at_link(p)
            elif why in (K.STOP_STEP, K.STOP_FINISH):
                self._sync()
                return [self.status_line(p)]
            else:
                out = None
            if out is not None:
                self.focus = self.xy(p)
                self._sync()
                return out + [self.status_line(p)]

    def _skip(self, p):
        self.S.misc[K.M_SKIP_PE] = p

    def _at_breakpoint(self, p):
        pc = int(self.S.pe[p, K.P_PC])
        for bp in self.breakpoints.values():
            if pc not in bp.pcs or not bp.enabled or (bp.tiles and self.xy(p) not in bp.tiles):
                continue
            if bp.cond and not self._condition(bp.cond, p):
                continue
            bp.hits += 1
            if bp.temporary:
                del self.breakpoints[bp.num]
                self._config_version += 1
            self._at_break = p
            kind = "Temporary breakpoint" if bp.temporary else "Breakpoint"
            return [f"{kind} {bp.num}, {bp.where} on tile {self.xy(p)}"]
        self._skip(p)  # condition false, or another tile's breakpoint: go on
        return None

    def _condition(self, cond, p) -> bool:
        """COND written as in gdb or Python: && || ! and and or not."""
        cond = re.sub(r"!(?!=)", " not ", cond.replace("&&", " and ").replace("||", " or "))
        env = {f"r{i}": int(self.S.regs[p, i]) for i in range(isa.N_REGS)}
        env.update({f"f{i}": float(self.S.regf[p, i]) for i in range(isa.N_REGS)})
        x, y = self.xy(p)
        env.update(pc=int(self.S.pe[p, K.P_PC]), x=x, y=y, clock=int(self.S.pe[p, K.P_CLOCK]))
        try:
            return bool(eval(cond, {"__builtins__": {}}, env))  # noqa: S307 (user's own input)
        except Exception as e:  # noqa: BLE001 (any error in the user's condition)
            raise DebugError(f"condition {cond!r}: {e}") from None

    def _watch_value(self, w: Watch, p):
        raw = self.S.sram8[p, w.lo : w.hi].copy()
        if w.dtype in NP_TYPES and (w.hi - w.lo) % np.dtype(NP_TYPES[w.dtype]).itemsize == 0:
            vals = raw.view(NP_TYPES[w.dtype])
            return vals[0] if len(vals) == 1 else vals
        return raw

    def _at_watch(self, p, k):
        """Stopped before an instruction that writes a watched range: run it, compare."""
        ws = [w for w in self.watches.values() if w.kind == "write"]
        w = ws[k]
        before = self.S.sram8[p, w.lo : w.hi].copy()
        old = self._watch_value(w, p)
        pc = int(self.S.pe[p, K.P_PC])
        self._run_one(p)
        if np.array_equal(before, self.S.sram8[p, w.lo : w.hi]):
            return None  # written with the same value
        new = self._watch_value(w, p)
        w.hits += 1
        return [
            f"Watchpoint {w.num}: {w.what} on tile {self.xy(p)} written by pc {pc} "
            f"({self.linked.where(pc)})",
            f"Old value = {self._fmt(old)}",
            f"New value = {self._fmt(new)}",
        ]

    def _run_one(self, p):
        """Let PE p complete the instruction at its pc (the mesh runs what it needs)."""
        misc = self.S.misc
        misc[K.M_SKIP_PE] = p
        misc[K.M_STEP_PE] = p
        misc[K.M_STEP_LEFT] = int(self.S.pe[p, K.P_INSTR]) + 1
        while True:
            res = self._engine()
            if res.status != "stopped" or int(misc[K.M_STOP_WHY]) in (K.STOP_STEP, K.STOP_FINISH):
                break
            misc[K.M_SKIP_PE] = int(misc[K.M_STOP_PE])  # pass other stops on the way
        misc[K.M_STEP_PE] = -1

    @staticmethod
    def _fmt(v):
        if isinstance(v, np.ndarray) and v.dtype == np.uint8:
            return " ".join(f"{b:02x}" for b in v)
        return str(v)

    def _at_color(self, q):
        misc = self.S.misc
        payload, src, t, color = (int(misc[i]) for i in (K.M_EV_A, K.M_EV_B, K.M_EV_C, K.M_EV_D))
        w = next(
            (
                w
                for w in self.watches.values()
                if w.kind == "color" and self.pe(*w.tile) == q and w.color == color
            ),
            None,
        )
        if w:
            w.hits += 1
        pay = payload & 0xFFFFFFFF
        f = np.array([pay], np.uint32).view(np.float32)[0]
        h = np.array([pay & 0xFFFF], np.uint16).view(np.float16)[0]
        return [
            f"Watchpoint {w.num if w else '?'}: a wavelet of color {color} landed at tile "
            f"{self.xy(q)} at cycle {t}, sent by tile {self.xy(src)}",
            f"payload 0x{pay:08x} (int {np.int32(np.uint32(pay))}, f32 {f}, index "
            f"{pay >> 16} / f16 {h})",
        ]

    def _at_link(self, p):
        misc = self.S.misc
        link, src, wait, color = (int(misc[i]) for i in (K.M_EV_A, K.M_EV_B, K.M_EV_C, K.M_EV_D))
        node, d = divmod(link, 4)
        w = next((w for w in self.watches.values() if w.kind == "link" and w.link == link), None)
        if w:
            w.hits += 1
        what = (
            (
                f"full: a wavelet of color {color} from tile {self.xy(src)} waited {wait} cycles "
                "for it"
            )
            if wait >= 0
            else (f"backpressured: tile {self.xy(src)} is blocked sending color {color} through it")
        )
        return [f"Watchpoint {w.num if w else '?'}: link {self.xy(node)} {DIR_NAMES[d]} is {what}"]

    def _ended(self, res: RunResult) -> list[str]:
        if res.status == "done":
            return [f"The program finished: every PE halted at cycle {res.cycles}."]
        if res.status == "cycle-limit":
            return [
                f"Stopped at cycle {int(self.S.misc[K.M_MAX_CYCLES])}.",
                self.status_line(self.fp),
            ]
        lines = [res.report]
        if res.status == "fault":
            p = int(self.S.misc[K.M_FAULT_PE])
            self.focus = self.xy(p)
        elif res.status == "deadlock":
            lines += self.why(self.fp if self._stuck(self.fp) else self._first_stuck())
        return lines

    def program_status(self) -> str:
        """done (every placed tile halted), fault, deadlock, or running."""
        states = self.S.pe[: self.mesh.n_pe][self.linked.pe_image >= 0, K.P_STATE]
        if (states == K.S_FAULT).any():
            return "fault"
        if (states == K.S_HALT).all():
            return "done"
        if self.last is not None and self.last.status == "deadlock":
            return "deadlock"
        return "running"

    def _stuck(self, p) -> bool:
        return int(self.S.pe[p, K.P_STATE]) in (K.S_RECV, K.S_SEND, K.S_IDLE, K.S_UTWAIT)

    def _first_stuck(self) -> int:
        for p in range(self.mesh.n_pe):
            if self.linked.pe_image[p] >= 0 and self._stuck(p):
                self.focus = self.xy(p)
                return p
        return self.fp

    def stepi(self, n: int = 1) -> list[str]:
        """n instructions of the focused tile, one engine stop each. Where the other tiles
        are at a stop depends on the stops before it, so stepi 4 is four stepi 1: going
        back and stepping again then reaches the same state bit for bit."""
        p = self.fp
        self._runs_on(p)
        out = []
        for _ in range(n):
            out = self._advance("step")
            if self._interrupted or not self._stepped(p):
                break
            if int(self.S.pe[p, K.P_STATE]) in (K.S_HALT, K.S_FAULT, K.S_OFF):
                break
        return out

    def _runs_on(self, p):
        state = int(self.S.pe[p, K.P_STATE])
        if state in (K.S_HALT, K.S_FAULT, K.S_OFF):
            raise DebugError(f"tile {self.xy(p)} is {K.STATE_NAMES[state]}: it runs no more")

    def _stepped(self, p) -> bool:
        """Did the last unit end with tile p's step (not a breakpoint, an event or the end)?"""
        misc = self.S.misc
        return (
            self.last is not None
            and self.last.status == "stopped"
            and int(misc[K.M_STOP_WHY]) == K.STOP_STEP
            and int(misc[K.M_STOP_PE]) == p
        )

    def _step_one(self) -> list[str]:
        p = self.fp
        self._runs_on(p)
        misc = self.S.misc
        self._sync(stepping=True)
        misc[K.M_SKIP_PE] = p
        misc[K.M_STEP_PE] = p
        misc[K.M_STEP_LEFT] = int(self.S.pe[p, K.P_INSTR]) + 1
        out = self._resume()
        misc[K.M_STEP_PE] = -1
        return out

    def step(self) -> list[str]:
        """Instructions of the focused tile until its source line changes."""
        return self._step_lines(over_calls=False)

    def next(self) -> list[str]:
        """As step, but a call runs to its return: stop at the next source line at the same
        call depth or shallower (gdb's next)."""
        return self._step_lines(over_calls=True)

    def _step_lines(self, over_calls: bool) -> list[str]:
        p = self.fp
        depth = int(self.S.pe[p, K.P_SP]) if over_calls else 1 << 30
        line = self._line_of(int(self.S.pe[p, K.P_PC]))
        for _ in range(100_000):
            out = self.stepi(1)
            if not out or not out[-1].startswith("tile") or self.last.status != "stopped":
                return out
            if int(self.S.misc[K.M_STOP_WHY]) != K.STOP_STEP:
                return out
            here = self._line_of(int(self.S.pe[p, K.P_PC]))
            if int(self.S.pe[p, K.P_SP]) <= depth and here != line:
                return out
        return out

    def _line_of(self, pc: int) -> tuple:
        """(file, line) of an instruction: code may come from included files."""
        pos = self.linked.positions[pc] if 0 <= pc < len(self.linked.positions) else None
        return (pos.src.filename, pos.line) if pos else ("", 0)

    def backtrace(self) -> list[str]:
        """The focused tile's frames, innermost first: pc, then each call's return address."""
        p = self.fp
        sp = int(self.S.pe[p, K.P_SP])
        pcs = [int(self.S.pe[p, K.P_PC])] + [int(self.S.stack[p, k]) - 1 for k in range(sp)][::-1]
        im = self.image(p)
        task = int(self.S.pe[p, K.P_TASK])
        out = []
        for n, pc in enumerate(pcs):
            label = max(((a, name) for name, a in im.labels.items() if a <= pc), default=(0, "?"))[
                1
            ]
            out.append(f"#{n}  pc {pc} in {label} ({self.linked.where(pc)})")
        out.append(f"    task: {im.tasks[task][0] if task >= 0 else 'main'}")
        return out

    def register(self, name: str) -> str:
        """$rN, $fN, $pc, $clock or a special ($x, $cycle, ...) of the focused tile."""
        p = self.fp
        if m := re.fullmatch(r"[rf](\d+)", name):
            r = int(m.group(1))
            if r >= isa.N_REGS:
                raise DebugError(f"no register ${name}: r0-r{isa.N_REGS - 1}, f0-f{isa.N_REGS - 1}")
            v = self.S.regs[p, r] if name[0] == "r" else self.S.regf[p, r]
            return f"${name} = {v}"
        if name in ("pc", "clock"):
            return f"${name} = {int(self.S.pe[p, K.P_PC if name == 'pc' else K.P_CLOCK])}"
        raise DebugError(f"no register ${name}; registers: $r0-$r15, $f0-$f15, $pc, $clock")

    def until(self, cycle: int) -> list[str]:
        return self.cont(max_cycles=cycle)

    def finish(self) -> list[str]:
        return self._advance("finish")

    def _finish_one(self) -> list[str]:
        p = self.fp
        if int(self.S.pe[p, K.P_STATE]) in (K.S_HALT, K.S_FAULT, K.S_OFF):
            raise DebugError(f"tile {self.focus} runs no task")
        self._sync(stepping=True)
        self.S.misc[K.M_FINISH_PE] = p
        out = self._resume()
        self.S.misc[K.M_FINISH_PE] = -1
        return out

    # ------------------------------------------------------------------ state
    def state_text(self, p) -> str:
        return self.mesh.pe_state(p)

    def status_line(self, p=None) -> str:
        p = self.fp if p is None else p
        pc = int(self.S.pe[p, K.P_PC])
        task = int(self.S.pe[p, K.P_TASK])
        tname = "main" if task < 0 else self.image(p).tasks[task][0]
        return (
            f"tile {self.xy(p)} pc {pc} ({self.linked.where(pc)}) "
            f"clock {int(self.S.pe[p, K.P_CLOCK])} task {tname}: {self.state_text(p)}"
        )

    def mesh_map(self, side: int = MAP_SIDE) -> list[str]:
        """One character per tile, rows and columns numbered; a mesh wider or taller than
        `side` tiles folds blocks of tiles into one cell showing the most urgent state
        among them (F s r u i R H .), so a wafer-sized mesh stays readable."""
        h, w = self.mesh.height, self.mesh.width
        st = self.S.pe[: self.mesh.n_pe, K.P_STATE].reshape(h, w)
        bx, by = -(-w // side), -(-h // side)  # tiles per cell
        urgency = {c: i for i, c in enumerate(MAP_URGENCY)}
        rank = np.array([urgency[STATE_CHARS[s]] for s in range(max(STATE_CHARS) + 1)])
        cells = rank[st]
        fx, fy = self.focus
        out = ["    " + "".join(f"{x:>2} " for x in range(0, w, bx))]
        for y0 in range(0, h, by):
            row = []
            for x0 in range(0, w, bx):
                c = MAP_URGENCY[int(cells[y0 : y0 + by, x0 : x0 + bx].min())]
                focus = x0 <= fx < x0 + bx and y0 <= fy < y0 + by
                row.append(f"[{c}]" if focus else f" {c} ")
            out.append(f"{y0:>3} " + "".join(row))
        legend = (
            "R running  r blocked on receive  s blocked on send  i waiting for a task  "
            "u waiting for a microthread  H halted  F faulted  . no program  [ ] focus"
        )
        if bx > 1 or by > 1:
            legend += (
                f"\neach cell is {bx} x {by} tiles (numbered by its first), showing the most "
                "urgent state among them: " + " ".join(MAP_URGENCY)
            )
        return out + [legend]

    def registers(self) -> list[str]:
        p = self.fp
        out = []
        for i in range(isa.N_REGS):
            v = int(self.S.regs[p, i])
            f = float(self.S.regf[p, i])
            out.append(f"r{i:<3} {v:>12}  0x{v & 0xFFFFFFFF:08x}  f32 {f:.7g}")
        x, y = self.xy(p)
        out.append(
            f"%x {x}  %y {y}  %width {self.mesh.width}  %height {self.mesh.height}  "
            f"%cycle {int(self.S.pe[p, K.P_CLOCK])}"
        )
        out.append(f"pc {int(self.S.pe[p, K.P_PC])}  call depth {int(self.S.pe[p, K.P_SP])}")
        return out

    def dsds(self) -> list[str]:
        p = self.fp
        out = []
        for d in range(isa.N_DSDS):
            row = [int(v) for v in self.S.dsd[p, d]]
            kind, a, n = row[K.DSD_KIND], row[K.DSD_ADDR], row[K.DSD_LEN]
            if kind == K.DK_MEM:
                dims = [(row[K.DSD_EXT + k], row[K.DSD_STRIDE + k]) for k in range(K.MAX_DIMS)]
                while len(dims) > 1 and dims[-1][0] == 1:
                    dims.pop()
                if len(dims) == 1:
                    shape = f"stride {dims[0][1]}"
                else:  # outermost first, as an array shape reads
                    shape = "extents " + " x ".join(str(e) for e, _ in reversed(dims))
                    shape += "  strides " + ", ".join(str(s) for _, s in reversed(dims))
                    shape += " (outermost first)"
                out.append(f"d{d:<3} memory  address {a}  length {n}  {shape}")
            elif kind == K.DK_FIN:
                out.append(f"d{d:<3} fabric in   color {a}  length {n}")
            elif kind == K.DK_FOUT:
                out.append(f"d{d:<3} fabric out  color {a}  length {n}")
        return out or ["no DSD set up"]

    def tasks(self) -> list[str]:
        p = self.fp
        im = self.image(p)
        act, blk = int(self.S.pe[p, K.P_TACT]), int(self.S.pe[p, K.P_TBLK])
        cur = int(self.S.pe[p, K.P_TASK])
        out = [f"{'id':>3} {'task':<16} {'entry':>6}  {'bound to':<10} activated blocked"]
        controls = {t: cid for cid, t in im.controls.items()}
        for t, (name, entry, color) in enumerate(im.tasks):
            bound = f"color {color}" if color >= 0 else "local"
            if t in controls:
                bound = f"control {controls[t]}"
            pending = (
                (act >> t) & 1
                if color < 0
                else int(self.S.qcount[p * self.mesh.arch["colors"] + color] > 0)
            )
            mark = "*" if t == cur else " "
            yes_no = ("yes" if pending else "no", "yes" if (blk >> t) & 1 else "no")
            out.append(
                f"{mark}{t:>2} {name:<16} {entry:>6}  {bound:<10} {yes_no[0]:>9} {yes_no[1]:>7}"
            )
        return out if im.tasks else ["no tasks; running main" if cur < 0 else ""]

    def queues(self) -> list[str]:
        p = self.fp
        nc = self.mesh.arch["colors"]
        S = self.S
        out = []
        for c in range(nc):
            qi = p * nc + c
            cap = int(S.qoff[qi + 1] - S.qoff[qi])
            if not cap:
                continue
            n = int(S.qcount[qi])
            items = []
            for j in range(n):
                slot = int(S.qoff[qi] + (S.qhead[qi] + j) % cap)
                items.append(f"0x{int(S.qpay[slot]):08x}@{int(S.qtime[slot])}")
            out.append(f"color {c:>2}: {n} waiting" + (": " + " ".join(items) if items else ""))
        return out or ["this tile receives on no color"]

    def routes(self) -> list[str]:
        p = self.fp
        nc = self.mesh.arch["colors"]
        out = []
        for c in range(nc):
            i = p * nc + c
            rx, tx = self.S.rx[i], self.S.tx[i]
            if not (rx.any() or tx.any()):
                continue
            cur = int(self.S.rpos[i])
            parts = []
            for pos in range(isa.SWITCH_POSITIONS):
                if rx[pos] or tx[pos] or pos == cur:
                    mark = "*" if pos == cur else ""
                    dirs = f"rx {self._dirs(rx[pos])} tx {self._dirs(tx[pos])}"
                    parts.append(f"{mark}pos {pos}: {dirs}")
            out.append(f"color {c:>2}: " + "; ".join(parts))
        return out or ["no routes on this tile"]

    @staticmethod
    def _dirs(bits) -> str:
        names = [d for i, d in enumerate(DIR_NAMES) if int(bits) >> i & 1]
        return ",".join(names) or "-"

    def tile_stats(self) -> list[str]:
        s = self.mesh.stats()
        x, y = self.focus
        return [
            f"cycles {int(self.S.pe[self.fp, K.P_CLOCK])} (mesh {s.cycles}); busy "
            f"{s.busy[y, x]}, stalled {s.stalled[y, x]}, idle {s.idle[y, x]}",
            f"instructions {s.instructions[y, x]}, wavelets sent {s.wavelets_sent[y, x]} "
            f"({s.hops[y, x]} hops), received {s.wavelets_received[y, x]}",
            f"SRAM {s.sram_read[y, x]} B read, {s.sram_written[y, x]} B written",
        ]

    def examine(self, count: int, fmt: str, where: str) -> list[str]:
        if fmt not in NP_TYPES and fmt != "bf16":
            raise DebugError("format must be one of f16 bf16 f32 i16 i8 i32 x")
        addr = self._address(where)
        size = 2 if fmt == "bf16" else np.dtype(NP_TYPES[fmt]).itemsize
        end = addr + count * size
        self._check_sram(addr, end, where)
        raw = self.S.sram8[self.fp, addr:end].copy()
        if fmt == "bf16":
            import ml_dtypes

            vals = raw.view(ml_dtypes.bfloat16)
        else:
            vals = raw.view(NP_TYPES[fmt])
        out, per = [], 8
        for i in range(0, count, per):
            chunk = vals[i : i + per]
            text = " ".join(f"0x{int(v):08x}" if fmt == "x" else str(v) for v in chunk)
            out.append(f"{addr + i * size:>6}: {text}")
        return out

    def _check_sram(self, lo: int, hi: int, where: str):
        """Bytes [lo, hi) must be in SRAM and in the row the emulator keeps of it (the data
        the program declares: memory.sram_footprint)."""
        size, row = self.mesh.arch["sram_bytes"], self.S.sram8.shape[1]
        if lo < 0 or hi > size:
            raise DebugError(f"{where} is outside SRAM (bytes {lo}..{hi}, SRAM 0..{size})")
        if hi > row:
            raise DebugError(
                f"{where}: bytes {lo}..{hi} are beyond the {row} bytes of data the program "
                "declares; the emulator keeps no SRAM past them (an access there faults)"
            )

    def _address(self, where: str) -> int:
        where = where.strip()
        image = self.image()
        m = re.fullmatch(r"([A-Za-z_]\w*)\s*(?:\[\s*(\d+)\s*\])?", where)
        if m and m.group(1) in image.symbols:
            sym = image.symbols[m.group(1)]
            return sym.addr + int(m.group(2) or 0) * isa.DTYPE_SIZE[sym.dtype]
        try:
            return int(where, 0)
        except ValueError:
            raise DebugError(f"{where!r} is neither a symbol nor an address") from None

    def print_symbol(self, expr: str) -> str:
        if expr.strip().startswith("$"):
            return self.register(expr.strip()[1:])
        m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*(\[[^\]]*\])?\s*", expr)
        image = self.image()
        if not m or m.group(1) not in image.symbols:
            raise DebugError(
                f"no symbol {expr.strip()!r} in program {image.program!r}; "
                f"symbols: {', '.join(image.symbols)}"
            )
        x, y = self.focus
        arr = self.mesh.memcpy_d2h(m.group(1), x, y, 1, 1)[0, 0]
        if m.group(2):
            try:
                idx = tuple(
                    slice(*[int(v) if v.strip() else None for v in part.split(":")])
                    if ":" in part
                    else int(part)
                    for part in m.group(2)[1:-1].split(",")
                )
                arr = arr[idx]
            except (ValueError, IndexError) as e:
                raise DebugError(f"bad index {m.group(2)}: {e}") from None
        return f"{m.group(1)}{m.group(2) or ''} = {np.array2string(np.asarray(arr), threshold=64)}"

    def listing(self, around: int | None = None, span: int = 5, pc: int | None = None) -> list[str]:
        """Lines around `around` (or the line of instruction pc, or of the focused tile's
        pc), in the file that line is in (the program's, or one it includes)."""
        here = int(self.S.pe[self.fp, K.P_PC])
        pos = self.linked.positions[pc if pc is not None else here]
        lines = pos.src.text.splitlines()
        cur = self.linked.positions[here]
        cur = cur.line if cur.src.filename == pos.src.filename else 0
        mid = around or pos.line
        if not 1 <= mid <= len(lines):
            raise DebugError(f"line {mid} is outside the program (1-{len(lines)})")
        out = [] if pos.src.filename == self.linked.filename else [f"{pos.src.filename}:"]
        for n in range(max(1, mid - span), min(len(lines), mid + span) + 1):
            out.append(f"{'=>' if n == cur else '  '}{n:>5}  {lines[n - 1]}")
        return out

    def disassembly(self, span: int = 6) -> list[str]:
        im = self.image()
        pc = int(self.S.pe[self.fp, K.P_PC])
        names = {v: k for k, v in im.labels.items()}
        tasks = [t[0] for t in im.tasks]
        out = []
        lo, hi = max(im.base, pc - span), min(im.base + len(im.code), pc + span + 1)
        for a in range(lo, hi):
            if a in names:
                out.append(f"        {names[a]}:")
            mark = "=>" if a == pc else "  "
            out.append(f"{mark}{a:>6}  {disassemble(self.linked.code[a], names, tasks)}")
        return out

    # ------------------------------------------------------------------ why
    def upstream(self, p: int, color: int) -> list[int]:
        """PEs whose wavelets of color can reach p at the current switch positions."""
        nc = self.mesh.arch["colors"]
        S = self.S
        seen, todo, sources = {p}, [p], []
        while todo:
            n = todo.pop()
            i = n * nc + color
            rx = int(S.rx[i, S.rpos[i]])
            if rx >> 4 & 1 and n != p:
                sources.append(n)
            x, y = self.xy(n)
            for d, (dx, dy) in enumerate(((0, -1), (1, 0), (0, 1), (-1, 0))):
                if not rx >> d & 1:
                    continue
                mx, my = x + dx, y + dy
                if not (0 <= mx < self.mesh.width and 0 <= my < self.mesh.height):
                    continue
                m = my * self.mesh.width + mx
                j = m * nc + color
                if int(S.tx[j, S.rpos[j]]) >> ((d + 2) % 4) & 1 and m not in seen:
                    seen.add(m)
                    todo.append(m)
        return sorted(sources)

    def why(self, p: int | None = None) -> list[str]:
        """The wait-for graph from tile p: on whom it waits, on whom each of those waits, ...
        following every upstream sender, until tiles that run, halted or faulted, or a
        cycle (a deadlock). A tile reached twice is explained once; a tile with several
        senders indents their explanations. At most WHY_LINES lines."""
        p = self.fp if p is None else p
        out, done = [], set()
        todo = [(p, (), 0)]  # (tile, the chain that led to it, indent)
        while todo and len(out) < WHY_LINES:
            q, path, indent = todo.pop()
            pad = "  " * indent
            if q in path:
                loop = path[path.index(q) :] + (q,)
                cycle = " -> ".join(str(self.xy(t)) for t in loop)
                out.append(f"{pad}deadlock: a cycle of waits: {cycle}")
                continue
            if q in done:
                out.append(f"{pad}tile {self.xy(q)}: see above")
                continue
            done.add(q)
            lines, nexts = self._waits_on(q)
            out += [pad + line for line in lines]
            sub = indent + (len(nexts) > 1)
            todo += [(n, path + (q,), sub) for n in reversed(nexts)]
        if todo:
            out.append(f"... (more than {WHY_LINES} lines; `why X,Y` on a tile above goes on)")
        return out

    def _waits_on(self, p: int) -> tuple[list[str], list[int]]:
        """What tile p waits for, in words, and the tiles that could end the wait."""
        state = int(self.S.pe[p, K.P_STATE])
        head = f"tile {self.xy(p)} pc {int(self.S.pe[p, K.P_PC])}"
        if state == K.S_RECV:
            color = int(self.S.pe[p, K.P_WAIT])
            srcs = self.upstream(p, color)
            if not srcs:
                return [
                    f"{head} waits for color {color}, but no route brings color {color} to it"
                ], []
            live = [q for q in srcs if int(self.S.pe[q, K.P_STATE]) not in (K.S_HALT, K.S_OFF)]
            names = ", ".join(str(self.xy(q)) for q in srcs)
            lines = [f"{head} waits for a wavelet of color {color}; it can come from {names}"]
            if not live:
                lines.append("  every tile that could send it has halted: it will never come")
            return lines, live
        if state == K.S_SEND:
            q = int(self.S.pe[p, K.P_WAITPE])
            color = int(self.S.pe[p, K.P_WAIT])
            return [f"{head} waits for room in tile {self.xy(q)}'s queue for color {color}"], [q]
        if state == K.S_IDLE:
            im = self.image(p)
            bound = [(t, n, c) for t, (n, _, c) in enumerate(im.tasks) if c >= 0]
            blk = int(self.S.pe[p, K.P_TBLK])
            text = (
                ", ".join(
                    f"{n} on color {c}" + (" (blocked)" if blk >> t & 1 else "")
                    for t, n, c in bound
                )
                or "none"
            )
            return [f"{head} waits for a task to start; data tasks: {text}"], []
        if state == K.S_UTWAIT:
            return [f"{head} is {self.mesh.pe_state(p)}"], []
        return [f"{head} is {K.STATE_NAMES[state]}"], []


def _same_file(filename: str, name: str | None, main: str) -> bool:
    """Whether a source file is the one a breakpoint names: the program's own file when no
    name is given, else a file whose path is name or ends with /name."""
    if name is None:
        return filename == main
    return filename == name or filename.endswith("/" + name)
