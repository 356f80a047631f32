"""Parameter constraints: a small, safe comparison language (a tokenizer and a recursive-descent parser;
nothing is ever passed to ``eval``).

Grammar (``and`` joins comparisons; comparisons may chain like Python's ``a < b <= c``)::

    constraint := comparison ( "and" comparison )*
    comparison := sum ( ("<" | "<=" | ">" | ">=" | "==" | "!=") sum )+
    sum        := product ( ("+" | "-") product )*
    product    := unary ( ("*" | "/") unary )*
    unary      := "-" unary | atom
    atom       := NUMBER | REF | "(" sum ")"
    REF        := PLUGIN "." PARAM | PARAM  e.g. ma_crossover.fast, or fast when only one plugin has it

A parsed :class:`Constraint` evaluates on plain numbers or, vectorised, on numpy arrays (the planner
counts a constrained sub-grid in one pass).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<ref>[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op><=|>=|==|!=|<|>|\+|-|\*|/|\(|\)))"
)
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
MAX_LENGTH = 500


class ConstraintSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    kind: str  # num | ref | word | op | end
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_LENGTH:
        raise ConstraintSyntaxError(f"longer than {MAX_LENGTH} characters")
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ConstraintSyntaxError(f"unexpected character {text[pos:].lstrip()[:1]!r} at {pos + 1}")
        kind = m.lastgroup or "op"
        tokens.append(Token(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# AST nodes are tuples: ("num", float) | ("ref", "plugin.param") | ("neg", node)
# | ("bin", op, left, right) | ("cmp", [node, op, node, op, node...]) | ("and", [cmp, ...])


class _Parser:
    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect_end(self) -> None:
        tok = self.peek()
        if tok.kind != "end":
            raise ConstraintSyntaxError(f"unexpected {tok.text!r} at {tok.pos + 1}")

    def constraint(self) -> tuple:
        parts = [self.comparison()]
        while self.peek().kind == "word" and self.peek().text == "and":
            self.take()
            parts.append(self.comparison())
        self.expect_end()
        return ("and", parts)

    def comparison(self) -> tuple:
        chain: list[Any] = [self.sum()]
        while self.peek().kind == "op" and self.peek().text in COMPARISONS:
            chain.append(self.take().text)
            chain.append(self.sum())
        if len(chain) == 1:
            tok = self.peek()
            where = f"at {tok.pos + 1}" if tok.kind != "end" else "at the end"
            raise ConstraintSyntaxError(
                f"expected a comparison ({' '.join(COMPARISONS)}) {where}; e.g. 'ma_crossover.fast < "
                "ma_crossover.slow'"
            )
        return ("cmp", chain)

    def sum(self) -> tuple:
        node = self.product()
        while self.peek().kind == "op" and self.peek().text in "+-":
            op = self.take().text
            node = ("bin", op, node, self.product())
        return node

    def product(self) -> tuple:
        node = self.unary()
        while self.peek().kind == "op" and self.peek().text in ("*", "/"):
            op = self.take().text
            node = ("bin", op, node, self.unary())
        return node

    def unary(self) -> tuple:
        if self.peek().kind == "op" and self.peek().text == "-":
            self.take()
            return ("neg", self.unary())
        return self.atom()

    def atom(self) -> tuple:
        tok = self.take()
        if tok.kind == "num":
            return ("num", float(tok.text))
        if tok.kind == "ref":
            return ("ref", tok.text)
        if tok.kind == "op" and tok.text == "(":
            node = self.sum()
            close = self.take()
            if close.text != ")":
                raise ConstraintSyntaxError(f"expected ')' at {close.pos + 1}")
            return node
        if tok.kind == "word" and tok.text != "and":
            return ("ref", tok.text)  # a bare PARAM; the planner resolves it when only one plugin has it
        if tok.kind == "end":
            raise ConstraintSyntaxError("unexpected end; expected a number, PLUGIN.PARAM or '('")
        raise ConstraintSyntaxError(f"unexpected {tok.text!r} at {tok.pos + 1}")


def _refs(node: tuple, out: list[str]) -> None:
    kind = node[0]
    if kind == "ref":
        if node[1] not in out:
            out.append(node[1])
    elif kind == "neg":
        _refs(node[1], out)
    elif kind == "bin":
        _refs(node[2], out)
        _refs(node[3], out)
    elif kind == "cmp":
        for part in node[1][::2]:
            _refs(part, out)
    elif kind == "and":
        for part in node[1]:
            _refs(part, out)


def _value(node: tuple, env: dict[str, Any]) -> Any:
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "ref":
        return env[node[1]]
    if kind == "neg":
        return -_value(node[1], env)
    a, b = _value(node[2], env), _value(node[3], env)
    op = node[1]
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(a, b)  # x/0 is inf or nan, and a comparison with nan is false


_CMP = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


@dataclass(frozen=True)
class Constraint:
    """One parsed constraint; ``refs`` are its PLUGIN.PARAM operands in order of appearance."""

    text: str
    tree: tuple
    refs: tuple[str, ...]

    def evaluate(self, env: dict[str, Any]) -> Any:
        """True/False for numbers, a boolean array for numpy arrays (broadcasting)."""
        result: Any = True
        for cmp in self.tree[1]:
            chain = cmp[1]
            left = _value(chain[0], env)
            for k in range(1, len(chain), 2):
                right = _value(chain[k + 1], env)
                result = np.logical_and(result, _CMP[chain[k]](left, right))
                left = right
        return result

    def holds(self, env: dict[str, Any]) -> bool:
        return bool(self.evaluate(env))


def parse_constraint(text: str) -> Constraint:
    """Parse one constraint; raises :class:`ConstraintSyntaxError` naming the position."""
    if not isinstance(text, str) or not text.strip():
        raise ConstraintSyntaxError("empty constraint")
    tree = _Parser(text).constraint()
    refs: list[str] = []
    _refs(tree, refs)
    if not refs:
        raise ConstraintSyntaxError("compares only numbers; reference at least one PLUGIN.PARAM")
    return Constraint(text=text.strip(), tree=tree, refs=tuple(refs))
