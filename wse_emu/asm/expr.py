"""Assembler-time expressions: integer and float arithmetic over constants, params,
symbols (their byte address), labels and tasks."""

from __future__ import annotations

import math
import operator

from lark import Token, Tree

from .errors import Pos, Source

BUILTIN_NAMES = {"inf": math.inf, "nan": math.nan}

_BINARY = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "bor": operator.or_,
    "bxor": operator.xor,
    "band": operator.and_,
    "shl": operator.lshift,
    "shr": operator.rshift,
    # comparisons and logic give 1 or 0, for .if conditions (and anywhere else)
    "eq": lambda a, b: int(a == b),
    "ne": lambda a, b: int(a != b),
    "lt": lambda a, b: int(a < b),
    "le": lambda a, b: int(a <= b),
    "gt": lambda a, b: int(a > b),
    "ge": lambda a, b: int(a >= b),
}
_INT_ONLY = {"bor", "bxor", "band", "shl", "shr", "mod", "inv"}


# Integers in expressions stay within +-2**64: every field they feed is 32 bits or less, and
# unbounded ones (1 << 10**9, or 10**5000 printed in a message) would hang or raise.
INT_LIMIT = 1 << 64
_MAX_DIGITS = {"int": 21, "hex": 19}  # 0x + 17 digits > 2**64 already


def _cdiv(a, b):
    return -(-a // b)


def _shown(text: str) -> str:
    return text if len(text) <= 24 else text[:20] + "..."


class Scope:
    """Names visible to an expression. `sizes` maps a .data symbol to (bytes, elements)."""

    def __init__(self, src: Source, values: dict, sizes: dict | None = None):
        self.src = src
        self.values = values
        self.sizes = sizes or {}

    def pos(self, node) -> Pos:
        return Pos.of(node, self.src)

    def eval(self, node):
        if isinstance(node, Token):
            return self._name(node)
        kind = node.data
        ch = node.children
        if kind in ("int", "hex", "float"):
            return self._literal(node)
        if kind == "name":
            return self._name(ch[0])
        if kind == "neg":
            return self._bounded(node, -self.eval(ch[0]))
        if kind == "factor":  # unary plus
            return self.eval(ch[0])
        if kind in ("land", "lor"):  # short-circuit: `N != 0 && 8 / N > 1` is safe
            first = bool(self.eval(ch[0]))
            if first == (kind == "lor"):
                return int(first)
            return int(bool(self.eval(ch[1])))
        if kind == "lnot":
            return int(not self.eval(ch[0]))
        if kind == "inv":
            return self._bounded(node, ~self.int(ch[0]))
        if kind == "func":
            return self._func(ch[0], ch[1].children)
        if kind in _BINARY or kind in ("div", "mod"):
            a, b = self.eval(ch[0]), self.eval(ch[1])
            try:
                result = self._binary(node, kind, a, b)
            except OverflowError:
                result = math.inf
            if isinstance(result, float) and not math.isfinite(result):
                if math.isfinite(a) and math.isfinite(b):
                    raise self.pos(node).error(f"float overflow: {a!r} and {b!r}")
            return self._bounded(node, result)
        raise self.pos(node).error(f"not an expression here ({kind})")

    def _binary(self, node, kind, a, b):
        if kind in _INT_ONLY and not (isinstance(a, int) and isinstance(b, int)):
            raise self.pos(node).error(f"operator needs integers, got {a!r} and {b!r}")
        if kind in ("div", "mod"):
            if b == 0:
                raise self.pos(node).error("division by zero")
            if kind == "mod":
                return a % b
            return a // b if isinstance(a, int) and isinstance(b, int) else a / b
        if kind in ("shl", "shr") and b < 0:
            raise self.pos(node).error("negative shift count")
        if kind == "shl" and a != 0 and b > 64:
            raise self.pos(node).error(f"shift count {b} too large (limit 64)")
        return _BINARY[kind](a, b)

    def _literal(self, node):
        kind, text = node.data, str(node.children[0])
        if kind == "float":
            value = float(text)
            if math.isinf(value):
                raise self.pos(node).error(f"float literal {_shown(text)} overflows")
            return value
        if len(text) > _MAX_DIGITS[kind]:
            raise self.pos(node).error(f"integer literal {_shown(text)} is too large")
        return self._bounded(node, int(text, 16 if kind == "hex" else 10))

    def _bounded(self, node, value):
        if isinstance(value, int) and not -INT_LIMIT <= value <= INT_LIMIT:
            raise self.pos(node).error(f"integer {value} out of range (limit +-2**64)")
        return value

    def int(self, node) -> int:
        value = self.eval(node)
        if isinstance(value, float):
            if not value.is_integer():
                raise self.pos(node).error(f"expected an integer, got {value!r}")
            if abs(value) > INT_LIMIT:
                raise self.pos(node).error(f"integer {value!r} out of range (limit +-2**64)")
            value = int(value)
        return value

    def int_in(self, node, what: str, lo: int, hi: int) -> int:
        """An integer field with its range: out of it, a located error naming the field."""
        value = self.int(node)
        if not lo <= value <= hi:
            raise self.pos(node).error(f"{what} {value} out of range {lo}-{hi}")
        return value

    def _name(self, tok: Token):
        name = str(tok)
        if name in self.values:
            return self.values[name]
        if name in BUILTIN_NAMES:
            return BUILTIN_NAMES[name]
        known = sorted(n for n in self.values if not n.startswith("_"))
        hint = ("known names: " + ", ".join(known[:20])) if known else ""
        raise self.pos(tok).error(f"undefined name {name!r}", hint)

    def _func(self, tok: Token, args):
        name = str(tok)
        if name in ("sizeof", "len"):
            if len(args) != 1 or not (isinstance(args[0], Tree) and args[0].data == "name"):
                raise self.pos(tok).error(f"{name}() takes one .data symbol name")
            sym = str(args[0].children[0])
            if sym not in self.sizes:
                raise self.pos(args[0]).error(f"{sym!r} is not a .data symbol")
            nbytes, count = self.sizes[sym]
            return nbytes if name == "sizeof" else count
        funcs = {"min": min, "max": max, "cdiv": _cdiv, "abs": abs}
        if name not in funcs:
            raise self.pos(tok).error(
                f"unknown function {name!r}", "expected one of sizeof, len, min, max, cdiv, abs"
            )
        vals = [self.eval(a) for a in args]
        try:
            return self._bounded(tok, funcs[name](*vals))
        except (TypeError, ZeroDivisionError, OverflowError) as e:
            raise self.pos(tok).error(f"{name}(): {e}") from None
