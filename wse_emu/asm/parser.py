"""Parse .wsa text (Lark, LALR) into a ProgramSet: global constants, programs and the layout.
Nothing is evaluated here: expressions stay Lark trees, each construct keeps its position."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from .. import isa
from .errors import AsmError, Pos, Source, location


@dataclass
class DataDecl:
    name: str
    dtype: str
    shape: list  # expression trees
    init: object  # None, expression tree, or list of trees
    pos: Pos


@dataclass
class InsnStmt:
    mnemonic: str
    operands: list  # trees / tokens
    pos: Pos
    labels: list = field(default_factory=list)


@dataclass
class TaskDecl:
    name: str
    color: object  # expression tree or None (local task)
    index: int  # index of its first instruction in the program
    pos: Pos
    control: object = None  # expression tree of a control task's ID, or None


@dataclass
class Program:
    name: str
    pos: Pos
    params: list = field(default_factory=list)  # (name, tree, pos)
    data: list = field(default_factory=list)  # DataDecl
    code: list = field(default_factory=list)  # InsnStmt
    labels: dict = field(default_factory=dict)  # name -> (index, pos)
    tasks: list = field(default_factory=list)  # TaskDecl
    queues: list = field(default_factory=list)  # .queue in|out Q color C: (dir, Q, C, pos)


@dataclass
class Loop:
    """.repeat NAME = start, stop: NAME takes start, start + 1, ..., stop - 1."""

    name: str
    start: object
    stop: object
    pos: Pos


@dataclass
class Place:
    program: str
    rect: tuple  # 4 trees: x, y, w, h
    params: list  # (name, tree, pos)
    pos: Pos
    loops: tuple = ()  # enclosing .repeat loops, outermost first


@dataclass
class Route:
    color: object
    position: object  # switch position expression, or None for 0
    rect: tuple
    rx: list  # direction names
    tx: list
    pos: Pos
    loops: tuple = ()


@dataclass
class ProgramSet:
    source: Source
    consts: list = field(default_factory=list)  # (name, tree, pos)
    programs: dict = field(default_factory=dict)  # name -> Program
    places: list = field(default_factory=list)
    routes: list = field(default_factory=list)
    has_layout: bool = False
    mesh: tuple | None = None  # .mesh: (width, height, pos), each an int or an expression tree


@cache
def _parser() -> Lark:
    return Lark(
        isa.grammar_text(), parser="lalr", propagate_positions=True, maybe_placeholders=True
    )


_TOKEN_NAMES = {
    "_NL": "end of line",
    "NAME": "a name",
    "MNEMONIC": "a mnemonic",
    "INT": "an integer",
    "MESHSIZE": "a mesh size (WxH)",
    "HEX": "a hex integer",
    "FLOAT": "a float",
    "SPECIAL": "a special (%x ...)",
    "COMMA": "','",
    "LSQB": "'['",
    "RSQB": "']'",
    "LPAR": "'('",
    "RPAR": "')'",
    "EQUAL": "'='",
    "COLON": "':'",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
}


# Characters that end a line for str.splitlines but not for the parser; after '\r\n' and
# '\r' become '\n', a file holding one of these is refused, so every consumer of the source
# (errors, listings, the debugger) counts lines as the parser does.
_OTHER_LINE_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
MAX_DEPTH = 100  # nesting of expressions (the evaluator recurses once per level)
_EXPR_NODES = frozenset(
    "bor bxor band shl shr add sub mul div mod neg inv factor int hex float name func".split()
)


def _token_label(name: str) -> str:
    if name in _TOKEN_NAMES:
        return _TOKEN_NAMES[name]
    try:
        pattern = _parser().get_terminal(name).pattern
    except KeyError:
        return name.lower()
    return repr(pattern.value) if pattern.type == "str" else name.lower()


def _expected(names) -> str:
    shown = sorted({_token_label(n) for n in names})
    if len(shown) > 8:
        shown = shown[:8] + ["..."]
    return "expected " + ", ".join(shown)


def _unify_breaks(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def normalize(text: str, filename: str = "<input>") -> str:
    r"""'\r\n' and '\r' become '\n'; any other line separator is a located error."""
    text = _unify_breaks(text)
    bad = _OTHER_LINE_BREAKS.search(text)
    if bad:
        line, col = location(text, bad.start())
        raise AsmError(
            f"unexpected character {bad.group()!r}",
            filename,
            line,
            col,
            text,
            "only '\\n', '\\r\\n' or '\\r' may end a line",
        )
    return text


def parse_source(text: str, filename: str = "<input>") -> ProgramSet:
    text = normalize(text, filename)
    src = Source(filename, text)
    try:
        tree = _parser().parse(text + "\n")
    except UnexpectedCharacters as e:
        raise AsmError(
            f"unexpected character {e.char!r}",
            filename,
            e.line,
            e.column,
            text,
            _expected(e.allowed or []),
        ) from None
    except UnexpectedToken as e:
        tok = e.token
        what = "end of line" if tok.type == "_NL" else repr(str(tok))
        if tok.type == "$END" or not tok.line:
            what = "end of file"
            line, col = _end(text)
        else:
            line, col = tok.line, tok.column
        raise AsmError(
            f"unexpected {what}", filename, line, col, text, _expected(e.accepts or e.expected)
        ) from None
    except UnexpectedEOF as e:
        line, col = _end(text)
        raise AsmError(
            "unexpected end of file", filename, line, col, text, _expected(e.expected)
        ) from None
    return _Builder(src).build(tree)


def _end(text: str) -> tuple[int, int]:
    """Position just after the last character (the last line's end)."""
    return location(text, len(text))


def parse_file(path) -> ProgramSet:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise AsmError(f"cannot read {path}: {e.strerror or e}", str(path)) from None
    return parse_source(decode(data, str(path)), str(path))


def decode(data: bytes, filename: str) -> str:
    """UTF-8 text (a leading BOM is dropped); a non-UTF-8 byte is a located error."""
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        shown = _unify_breaks(data.decode("utf-8", errors="replace"))
        line, col = location(shown, len(_unify_breaks(data[: e.start].decode("utf-8"))))
        raise AsmError(
            f"invalid UTF-8 byte 0x{data[e.start]:02x}",
            filename,
            line,
            col,
            shown,
            "a .wsa file must be UTF-8 text",
        ) from None


class _Builder:
    """Walks the parse tree line by line, tracking the current program and section."""

    def __init__(self, src: Source):
        self.src = src
        self.out = ProgramSet(src)
        self.prog: Program | None = None
        self.in_layout = False
        self.pending_labels: list = []
        self.loops: list = []

    def pos(self, node) -> Pos:
        if isinstance(node, Token):
            return Pos(self.src, node.line, node.column)
        return Pos(self.src, node.meta.line, node.meta.column)

    def build(self, tree: Tree) -> ProgramSet:
        for line in tree.children:
            self._check_depth(line)
            getattr(self, "on_" + line.data)(line)
        if self.pending_labels and self.prog is not None:
            name, pos = self.pending_labels[0]
            raise pos.error(f"label {name!r} is not followed by an instruction")
        if self.loops:
            raise self.loops[-1].pos.error(".repeat without a matching .end")
        return self.out

    def _check_depth(self, line):
        """Refuse expressions nested deeper than MAX_DEPTH (walked without recursion)."""
        stack = [(line, 0)]
        while stack:
            node, depth = stack.pop()
            if not isinstance(node, Tree):
                continue
            if node.data in _EXPR_NODES:
                depth += 1
                if depth > MAX_DEPTH:
                    raise self.pos(node).error(f"expression nested too deeply (limit {MAX_DEPTH})")
            stack.extend((c, depth) for c in node.children)

    def program(self, node) -> Program:
        if self.in_layout:
            raise self.pos(node).error("program code after .layout; put .layout last")
        if self.prog is None:
            self.prog = Program("main", self.pos(node))
            self.out.programs["main"] = self.prog
        return self.prog

    def on_const(self, node):
        if self.prog is not None or self.in_layout:
            raise self.pos(node).error(".const must come before any .program and code")
        name, expr = node.children
        self.out.consts.append((str(name), expr, self.pos(name)))

    def on_mesh(self, node):
        if self.prog is not None or self.in_layout:
            raise self.pos(node).error(".mesh must come before any .program and code")
        if self.out.mesh is not None:
            raise self.pos(node).error(".mesh appears twice")
        size = node.children[0]
        if isinstance(size, Token) and size.type == "MESHSIZE":
            w, h = (int(v) for v in str(size).split("x"))
        else:
            w, h = node.children[0], node.children[1]
        self.out.mesh = (w, h, self.pos(node))

    def on_program(self, node):
        if self.in_layout:
            raise self.pos(node).error(".program after .layout; put .layout last")
        name = str(node.children[0])
        if name in self.out.programs:
            raise self.pos(node.children[0]).error(f"program {name!r} defined twice")
        if (
            self.prog is not None
            and self.prog.name == "main"
            and not self.prog.code
            and not self.prog.data
            and not self.prog.params
        ):
            del self.out.programs["main"]
        self.prog = Program(name, self.pos(node))
        self.out.programs[name] = self.prog

    def on_param(self, node):
        name, expr = node.children
        self.program(node).params.append((str(name), expr, self.pos(name)))

    def on_data(self, node):
        name, dtype, shape, init = node.children
        if str(dtype) not in isa.DTYPES:
            raise self.pos(dtype).error(
                f"unknown dtype {str(dtype)!r}", "expected one of " + ", ".join(isa.DTYPES)
            )
        init_val = (
            list(init.children[0].children)
            if isinstance(init, Tree) and init.data == "init_list"
            else init
        )
        self.program(node).data.append(
            DataDecl(str(name), str(dtype), list(shape.children), init_val, self.pos(name))
        )

    def on_text(self, node):
        self.program(node)

    def on_task(self, node, control=None):
        name, color = node.children if control is None else (node.children[0], None)
        prog = self.program(node)
        prog.tasks.append(TaskDecl(str(name), color, len(prog.code), self.pos(name), control))
        self.pending_labels.append((str(name), self.pos(name)))
        self._define_label(prog, str(name), self.pos(name))

    def on_task_control(self, node):
        """.task NAME control ID: a control task, started by a control wavelet naming ID."""
        self.on_task(node, control=node.children[1])

    def on_queue(self, node):
        direction, queue, color = node.children
        if str(direction) not in ("in", "out"):
            raise self.pos(direction).error(
                f"queue direction must be 'in' or 'out', got {str(direction)!r}"
            )
        prog = self.program(node)
        prog.queues.append((str(direction), queue, color, self.pos(node)))

    def on_layout(self, node):
        if self.out.has_layout:
            raise self.pos(node).error(".layout appears twice")
        self.out.has_layout = True
        self.in_layout = True

    def on_repeat(self, node):
        self._need_layout(node, ".repeat")
        name, start, stop = node.children
        self.loops.append(Loop(str(name), start, stop, self.pos(node)))

    def on_end(self, node):
        if not self.loops:
            raise self.pos(node).error(".end without a .repeat")
        self.loops.pop()

    def _need_layout(self, node, what):
        if not self.in_layout:
            raise self.pos(node).error(f"{what} belongs in the .layout section")

    def on_place(self, node):
        self._need_layout(node, ".place")
        name, x, y, w, h, assigns = node.children
        params = []
        if assigns is not None:
            for a in assigns.children:
                pname, expr = a.children
                params.append((str(pname), expr, self.pos(pname)))
        self.out.places.append(
            Place(str(name), (x, y, w, h), params, self.pos(name), tuple(self.loops))
        )

    def on_route(self, node):
        self._need_layout(node, ".route")
        color, position, x, y, w, h, rx, tx = node.children
        dirs = []
        for group in (rx, tx):
            items = []
            for tok in group.children:
                if str(tok) not in isa.DIRECTIONS:
                    raise self.pos(tok).error(
                        f"unknown direction {str(tok)!r}",
                        "expected one of " + ", ".join(isa.DIRECTIONS),
                    )
                items.append(str(tok))
            dirs.append(items)
        self.out.routes.append(
            Route(
                color, position, (x, y, w, h), dirs[0], dirs[1], self.pos(node), tuple(self.loops)
            )
        )

    def _define_label(self, prog, name, pos):
        if name in prog.labels:
            raise pos.error(f"label {name!r} defined twice in program {prog.name!r}")
        prog.labels[name] = (len(prog.code), pos)

    def on_labelled(self, node):
        label, insn = node.children
        tok = label.children[0]
        prog = self.program(node)
        self._define_label(prog, str(tok), self.pos(tok))
        self.pending_labels.append((str(tok), self.pos(tok)))
        if insn is not None:
            self.on_instruction(insn)

    def on_instruction(self, node):
        if self.in_layout:
            raise self.pos(node).error("instructions are not allowed in .layout")
        prog = self.program(node)
        mnem = node.children[0]
        ops = [c for c in node.children[1:] if c is not None]
        stmt = InsnStmt(str(mnem), ops, self.pos(mnem), [n for n, _ in self.pending_labels])
        self.pending_labels = []
        prog.code.append(stmt)
