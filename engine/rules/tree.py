"""The rule language's canonical form: a JSON expression tree, JsonLogic-shaped.

A node is one of

- a literal: a JSON number, string, boolean or ``null``;
- a list literal: a JSON array of nodes (``["won", "lost"]``);
- a field, the acting user or a referenced record's field: ``{"var": "amount"}``,
  ``{"var": "account.tier"}``, ``{"var": "user.roles"}``;
- an operation: an object with exactly one key, the operator, whose value is the list
  of operand nodes: ``{">": [{"var": "amount"}, 10000]}``, ``{"today": []}``.

The canonical form always writes operands as a list (JsonLogic's unary shorthand
``{"!": x}`` is accepted on input by :func:`normalize` and written ``{"!": [x]}``).

The text form reads ``amount > 10000 and stage == "negotiation"``; :mod:`.syntax`
parses it into this tree and prints a tree back. :data:`OPERATORS` is the table both
directions share: each operator's arity and, for infix ones, its text and precedence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Node = Any


@dataclass(frozen=True)
class Operator:
    """How an operator is written: ``infix`` text and ``precedence`` (higher binds
    tighter) for operators written between operands, else written as a function call."""

    name: str
    min_args: int
    max_args: int | None
    infix: str | None = None
    precedence: int = 0
    prefix: str | None = None


#: Binding strength, loosest first.
OR, AND, NOT, COMPARE, ADD, MULTIPLY, NEGATE = range(1, 8)

OPERATORS: dict[str, Operator] = {op.name: op for op in [
    Operator("or", 1, None, infix="or", precedence=OR),
    Operator("and", 1, None, infix="and", precedence=AND),
    Operator("!", 1, 1, prefix="not", precedence=NOT),
    *(Operator(sym, 2, 2, infix=sym, precedence=COMPARE)
      for sym in ("==", "!=", "<", "<=", ">", ">=")),
    Operator("in", 2, 2, infix="in", precedence=COMPARE),
    Operator("+", 2, 2, infix="+", precedence=ADD),
    Operator("-", 1, 2, infix="-", precedence=ADD, prefix="-"),
    Operator("*", 2, 2, infix="*", precedence=MULTIPLY),
    Operator("/", 2, 2, infix="/", precedence=MULTIPLY),
    Operator("%", 2, 2, infix="%", precedence=MULTIPLY),
    # written as function calls
    Operator("if", 3, 3),
    Operator("coalesce", 1, None),
    Operator("contains", 2, 2),
    Operator("starts_with", 2, 2),
    Operator("is_empty", 1, 1),
    Operator("between", 3, 3),
    Operator("today", 0, 0),
    Operator("now", 0, 0),
    Operator("date", 1, 1),
    Operator("datetime", 1, 1),
    Operator("date_add", 2, 3),
    Operator("days_between", 2, 2),
    Operator("year", 1, 1),
    Operator("month", 1, 1),
    Operator("lower", 1, 1),
    Operator("upper", 1, 1),
    Operator("trim", 1, 1),
    Operator("len", 1, 1),
    Operator("concat", 1, None),
    Operator("round", 1, 2),
    Operator("abs", 1, 1),
    Operator("min", 1, None),
    Operator("max", 1, None),
    Operator("changed", 1, 1),
    Operator("previous", 1, 1),
]}

MAX_DEPTH = 32
MAX_NODES = 500


def is_var(node: Node) -> bool:
    return isinstance(node, dict) and len(node) == 1 and "var" in node


def operation(node: Node) -> tuple[str, list[Node]] | None:
    """``(operator, operands)`` of an operation node, else None."""
    if isinstance(node, dict) and len(node) == 1 and "var" not in node:
        ((op, args),) = node.items()
        return op, args if isinstance(args, list) else [args]
    return None


class TooDeep(ValueError):
    """A tree nested past :data:`MAX_DEPTH` (refused before recursion could overflow)."""


def normalize(node: Node, depth: int = 0) -> Node:
    """The canonical form of a tree: every operation's operands as a list.

    :raises TooDeep: past :data:`MAX_DEPTH` levels.
    """
    if depth > MAX_DEPTH:
        raise TooDeep(f"an expression may nest {MAX_DEPTH} deep")
    if isinstance(node, list):
        return [normalize(n, depth + 1) for n in node]
    if is_var(node) or not isinstance(node, dict):
        return node
    found = operation(node)
    if found is None:
        return node
    op, args = found
    args = [normalize(a, depth + 1) for a in args]
    if op in ("<", "<=") and len(args) == 3:  # JsonLogic's between: lo <= x <= hi
        low, middle, high = args
        return {"and": [{op: [low, middle]}, {op: [middle, high]}]}
    return {op: args}
