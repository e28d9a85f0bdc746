"""Parse .wsa text (Lark, LALR) into a ProgramSet: global constants, programs and the layout.
Nothing is evaluated here: expressions stay Lark trees, each construct keeps its position."""

from __future__ import annotations

import codecs
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from .. import isa
from .errors import AsmError, Pos, Source, join_notes, location, strip_comment


@dataclass
class DataDecl:
    name: str
    dtype: str
    shape: list  # expression trees
    init: object  # None, expression tree, or list of trees
    pos: Pos
    conds: tuple = ()  # enclosing .if conditions: (tree, must hold) pairs


@dataclass
class InsnStmt:
    mnemonic: str
    operands: list  # trees / tokens
    pos: Pos
    labels: list = field(default_factory=list)
    conds: tuple = ()


@dataclass
class TaskDecl:
    name: str
    color: object  # expression tree or None (local task)
    index: int  # index of its first instruction in the program
    pos: Pos
    control: object = None  # expression tree of a control task's ID, or None
    conds: tuple = ()


@dataclass
class Program:
    name: str
    pos: Pos
    params: list = field(default_factory=list)  # (name, tree, pos)
    data: list = field(default_factory=list)  # DataDecl
    code: list = field(default_factory=list)  # InsnStmt
    labels: dict = field(default_factory=dict)  # name -> (index, pos, conds): the first def
    tasks: list = field(default_factory=list)  # TaskDecl
    queues: list = field(default_factory=list)  # .queue in|out Q color C: (dir, Q, C, pos, conds)
    label_defs: list = field(default_factory=list)  # (name, index, pos, conds), all of them
    has_conds: bool = False  # some statement is inside .if: assemble per placement


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
    conds: tuple = ()


@dataclass
class Route:
    color: object
    position: object  # switch position expression, or None for 0
    rect: tuple
    rx: list  # direction names
    tx: list
    pos: Pos
    loops: tuple = ()
    conds: tuple = ()


@dataclass
class Cond:
    """An open .if block: the conditions of its earlier branches (all false in this one)
    and the current branch's (None after .else)."""

    pos: Pos
    prior: list
    current: object
    has_else: bool
    loop_depth: int  # .repeat loops open at the .if: they must still be open at .endif


@dataclass
class Macro:
    """.macro NAME params ... .endm: the body is kept as the lines [first, last] of src and
    re-parsed at each use with the arguments put in place of the params."""

    name: str
    params: list
    pos: Pos
    src: Source
    first: int
    last: int = 0
    labels: list = field(default_factory=list)  # labels defined in the body: local to a use


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
    """Lark's LALR tables take ~0.1 s to build, a tenth of a warm run, so they are kept in
    this package's __pycache__ (where Python keeps its bytecode; Lark checks the grammar's
    hash and rebuilds them if the file is stale, unreadable or cannot be written). Not the
    shared temporary directory: Lark loads the file with pickle."""
    return Lark(
        isa.grammar_text(),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=True,
        cache=_cache_file() or False,
    )


def _cache_file() -> str | None:
    """The parser tables' file in this package's __pycache__, if that can be written."""
    folder = Path(__file__).parent / "__pycache__"
    try:
        folder.mkdir(exist_ok=True)
    except OSError:
        return None
    return str(folder / "grammar.lark-tables") if os.access(folder, os.W_OK) else None


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
    "lor land lnot eq ne lt le gt ge bor bxor band shl shr add sub mul div mod neg inv factor "
    "int hex float name func".split()
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
    return _Builder(src).build(parse_tree(src))


def parse_tree(src: Source) -> Tree:
    """The parse tree of a source; a syntax error is an AsmError at its line and column."""
    text = src.text
    try:
        return _parser().parse(text + "\n")
    except UnexpectedCharacters as e:
        line, col, message, hint = e.line, e.column, f"unexpected character {e.char!r}", e.allowed
    except UnexpectedToken as e:
        tok = e.token
        message = "unexpected " + ("end of line" if tok.type == "_NL" else repr(str(tok)))
        if tok.type == "$END" or not tok.line:
            message = "unexpected end of file"
            line, col = _end(text)
        else:
            line, col = tok.line, tok.column
        hint = e.accepts or e.expected
    except UnexpectedEOF as e:
        line, col = _end(text)
        message, hint = "unexpected end of file", e.expected
    raise Pos(src, line, col).error(message, _expected(hint or [])) from None


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


class _SrcToken(Token):
    """A token that knows the source it was parsed from (Lark's Token has no room for it)."""

    @classmethod
    def of(cls, tok: Token, src: Source) -> Token:
        new = cls.new_borrow_pos(tok.type, tok.value, tok)
        new.src = src
        return new


MAX_INCLUDE_DEPTH = 16  # files including files
MAX_MACRO_DEPTH = 64  # macros using macros: a macro that uses itself never ends
_PLAIN = re.compile(r"[\w.]+|[\[%].*")  # a name or number, an address, a special: as is
MAX_EXPANSIONS = 10_000  # macro uses in a file: one using another twice, 30 deep, never ends
MAX_NOTES = 4  # "in macro ... used at" lines shown for macros within macros
_KEYWORDS = {"at", "size", "with", "rx", "tx", "pos", "color", "control"}


class _Builder:
    """Walks the parse tree line by line, tracking the current program and section, the open
    .if blocks and .repeat loops, a .macro being defined, and the files being included."""

    def __init__(self, src: Source):
        self.src = src
        self.out = ProgramSet(src)
        self.prog: Program | None = None
        self.in_layout = False
        self.pending_labels: list = []
        self.loops: list = []
        self.conds: list = []  # open .if blocks (Cond), outermost first
        self.macros: dict = {}
        self.defining: Macro | None = None
        self.includes: list = [Path(src.filename).resolve()]
        self.macro_depth = 0
        self.expansions = 0
        self.floor = (0, 0)  # .if blocks and .repeat loops open when this source began

    def pos(self, node) -> Pos:
        return Pos.of(node, self.src)

    def build(self, tree: Tree) -> ProgramSet:
        self._walk(tree)
        if self.pending_labels and self.prog is not None:
            name, pos = self.pending_labels[0]
            raise pos.error(f"label {name!r} is not followed by an instruction")
        if self.loops:
            raise self.loops[-1].pos.error(".repeat without a matching .end")
        return self.out

    def _walk(self, tree: Tree):
        depth = len(self.conds)
        for line in tree.children:
            if self.defining is not None and line.data not in ("macro", "endm"):
                if line.data == "labelled":
                    self.defining.labels.append(str(line.children[0].children[0]))
                continue
            self._check_depth(line)
            getattr(self, "on_" + line.data)(line)
        if self.defining is not None:
            raise self.defining.pos.error(f".macro {self.defining.name} without .endm")
        if len(self.conds) > depth:
            raise self.conds[-1].pos.error(".if without .endif")

    def _walk_source(self, src: Source):
        """Go on building from another source (an included file, a macro expansion): its
        nodes are tagged with it, so that every error about them points into it."""
        tree = parse_tree(src)
        for node in tree.iter_subtrees():
            node.meta.src = src
            node.children = [
                _SrcToken.of(c, src) if isinstance(c, Token) else c for c in node.children
            ]
        outer, self.src = (self.src, self.floor), src
        self.floor = (len(self.conds), len(self.loops))
        try:
            self._walk(tree)
        finally:
            self.src, self.floor = outer

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
        """The program a statement belongs to ('main' when the file has no .program)."""
        if self.in_layout:
            raise self.pos(node).error("program code after .layout; put .layout last")
        if self.prog is None:
            self.prog = Program("main", self.pos(node))
            self.out.programs["main"] = self.prog
        return self.prog

    def on_const(self, node):
        self._unconditional(node, ".const")
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
        self._unconditional(node, ".program")
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
        self._unconditional(node, ".param")
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
            DataDecl(
                str(name), str(dtype), list(shape.children), init_val, self.pos(name), self._cond()
            )
        )

    def on_text(self, node):
        self.program(node)

    def on_task(self, node, control=None):
        name, color = node.children if control is None else (node.children[0], None)
        prog = self.program(node)
        prog.tasks.append(
            TaskDecl(str(name), color, len(prog.code), self.pos(name), control, self._cond())
        )
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
        prog.queues.append((str(direction), queue, color, self.pos(node), self._cond()))

    def on_layout(self, node):
        self._unconditional(node, ".layout")
        if self.out.has_layout:
            raise self.pos(node).error(".layout appears twice")
        self.out.has_layout = True
        self.in_layout = True

    def on_repeat(self, node):
        self._need_layout(node, ".repeat")
        name, start, stop = node.children
        self.loops.append(Loop(str(name), start, stop, self.pos(node)))

    def on_end(self, node):
        if len(self.loops) <= self.floor[1]:
            raise self.pos(node).error(
                ".end without a .repeat" + (" in this macro or file" if self.loops else "")
            )
        if self.conds and self.conds[-1].loop_depth == len(self.loops):
            raise self.pos(node).error(
                f".end inside the .if of line {self.conds[-1].pos.line}",
                "close it with .endif first",
            )
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
            Place(str(name), (x, y, w, h), params, self.pos(name), tuple(self.loops), self._cond())
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
                color,
                position,
                (x, y, w, h),
                dirs[0],
                dirs[1],
                self.pos(node),
                tuple(self.loops),
                self._cond(),
            )
        )

    def _define_label(self, prog, name, pos):
        """Labels inside .if blocks may be defined once per branch: which one counts is
        known per placement (assembler.select)."""
        conds = self._cond()
        if name in prog.labels and not (conds and prog.labels[name][2]):
            raise pos.error(f"label {name!r} defined twice in program {prog.name!r}")
        prog.labels.setdefault(name, (len(prog.code), pos, conds))
        prog.label_defs.append((name, len(prog.code), pos, conds))

    def on_labelled(self, node):
        label, insn = node.children
        tok = label.children[0]
        prog = self.program(node)
        self._define_label(prog, str(tok), self.pos(tok))
        self.pending_labels.append((str(tok), self.pos(tok)))
        if insn is not None:
            self.on_instruction(insn)

    def on_instruction(self, node):
        macro = self.macros.get(str(node.children[0]))
        if macro is not None:
            self._expand(macro, node)
            return
        if self.in_layout:
            raise self.pos(node).error("instructions are not allowed in .layout")
        prog = self.program(node)
        mnem = node.children[0]
        ops = [c for c in node.children[1:] if c is not None]
        stmt = InsnStmt(
            str(mnem), ops, self.pos(mnem), [n for n, _ in self.pending_labels], self._cond()
        )
        self.pending_labels = []
        prog.code.append(stmt)

    # Conditional assembly: statements record the conditions of the .if blocks around them;
    # the assembler keeps those whose conditions hold for a placement's params (the linker,
    # for .place and .route, with the .repeat variables), so edge PEs pay no runtime branch.

    def _cond(self) -> tuple:
        out = []
        for c in self.conds:
            out.extend((tree, False) for tree in c.prior)
            if c.current is not None:
                out.append((c.current, True))
        if out and self.prog is not None and not self.in_layout:
            self.prog.has_conds = True
        return tuple(out)

    def _unconditional(self, node, what):
        if self.conds:
            raise self.pos(node).error(
                f"{what} inside the .if of line {self.conds[-1].pos.line}",
                ".if blocks hold code, data, tasks, queues, .place and .route lines",
            )

    def _open_if(self, node, what) -> Cond:
        if len(self.conds) <= self.floor[0]:
            raise self.pos(node).error(
                f"{what} without .if" + (" in this macro or file" if self.conds else "")
            )
        cond = self.conds[-1]
        if cond.has_else and what != ".endif":
            raise self.pos(node).error(f"{what} after .else (the .if is on line {cond.pos.line})")
        return cond

    def on_cond_if(self, node):
        if not self.in_layout:
            self.program(node)
        self.conds.append(Cond(self.pos(node), [], node.children[0], False, len(self.loops)))

    def on_cond_elif(self, node):
        cond = self._open_if(node, ".elif")
        cond.prior.append(cond.current)
        cond.current = node.children[0]

    def on_cond_else(self, node):
        cond = self._open_if(node, ".else")
        cond.prior.append(cond.current)
        cond.current = None
        cond.has_else = True

    def on_cond_endif(self, node):
        cond = self._open_if(node, ".endif")
        if len(self.loops) > cond.loop_depth:
            raise self.pos(node).error(
                f".endif inside the .repeat of line {self.loops[-1].pos.line}",
                "close it with .end first",
            )
        self.conds.pop()

    # Macros: the body's text is re-parsed at each use, with each param replaced by the
    # argument's text (in parentheses when it is an expression) and each label defined in
    # the body renamed, so that a macro used twice does not define a label twice.

    def on_macro(self, node):
        name, *params = node.children
        pos = self.pos(name)
        if self.defining is not None:
            raise pos.error(f".macro inside .macro {self.defining.name}")
        self._unconditional(node, ".macro")
        base = str(name).split(".")[0]
        if base in isa.by_mnemonic():
            raise pos.error(f"macro name {base!r} is an instruction")
        if str(name) in self.macros:
            old = self.macros[str(name)].pos
            raise pos.error(
                f"macro {str(name)!r} defined twice", f"first at {old.src.filename}:{old.line}"
            )
        names = [str(p) for p in params if p is not None]
        for k, p in enumerate(names):
            if p in _KEYWORDS:
                raise self.pos(params[k]).error(
                    f"macro parameter {p!r} is a directive keyword",
                    "keywords: " + " ".join(sorted(_KEYWORDS)),
                )
            if p in names[:k]:
                raise self.pos(params[k]).error(f"macro parameter {p!r} appears twice")
        self.defining = Macro(str(name), names, pos, self.src, pos.line + 1)

    def on_endm(self, node):
        if self.defining is None:
            raise self.pos(node).error(".endm without .macro")
        self.defining.last = self.pos(node).line - 1
        self.macros[self.defining.name] = self.defining
        self.defining = None

    def _expand(self, macro: Macro, node):
        mnem = node.children[0]
        pos = self.pos(mnem)
        if self.macro_depth >= MAX_MACRO_DEPTH:
            raise pos.error(
                f"macros nested more than {MAX_MACRO_DEPTH} deep", "does a macro use itself?"
            )
        args = _macro_args(pos.src, mnem)
        if len(args) != len(macro.params):
            raise pos.error(
                f"macro {macro.name} takes {len(macro.params)} arguments, got {len(args)}",
                f"syntax: {macro.name} {', '.join(macro.params)}".rstrip(),
            )
        self.expansions += 1
        if self.expansions > MAX_EXPANSIONS:
            raise pos.error(
                f"more than {MAX_EXPANSIONS} macro uses in all",
                "a macro that uses another several times, many levels deep, grows without end",
            )
        subst = {label: f"{label}__{macro.name}{self.expansions}" for label in macro.labels}
        subst.update(
            (p, a if _PLAIN.fullmatch(a) else f"({a})") for p, a in zip(macro.params, args)
        )
        body = macro.src.lines[macro.first - 1 : macro.last]
        if subst:
            names = "|".join(re.escape(n) for n in sorted(subst, key=len, reverse=True))
            word = re.compile(rf"(?<![\w.%$])({names})(?!\w)")
            body = [word.sub(lambda m: subst[m.group(1)], line) for line in body]
        note = f"in macro {macro.name} used at {pos.src.filename}:{pos.line}:{pos.column}"
        notes = join_notes(note, pos.src.note).split("\n")
        if len(notes) > MAX_NOTES:  # macros within macros: the innermost and outermost uses
            notes = notes[:2] + [f"... {len(notes) - 3} more"] + notes[-1:]
        text = "\n" * (macro.first - 1) + "\n".join(body)
        self.macro_depth += 1
        try:
            self._walk_source(Source(macro.src.filename, text, "\n".join(notes)))
        finally:
            self.macro_depth -= 1

    def on_include(self, node):
        tok = node.children[0]
        pos = self.pos(tok)
        name = str(tok)[1:-1]
        if not name:
            raise pos.error(".include needs a file name")
        path = Path(pos.src.filename).parent / name
        try:
            real = path.resolve()
            if real in self.includes:
                raise pos.error(f"{name} includes itself (through {pos.src.filename})")
            if len(self.includes) > MAX_INCLUDE_DEPTH:
                raise pos.error(f"includes nested more than {MAX_INCLUDE_DEPTH} deep")
            data = path.read_bytes()
        except (OSError, ValueError) as e:
            where = "" if Path(name).is_absolute() else " (relative to the including file)"
            raise pos.error(
                f"cannot read {name}: {getattr(e, 'strerror', None) or e}",
                f"looked for {path}{where}",
            ) from None
        note = join_notes(f"included from {pos.src.filename}:{pos.line}", pos.src.note)
        try:
            text = normalize(decode(data, str(path)), str(path))
        except AsmError as e:
            e.hint = join_notes(e.hint, note)
            raise
        self.includes.append(real)
        try:
            self._walk_source(Source(str(path), text, note))
        finally:
            self.includes.pop()


def _macro_args(src: Source, mnem: Token) -> list[str]:
    """The argument texts of a macro use: its line after the name, split at the commas
    outside brackets and parentheses (comments dropped)."""
    rest = strip_comment(src.lines[mnem.line - 1][mnem.end_column - 1 :]).strip()
    if not rest:
        return []
    args, depth, start = [], 0, 0
    for i, ch in enumerate(rest):
        depth += (ch in "([") - (ch in ")]")
        if ch == "," and depth == 0:
            args.append(rest[start:i].strip())
            start = i + 1
    args.append(rest[start:].strip())
    return args
