"""Assembler errors that point at file:line:col with the source line and a caret."""

from __future__ import annotations


def source_lines(text: str) -> list[str]:
    """The lines of a (normalized) source as the parser counts them: only '\\n' ends a line.
    (str.splitlines also splits at '\\v', '\\f', '\\x1c' ... and would shift line numbers.)"""
    return text.split("\n")


def location(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset, counting lines as the parser does."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def shown_line(text: str) -> str:
    """A source line as printed under an error: one printable character per column, so the
    caret lines up (a tab shows as one space, other control characters as '?')."""
    return "".join(c if c.isprintable() else " " if c == "\t" else "?" for c in text)


class AsmError(Exception):
    def __init__(
        self,
        message: str,
        filename: str = "<input>",
        line: int = 0,
        column: int = 0,
        source: str | None = None,
        hint: str = "",
    ):
        super().__init__(message)
        self.message = message
        self.filename = filename
        self.line = line
        self.column = column
        self.source = source
        self.hint = hint

    def __str__(self) -> str:
        where = f"{self.filename}:{self.line}:{self.column}" if self.line > 0 else self.filename
        lines = [f"{where}: error: {self.message}"]
        if self.source is not None and self.line > 0:
            src_lines = source_lines(self.source)
            if self.line <= len(src_lines):
                lines.append(f"    {shown_line(src_lines[self.line - 1])}")
                lines.append("    " + " " * max(self.column - 1, 0) + "^")
        if self.hint:
            lines.append(self.hint)
        return "\n".join(lines)


class Pos:
    """Where a construct starts in its file; raises AsmErrors about it."""

    __slots__ = ("src", "line", "column")

    def __init__(self, src, line: int, column: int):
        self.src = src
        self.line = line
        self.column = column

    def error(self, message: str, hint: str = "") -> AsmError:
        hint = join_notes(hint, self.src.note)
        return AsmError(message, self.src.filename, self.line, self.column, self.src.text, hint)

    @classmethod
    def of(cls, node, default: Source) -> Pos:
        """Where a parse-tree node starts: in the source it was parsed from (an included
        file or a macro expansion tags its nodes with `src`), else in `default`."""
        if hasattr(node, "meta"):
            return cls(getattr(node.meta, "src", default), node.meta.line, node.meta.column)
        return cls(getattr(node, "src", default), node.line, node.column)


class Source:
    """A file's text, or a macro expansion's: `note` says where it was expanded and is
    added to every error located in it."""

    __slots__ = ("filename", "text", "note", "_lines")

    def __init__(self, filename: str, text: str, note: str = ""):
        self.filename = filename
        self.text = text
        self.note = note
        self._lines = None

    @property
    def lines(self) -> list[str]:
        """The text's lines, split once (listings, stepping and macro uses ask often)."""
        if self._lines is None:
            self._lines = source_lines(self.text)
        return self._lines

    def line(self, n: int) -> str:
        """Line n (1-based) without its trailing comment or blanks; '' past the end."""
        lines = self.lines
        return strip_comment(lines[n - 1]).strip() if 1 <= n <= len(lines) else ""


def join_notes(first: str, then: str) -> str:
    """Two hint or note texts, one per line; either may be empty."""
    return f"{first}\n{then}" if first and then else first or then


def strip_comment(line: str) -> str:
    """A source line without its ';' or '//' comment (no string literal holds either)."""
    for mark in (";", "//"):
        cut = line.find(mark)
        if cut >= 0:
            line = line[:cut]
    return line
