"""Assembler errors that point at file:line:col with the source line and a caret."""

from __future__ import annotations


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
        head = f"{self.filename}:{self.line}:{self.column}: error: {self.message}"
        lines = [head]
        if self.source is not None and self.line > 0:
            src_lines = self.source.splitlines()
            if self.line <= len(src_lines):
                text = src_lines[self.line - 1].expandtabs(1)
                lines.append(f"    {text}")
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
        return AsmError(message, self.src.filename, self.line, self.column, self.src.text, hint)


class Source:
    __slots__ = ("filename", "text")

    def __init__(self, filename: str, text: str):
        self.filename = filename
        self.text = text
