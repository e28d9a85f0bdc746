"""Assemble one program instance (a program with concrete params) into the 9-word binary
encoding of isa/instructions.toml, with its symbols, tasks and initial data."""

from __future__ import annotations

import difflib
import itertools
import math
import re
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from lark import Tree

from .. import isa
from .errors import AsmError, Pos
from .expr import Scope
from .parser import Program, ProgramSet

_REG = re.compile(r"^r(\d+)$")
_DSD = re.compile(r"^d(\d+)$")
RESERVED = (
    {f"r{i}" for i in range(isa.N_REGS)}
    | {f"d{i}" for i in range(isa.N_DSDS)}
    | {"WIDTH", "HEIGHT"}
)
INT32_MIN, UINT32_MAX = -(1 << 31), (1 << 32) - 1
MAX_DATA_BYTES = (1 << 31) - 1  # byte addresses are int32 immediates


@dataclass
class Symbol:
    name: str
    addr: int
    dtype: str
    shape: tuple
    line: int = 0

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.count * isa.DTYPE_SIZE[self.dtype]


@dataclass
class Image:
    """One assembled program instance; code addresses are absolute (base applied)."""

    program: str
    params: dict
    base: int
    code: np.ndarray  # int32[n, 9] binary encoding
    positions: list  # Pos per instruction
    symbols: dict  # name -> Symbol
    labels: dict  # name -> absolute pc
    tasks: list  # (name, absolute entry pc, color or -1)
    init_values: list = field(default_factory=list)  # (Symbol, checked values: list or scalar)
    data_bytes: int = 0
    queue_decls: list = field(default_factory=list)  # (dir, queue, color, pos) from .queue
    queues: dict = field(default_factory=dict)  # (dir, color) -> queue: the link's binding
    controls: dict = field(default_factory=dict)  # control task ID -> task index

    @cached_property
    def init(self) -> list:
        """(addr, bytes) of each initialised symbol; built on first use, so that a symbol too
        large for SRAM is refused by the linker's footprint check before it is allocated."""
        out = []
        for sym, values in self.init_values:
            full = values if isinstance(values, list) else np.full(sym.count, values)
            out.append((sym.addr, dtype_array(full, sym.dtype).tobytes()))
        return out

    @property
    def main(self) -> int:
        return self.labels.get("main", self.base)


def f32_bits(value: float) -> int:
    with np.errstate(over="ignore"):
        return int(np.array(value, np.float32).view(np.int32))


def to_int32(value: int) -> int:
    return value - (1 << 32) if value > 0x7FFFFFFF else value


def _np_type(dtype: str):
    if dtype == "bf16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    return {"f16": np.float16, "f32": np.float32, "i16": np.int16, "i8": np.int8, "i32": np.int32}[
        dtype
    ]


def dtype_array(values, dtype: str) -> np.ndarray:
    """Values as a NumPy array of the emulator's storage type for dtype."""
    if dtype == "bf16":
        return np.asarray(values, dtype=np.float32).astype(_np_type(dtype))
    np_type = _np_type(dtype)
    arr = np.asarray(values)
    if np.issubdtype(np_type, np.integer) and arr.dtype.kind == "f":
        arr = np.rint(arr)
    return arr.astype(np_type)


def out_of_range(values, dtype: str):
    """Index of the first value that dtype cannot hold, or None: integers (floats rounded to
    nearest even, as stored) outside the dtype's range, NaN or inf for an integer dtype, and
    finite floats that would become inf (an explicit inf or NaN is kept)."""
    arr = np.asarray(values)
    with np.errstate(over="ignore", invalid="ignore"):
        if dtype in isa.FLOAT_DTYPES:
            f = arr.astype(np.float64)
            bad = np.isfinite(f) & ~np.isfinite(dtype_array(f, dtype).astype(np.float64))
        else:
            info = np.iinfo(_np_type(dtype))
            if arr.dtype.kind in "fc":
                arr = np.rint(arr.astype(np.float64))
                bad = ~np.isfinite(arr)
            else:
                bad = np.zeros(arr.shape, bool)
            bad |= (arr < info.min) | (arr > info.max)
    hits = np.flatnonzero(bad)
    return int(hits[0]) if len(hits) else None


def dtype_limits(dtype: str) -> str:
    if dtype in isa.FLOAT_DTYPES:
        import ml_dtypes

        top = float(ml_dtypes.finfo(_np_type(dtype)).max)
        return f"{dtype} holds magnitudes up to {top:.6g}"
    info = np.iinfo(_np_type(dtype))
    return f"{dtype} holds {info.min} to {info.max}"


def split_mnemonic(text: str):
    base, *suffixes = text.split(".")
    return base, suffixes


MAX_QUEUE_ID = 63  # a syntax bound; the arch's queue count is checked at link time
MAX_MESH_SIDE = 1 << 16  # far past a wafer (757 x 996 PEs): a bound, not a machine limit


def base_scope(pset: ProgramSet, width: int, height: int, consts: dict | None = None) -> dict:
    """Global constants (consts overrides their values) plus WIDTH and HEIGHT of the mesh."""
    consts = dict(consts or {})
    values = {"WIDTH": width, "HEIGHT": height}
    scope = Scope(pset.source, values)
    for name, expr, pos in pset.consts:
        _check_name(name, pos, values)
        values[name] = consts.pop(name) if name in consts else scope.eval(expr)
    if consts:
        declared = ", ".join(n for n, _, _ in pset.consts) or "none"
        raise AsmError(
            f"cannot set {', '.join(sorted(consts))}: not a .const of this file "
            f"(consts: {declared})",
            pset.source.filename,
        )
    return values


def declared_mesh(pset: ProgramSet, consts: dict | None = None) -> tuple[int, int] | None:
    """(width, height) of the program's .mesh, or None. Its expressions may use the .const
    values that do not depend on WIDTH or HEIGHT (consts overrides them)."""
    if pset.mesh is None:
        return None
    w, h, pos = pset.mesh
    values: dict = {}
    scope = Scope(pset.source, values)
    for name, expr, _ in pset.consts:
        if consts and name in consts:
            values[name] = consts[name]
            continue
        try:
            values[name] = scope.eval(expr)
        except AsmError:
            pass  # depends on WIDTH or HEIGHT: not usable in .mesh
    size = []
    for v in (w, h):
        v = v if isinstance(v, int) else scope.int(v)
        if not 1 <= v <= MAX_MESH_SIDE:
            raise pos.error(f".mesh side {v} is outside 1-{MAX_MESH_SIDE}")
        size.append(v)
    return size[0], size[1]


def _check_name(name: str, pos: Pos, taken: dict):
    if name in RESERVED:
        raise pos.error(f"{name!r} is a reserved name (registers r0-r15, d0-d15, WIDTH, HEIGHT)")
    if name in taken:
        raise pos.error(f"{name!r} is already defined")


def program_params(pset: ProgramSet, prog: Program, globals_: dict, overrides: dict) -> dict:
    """Evaluate a program's params in order; `overrides` maps name -> (value, pos)."""
    values = dict(globals_)
    scope = Scope(pset.source, values)
    declared = set()
    for name, expr, pos in prog.params:
        _check_name(name, pos, {k: v for k, v in values.items() if k not in globals_})
        declared.add(name)
        values[name] = overrides[name][0] if name in overrides else scope.eval(expr)
    for name, (_, pos) in overrides.items():
        if name not in declared:
            raise pos.error(
                f"program {prog.name!r} has no .param {name!r}",
                "declared params: " + (", ".join(sorted(declared)) or "none"),
            )
    return {k: values[k] for k in [p[0] for p in prog.params]}, values


class _Encoder:
    def __init__(
        self,
        pset: ProgramSet,
        prog: Program,
        scope: Scope,
        labels: dict,
        task_ids: dict,
        n_colors: int,
    ):
        self.pset = pset
        self.prog = prog
        self.scope = scope
        self.labels = labels
        self.task_ids = task_ids
        self.n_colors = n_colors
        self.table = isa.by_mnemonic()

    def encode(self, stmt) -> np.ndarray:
        base, suffixes = split_mnemonic(stmt.mnemonic)
        row = self.table.get(base)
        if row is None:
            close = difflib.get_close_matches(base, self.table, n=3)
            hint = (
                ("did you mean " + " or ".join(close) + "?")
                if close
                else "see docs/ISA.md for the instruction set"
            )
            raise stmt.pos.error(f"unknown instruction {base!r}", hint)
        dt, dt2 = self._dtypes(row, suffixes, stmt.pos)
        word = np.zeros(isa.ENCODING_WORDS, np.int32)
        word[0], word[1], word[2] = row.opcode, dt, dt2
        ops = stmt.operands
        required = sum(1 for o in row.operands if o.default is None)
        if not required <= len(ops) <= len(row.operands):
            want = (
                str(required)
                if required == len(row.operands)
                else f"{required} to {len(row.operands)}"
            )
            raise stmt.pos.error(
                f"{base} takes {want} operands, got {len(ops)}", f"syntax: {row.syntax}"
            )
        self.scalar_dtype = _scalar_dtype(row, dt2)
        mask = 0
        fi = 0
        for k, spec in enumerate(row.operands):
            if k < len(ops):
                values, imm = self._operand(spec.kind, ops[k], row, k)
            else:
                values, imm = [spec.default], [True]
            for v, is_imm in zip(values, imm):
                word[4 + fi] = v
                if is_imm:
                    mask |= 1 << fi
                fi += 1
        word[3] = mask
        return word

    def _dtypes(self, row, suffixes, pos: Pos):
        want = (1 if row.dtypes else 0) + (1 if row.dtypes2 else 0)
        if len(suffixes) != want:
            if want == 0:
                raise pos.error(f"{row.mnemonic} takes no dtype suffix", f"syntax: {row.syntax}")
            choices = ", ".join("." + d for d in row.dtypes)
            raise pos.error(
                f"{row.mnemonic} needs {'a dtype suffix' if want == 1 else 'two dtype suffixes'}",
                f"syntax: {row.syntax}; T is one of {choices}",
            )
        if row.fixed:
            return isa.DTYPE_CODE[row.fixed[0]], isa.DTYPE_CODE[row.fixed[1]]
        codes = []
        for suffix, allowed in zip(suffixes, (row.dtypes, row.dtypes2)):
            if suffix not in allowed:
                raise pos.error(
                    f"{row.mnemonic} does not take .{suffix}",
                    "allowed: " + ", ".join("." + d for d in allowed),
                )
            codes.append(isa.DTYPE_CODE[suffix])
        if not codes:
            return 0, 0
        return codes[0], codes[-1]

    def _pos(self, node) -> Pos:
        return self.scope.pos(node)

    @staticmethod
    def _plain_name(node):
        if isinstance(node, Tree) and node.data == "name":
            return str(node.children[0])
        return None

    def _reg(self, node, pattern, limit):
        name = self._plain_name(node)
        m = pattern.match(name) if name else None
        if m and int(m.group(1)) < limit:
            return int(m.group(1))
        return None

    def _operand(self, kind, node, row, k):
        where = f"operand {k + 1} of {row.mnemonic}"
        if isinstance(node, Tree) and node.data == "special":
            if kind not in ("rs", "ri", "rv"):
                raise self._pos(node).error(
                    f"{where} cannot be a special register", f"syntax: {row.syntax}"
                )
            name = str(node.children[0])[1:]
            if name not in isa.SPECIALS:
                raise self._pos(node).error(
                    f"unknown special %{name}",
                    "expected one of " + ", ".join("%" + s for s in isa.SPECIALS),
                )
            return [isa.SPECIAL_BASE + isa.SPECIALS.index(name)], [False]
        if isinstance(node, Tree) and node.data == "address" and kind != "addr":
            raise self._pos(node).error(f"{where} is not an address", f"syntax: {row.syntax}")
        if kind in ("rd", "rs", "ri", "rv", "len"):
            r = self._reg(node, _REG, isa.N_REGS)
            if r is not None:
                return [r], [False]
            if kind in ("rd", "rs"):
                raise self._pos(node).error(
                    f"{where} must be a register r0-r{isa.N_REGS - 1}"
                    + (" or a special" if kind == "rs" else ""),
                    f"syntax: {row.syntax}",
                )
            if kind == "rv":
                return [self._scalar(node, where)], [True]
            if kind == "len":
                return [self._int_in(node, where, 0, isa.MAX_DSD_LEN)], [True]
            return [self._int32(self._int(node), node, where)], [True]
        if kind == "dsd":
            d = self._reg(node, _DSD, isa.N_DSDS)
            if d is None:
                raise self._pos(node).error(
                    f"{where} must be a DSD register d0-d{isa.N_DSDS - 1}", f"syntax: {row.syntax}"
                )
            return [d], [False]
        if kind == "addr":
            inner = node.children[0] if isinstance(node, Tree) and node.data == "address" else node
            base, offset = self._address(inner)
            return [base, self._int32(offset, node, f"address offset of {where}")], [False, True]
        if kind == "color":
            c = self._int(node)
            if not 0 <= c < self.n_colors:
                raise self._pos(node).error(f"color {c} out of range 0-{self.n_colors - 1}")
            return [c], [True]
        if kind == "ut":
            ut = self._int_in(node, f"{where} (a microthread id)", 0, isa.MAX_MICROTHREADS - 1)
            return [ut], [True]
        if kind == "dim":
            return [self._int_in(node, f"{where} (a DSD dimension)", 1, isa.MAX_DIMS - 1)], [True]
        if kind == "label":
            name = self._plain_name(node)
            if name is None or name not in self.labels:
                raise self._pos(node).error(
                    f"undefined label {name or '(expression)'!r}",
                    "labels: " + ", ".join(sorted(self.labels)),
                )
            return [self.labels[name]], [True]
        if kind == "task":
            name = self._plain_name(node)
            if name is None or name not in self.task_ids:
                raise self._pos(node).error(
                    f"undefined task {name or '(expression)'!r}",
                    "tasks: " + (", ".join(sorted(self.task_ids)) or "none"),
                )
            return [self.task_ids[name]], [True]
        if kind == "ctl":
            name = self._plain_name(node)
            if name not in isa.CONTROL_ACTIONS:
                raise self._pos(node).error(
                    f"{where}: unknown control action {name or '(expression)'!r}",
                    "expected one of " + ", ".join(isa.CONTROL_ACTIONS),
                )
            return [isa.CONTROL_ACTIONS.index(name)], [True]
        if kind == "ctlid":
            return [self._int_in(node, f"{where} (a control task ID)", 0, isa.CONTROL_IDS - 1)], [
                True
            ]
        return [self._int32(self._int(node), node, where)], [True]  # imm

    def _scalar(self, node, where) -> int:
        """The 32 bits of an rv immediate. A typed op reads it as its own type (an integer
        literal in a float op is that number, not raw fp32 bits; an integer op's value must fit
        its dtype); an untyped op (mov, send) takes an integer as raw bits and a float as fp32
        bits."""
        dtype = self.scalar_dtype
        self._no_registers(node)
        value = self.scope.eval(node)
        if dtype is None and isinstance(value, int):
            return self._int32(value, node, where)
        dtype = dtype or "f32"
        if dtype not in isa.FLOAT_DTYPES:
            value = self._int(node)
        if out_of_range([float(value)], dtype) is not None:
            raise self._pos(node).error(f"{where}: {value!r} out of range ({dtype_limits(dtype)})")
        return f32_bits(float(value)) if dtype in isa.FLOAT_DTYPES else value

    def _int_in(self, node, where: str, lo: int, hi: int) -> int:
        value = self._int(node)
        if not lo <= value <= hi:
            raise self._pos(node).error(f"{where}: immediate {value} is outside {lo}-{hi}")
        return value

    def _int(self, node) -> int:
        self._no_registers(node)
        return self.scope.int(node)

    def _no_registers(self, node):
        if isinstance(node, Tree):
            if node.data == "name" and (
                _REG.match(str(node.children[0])) or _DSD.match(str(node.children[0]))
            ):
                raise self._pos(node).error(
                    f"register {node.children[0]} cannot appear in an expression here"
                )
            for c in node.children:
                self._no_registers(c)

    def _int32(self, value: int, node, where: str) -> int:
        if not INT32_MIN <= value <= UINT32_MAX:
            raise self._pos(node).error(f"{where}: immediate {value} does not fit in 32 bits")
        return to_int32(value)

    def _address(self, node):
        """[rN + expr] -> (N, value of expr); [expr] -> (-1, value)."""
        terms = []

        def walk(n, sign):
            if isinstance(n, Tree) and n.data in ("add", "sub"):
                walk(n.children[0], sign)
                walk(n.children[1], sign if n.data == "add" else -sign)
            else:
                terms.append((n, sign))

        walk(node, 1)
        base = -1
        offset = 0
        for n, sign in terms:
            r = self._reg(n, _REG, isa.N_REGS)
            if r is not None:
                if base >= 0 or sign < 0:
                    raise self._pos(n).error(
                        "an address takes one base register, added: [rN + offset]"
                    )
                base = r
            else:
                offset += sign * self._int(n)
        return base, offset


def _scalar_dtype(row, dt2: int) -> str | None:
    """The type an rv immediate is read as: fp32 for the scalar fp ops (the engine's falu reads
    both operands as fp32), the source dtype for typed vector ops, None for untyped ops."""
    if row.sem == "falu":
        return "f32"
    if row.dtypes or row.fixed:
        return isa.DTYPES[dt2]
    return None


def assemble_program(
    pset: ProgramSet, prog: Program, globals_: dict, overrides: dict, base: int, n_colors: int
) -> Image:
    params, values = program_params(pset, prog, globals_, overrides)
    scope = Scope(pset.source, values)
    prog = select(prog, scope)
    symbols = {}
    sizes = {}
    addr = 0
    init = []
    for decl in prog.data:
        _check_name(decl.name, decl.pos, values)
        shape = tuple(
            scope.int_in(e, f"dimension {k + 1} of {decl.name!r}", 1, MAX_DATA_BYTES)
            for k, e in enumerate(decl.shape)
        )
        addr = (addr + 3) & ~3  # every symbol starts 4-byte aligned
        sym = Symbol(decl.name, addr, decl.dtype, shape, decl.pos.line)
        if addr + sym.nbytes > MAX_DATA_BYTES:
            raise decl.pos.error(
                f"symbol {decl.name!r} {decl.dtype}{list(shape)} ends at byte "
                f"{addr + sym.nbytes}, past the {MAX_DATA_BYTES}-byte address space"
            )
        symbols[decl.name] = sym
        sizes[decl.name] = (sym.nbytes, sym.count)
        values[decl.name] = addr
        if decl.init is not None:
            init.append((sym, _init_values(scope, decl, sym)))
        addr += sym.nbytes
    scope.sizes = sizes
    labels = {}
    for name, (index, pos, _) in prog.labels.items():
        _check_name(name, pos, values)
        labels[name] = base + index
    task_ids = {}
    tasks = []
    controls = {}
    for t in prog.tasks:
        if len(tasks) >= isa.MAX_TASKS:
            raise t.pos.error(f"more than {isa.MAX_TASKS} tasks in program {prog.name!r}")
        color = -1
        if t.color is not None:
            color = scope.int_in(t.color, "task color", 0, n_colors - 1)
            for other in tasks:
                if other[2] == color:
                    raise t.pos.error(f"color {color} already bound to task {other[0]!r}")
        if t.control is not None:
            cid = scope.int_in(t.control, "control task ID", 0, isa.CONTROL_IDS - 1)
            if cid in controls:
                other = tasks[controls[cid]][0]
                raise scope.pos(t.control).error(
                    f"control task ID {cid} already bound to task {other!r}",
                    "each control ID starts one task of a program",
                )
            controls[cid] = len(tasks)
        if t.index >= len(prog.code):
            raise t.pos.error(f"task {t.name!r} has no code")
        task_ids[t.name] = len(tasks)
        tasks.append((t.name, base + t.index, color))
    if prog.code and "main" not in labels:
        raise prog.pos.error(f"program {prog.name!r} has no 'main:' label")
    values.update(labels)
    enc = _Encoder(pset, prog, scope, labels, task_ids, n_colors)
    code = np.zeros((len(prog.code), isa.ENCODING_WORDS), np.int32)
    for i, stmt in enumerate(prog.code):
        code[i] = enc.encode(stmt)
    _check_async(prog, code)
    queue_decls = [
        (
            d,
            scope.int_in(q, "queue id", 0, MAX_QUEUE_ID),
            scope.int_in(c, "color", 0, n_colors - 1),
            pos,
        )
        for d, q, c, pos, _ in prog.queues
    ]
    return Image(
        prog.name,
        params,
        base,
        code,
        [s.pos for s in prog.code],
        symbols,
        labels,
        tasks,
        init,
        addr,
        queue_decls=queue_decls,
        controls=controls,
    )


def select(prog: Program, scope: Scope) -> Program:
    """The program as one placement assembles it: the statements inside .if blocks whose
    conditions do not hold for its params are dropped, and labels and tasks renumbered."""
    if not prog.has_conds:
        return prog
    truth = {}

    def holds(conds) -> bool:
        for tree, want in conds:
            if id(tree) not in truth:
                truth[id(tree)] = bool(scope.eval(tree))
            if truth[id(tree)] != want:
                return False
        return True

    keep = [holds(s.conds) for s in prog.code]
    index = list(itertools.accumulate(keep, initial=0))  # kept statements before each one
    code = [s for s, k in zip(prog.code, keep) if k]
    labels = {}
    for name, i, pos, conds in prog.label_defs:
        if not holds(conds):
            continue
        if name in labels:
            raise pos.error(
                f"label {name!r} defined twice in program {prog.name!r}",
                "both definitions are in .if blocks whose conditions hold here",
            )
        if index[i] >= len(code) and not any(t.name == name for t in prog.tasks):
            raise pos.error(
                f"label {name!r} is not followed by an instruction here",
                "the .if blocks after it are all left out for these params",
            )
        labels[name] = (index[i], pos, ())
    return replace(
        prog,
        code=code,
        labels=labels,
        label_defs=[],
        has_conds=False,
        data=[d for d in prog.data if holds(d.conds)],
        tasks=[replace(t, index=index[t.index]) for t in prog.tasks if holds(t.conds)],
        queues=[q for q in prog.queues if holds(q[4])],
    )


ASYNC_TARGETS = ("vun", "vfill", "vbin", "vbins", "vfma", "vfmas", "vcvt")


def _check_async(prog: Program, code: np.ndarray) -> None:
    """An `async` prefix applies to the next instruction, which must be a vector op that
    can stream (not a reduction: its result is a register the thread reads at once)."""
    table = isa.table()
    for i, word in enumerate(code):
        if table[word[0]].sem != "async":
            continue
        nxt = table[code[i + 1][0]] if i + 1 < len(code) else None
        if nxt is None or nxt.sem not in ASYNC_TARGETS:
            raise prog.code[i].pos.error(
                f"{table[word[0]].mnemonic} must be followed by the vector op it runs on a "
                "microthread (one with a fabric operand; not a reduction)",
                "found " + (f"{nxt.mnemonic}" if nxt else "the end of the program"),
            )


def _init_values(scope: Scope, decl, sym: Symbol):
    """The initial values of a symbol (a list, or one value for every element), each one
    checked against the dtype's range."""
    nodes = decl.init if isinstance(decl.init, list) else [decl.init]
    if isinstance(decl.init, list) and len(nodes) != sym.count:
        raise decl.pos.error(
            f"{decl.name!r} has {sym.count} elements but {len(nodes)} initial values"
        )
    vals = [scope.eval(e) for e in nodes]
    bad = out_of_range(np.array(vals, dtype=object).astype(np.float64), sym.dtype)
    if bad is not None:
        raise scope.pos(nodes[bad]).error(
            f"initial value {vals[bad]!r} of {decl.name!r} out of range ({dtype_limits(sym.dtype)})"
        )
    return vals if isinstance(decl.init, list) else vals[0]
