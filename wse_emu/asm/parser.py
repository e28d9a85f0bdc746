"""Parse .wsa text (Lark, LALR) into a ProgramSet: global constants, programs and the layout.
Nothing is evaluated here: expressions stay Lark trees, each construct keeps its position."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from .. import isa
from .errors import AsmError, Pos, Source


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


@dataclass
class Program:
    name: str
    pos: Pos
    params: list = field(default_factory=list)  # (name, tree, pos)
    data: list = field(default_factory=list)  # DataDecl
    code: list = field(default_factory=list)  # InsnStmt
    labels: dict = field(default_factory=dict)  # name -> (index, pos)
    tasks: list = field(default_factory=list)  # TaskDecl


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


def _expected(names) -> str:
    shown = sorted({_TOKEN_NAMES.get(n, n.strip('"').lower()) for n in names})
    if len(shown) > 8:
        shown = shown[:8] + ["..."]
    return "expected " + ", ".join(shown)


def parse_source(text: str, filename: str = "<input>") -> ProgramSet:
    src = Source(filename, text)
    try:
        tree = _parser().parse(text + "\n")
    except UnexpectedCharacters as e:
        raise AsmError(
            f"unexpected character {text.splitlines()[e.line - 1][e.column - 1]!r}",
            filename,
            e.line,
            e.column,
            text,
            _expected(e.allowed or []),
        ) from None
    except UnexpectedToken as e:
        tok = e.token
        what = "end of line" if tok.type == "_NL" else repr(str(tok))
        if tok.type == "$END":
            what = "end of file"
        line = tok.line or 0
        col = tok.column or 0
        raise AsmError(
            f"unexpected {what}", filename, line, col, text, _expected(e.accepts or e.expected)
        ) from None
    except UnexpectedEOF as e:
        n = text.count("\n") + 1
        raise AsmError(
            "unexpected end of file", filename, n, 1, text, _expected(e.expected)
        ) from None
    return _Builder(src).build(tree)


def parse_file(path) -> ProgramSet:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise AsmError(f"cannot read {path}: {e.strerror}", str(path)) from None
    return parse_source(text, str(path))


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
            getattr(self, "on_" + line.data)(line)
        if self.pending_labels and self.prog is not None:
            name, pos = self.pending_labels[0]
            raise pos.error(f"label {name!r} is not followed by an instruction")
        if self.loops:
            raise self.loops[-1].pos.error(".repeat without a matching .end")
        return self.out

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

    def on_task(self, node):
        name, color = node.children
        prog = self.program(node)
        prog.tasks.append(TaskDecl(str(name), color, len(prog.code), self.pos(name)))
        self.pending_labels.append((str(name), self.pos(name)))
        self._define_label(prog, str(name), self.pos(name))

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
