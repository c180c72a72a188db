"""The rule language's text form: :func:`parse` reads it into the canonical tree of
:mod:`.tree`, :func:`to_text` prints a tree back.

The text reads ``amount > 10000 and stage == "negotiation"``. From loosest to tightest::

    or  <  and  <  not x  <  == != < <= > >= in  <  + -  <  * / %  <  -x  <  primaries

Comparisons and ``in`` do not chain (``a < b < c`` is a syntax error), ``+ - * / %`` are
left-associative, and chains of one ``and`` or one ``or`` become one operation with all
the operands (``a and b and c`` is ``{"and": [a, b, c]}``; a parenthesised ``(a and b)``
stays a separate operand). Primaries are numbers (``7``, ``2.5``, ``1e3``: an integer
stays an ``int``, anything with a fraction or exponent is a ``float``), strings in double
quotes with JSON escapes (single quotes work too), ``true``, ``false``, ``null``, lists
``[a, b]``, names (``amount``, ``account.tier``) which are fields (``{"var": ...}``), calls
``name(a, b)`` which are operations named by the function (``{"name": [a, b]}``, for
any name: which functions exist and how many arguments they take is checked elsewhere)
and parenthesised expressions. A minus sign written right before a number makes a
negative number (``-5`` is ``-5``), before anything else a negation (``-x`` is
``{"-": [x]}``, ``-(5)`` is ``{"-": [5]}``). An ``and`` or ``or`` of fewer than two
operands, which the tree allows and infix cannot write, is written as a call:
``and(x)`` is ``{"and": [x]}``. ``var`` is not a function (a field is written by its
name) and a function name has no dot.

The parser is built with `lark <https://github.com/lark-parser/lark>`_ (LALR, basic
lexer) from the grammar in :data:`GRAMMAR`, rather than written by hand: lark is a
well-kept parsing library, the grammar stays a readable page that says what the language
is, the LALR table rejects every text the grammar does not derive (so nothing slips
through a hand-written corner case), and on a failure lark reports the position and the
set of tokens that would have been accepted there, which :class:`RuleSyntaxError` turns
into words (``expected a value after 'and', found end of input``). The tree is built
while parsing, by the parser's own reduce callbacks: no recursion, so deep input cannot
exhaust Python's stack. (The basic lexer, not lark's default contextual one: the
contextual lexer would read ``a andy`` as ``a and y``.)

Printing is the reverse: :func:`to_text` writes the fewest parentheses the precedences in
:data:`.tree.OPERATORS` need, so ``parse(to_text(tree)) == tree`` for every tree it writes
(every tree ``parse`` returns among them), and ``to_text(parse(text)) == text`` when
``text`` is already written the way ``to_text`` writes (single spaces around infix
operators, ``, `` between items, double-quoted strings, numbers as JSON writes them).

Limits: a text longer than :data:`MAX_TEXT_LENGTH` characters, or nesting operations and
lists more than :data:`.tree.MAX_DEPTH` levels below the root (the type checker's
count; parentheses alone do not nest), is refused.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedToken

from .tree import ADD, MAX_DEPTH, MULTIPLY, NEGATE, OPERATORS, Node, is_var, operation

__all__ = ["GRAMMAR", "KEYWORDS", "MAX_TEXT_LENGTH", "RuleSyntaxError", "parse", "to_text"]

#: Longest rule text :func:`parse` reads, in characters.
MAX_TEXT_LENGTH = 10_000

#: Words that cannot be field or function names.
KEYWORDS = frozenset({"or", "and", "not", "in", "true", "false", "null"})

#: A field name: lowercase segments joined by dots.
_NAME = re.compile(r"[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*")
_FUNCTION_NAME = re.compile(r"[a-z_][a-z0-9_]*")

GRAMMAR = r"""
?start: or_expr

?or_expr: and_expr
        | and_expr (OR and_expr)+                           -> chain
?and_expr: not_expr
         | not_expr (AND not_expr)+                         -> chain
?not_expr: comparison
         | NOT not_expr                                     -> prefix
?comparison: sum
           | sum (EQ | NE | LT | LE | GT | GE | IN) sum     -> infix
?sum: product
    | sum (PLUS | MINUS) product                            -> infix
?product: unary
        | product (STAR | SLASH | PERCENT) unary            -> infix
// A number right after a minus sign is a negative number, not a negation; "signed"
// never derives a bare NUMBER, so the two readings cannot collide.
?unary: NUMBER                                              -> number
      | signed
?signed: atom
       | MINUS NUMBER                                       -> negative_number
       | MINUS signed                                       -> prefix
?atom: STRING                                               -> string
     | TRUE                                                 -> constant
     | FALSE                                                -> constant
     | NULL                                                 -> constant
     | NAME                                                 -> field
     | NAME LPAR [items] RPAR                               -> call
     // and/or with fewer than two operands, which infix cannot write: and(x)
     | (AND | OR) LPAR [items] RPAR                         -> call
     | LSQB [items] RSQB                                    -> list_literal
     | LPAR or_expr RPAR                                    -> group
items: or_expr (COMMA or_expr)*

OR: "or"
AND: "and"
NOT: "not"
IN: "in"
TRUE: "true"
FALSE: "false"
NULL: "null"
EQ: "=="
NE: "!="
LE: "<="
LT: "<"
GE: ">="
GT: ">"
PLUS: "+"
MINUS: "-"
STAR: "*"
SLASH: "/"
PERCENT: "%"
LPAR: "("
RPAR: ")"
LSQB: "["
RSQB: "]"
COMMA: ","
NUMBER: /[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/
STRING: /"(?:[^"\\\n\r]|\\.)*"/ | /'(?:[^'\\\n\r]|\\.)*'/
NAME: /[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*/

%ignore /\s+/
"""

#: How each terminal reads in an error message's list of expected tokens.
_TERMINAL_WORDS = {
    "NUMBER": "a number", "STRING": "a string", "NAME": "a field name",
    "TRUE": "true", "FALSE": "false", "NULL": "null",
    "OR": "or", "AND": "and", "NOT": "not", "IN": "in",
    "EQ": "==", "NE": "!=", "LT": "<", "LE": "<=", "GT": ">", "GE": ">=",
    "PLUS": "+", "MINUS": "-", "STAR": "*", "SLASH": "/", "PERCENT": "%",
    "LPAR": "(", "RPAR": ")", "LSQB": "[", "RSQB": "]", "COMMA": ",",
    "$END": "end of input",
}
_VALUE_CORE = frozenset({"NUMBER", "STRING", "NAME", "LPAR", "LSQB"})
_VALUE_START = _VALUE_CORE | {"TRUE", "FALSE", "NULL", "MINUS", "NOT"}
_ARITHMETIC = frozenset({"PLUS", "MINUS", "STAR", "SLASH", "PERCENT"})
_COMPARISON = frozenset({"EQ", "NE", "LT", "LE", "GT", "GE", "IN"})
_LOGICAL = frozenset({"AND", "OR"})
_CHARACTER_HINTS = {
    "=": "write == to compare",
    "!": "write not, or != to compare",
    "&": "write and",
    "|": "write or",
}


class RuleSyntaxError(ValueError):
    """A rule text that does not parse.

    ``position`` is the 0-based character offset of the problem, ``line`` and
    ``column`` the same place 1-based, ``expected`` the sorted human-readable tokens that
    would have been accepted there (``["(", "[", "a field name", "a number", ...]``;
    empty when the problem is not a missing token, e.g. a text too long), ``reason`` the
    message without its ``line L, column C:`` prefix.
    """

    def __init__(self, reason: str, *, text: str, position: int,
                 expected: Iterable[str] = ()) -> None:
        self.position = position
        self.line = text.count("\n", 0, position) + 1
        self.column = position - (text.rfind("\n", 0, position) + 1) + 1
        self.expected = sorted(set(expected))
        self.reason = reason
        super().__init__(f"line {self.line}, column {self.column}: {reason}")


class _Refused(Exception):
    """Raised inside the parser's callbacks: a token the grammar accepts but whose value
    is not allowed (a bad escape, a number out of range, nesting too deep)."""

    def __init__(self, reason: str, position: int, expected: Iterable[str] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position
        self.expected = list(expected)


# While parsing, every value is a (node, height) pair: how many levels of operations and
# lists sit above its deepest leaf (0 for a literal, a field or a call without operands).
# The type checker allows a node at most MAX_DEPTH levels below the root, so a tree whose
# height passes MAX_DEPTH is refused here too, at the construct that crosses the limit.
_Built = tuple[Node, int]


def _node(node: Node, children: Sequence[_Built], at: Token) -> _Built:
    depth = 1 + max(d for _, d in children) if children else 0
    if depth > MAX_DEPTH:
        raise _Refused(f"the rule nests more than {MAX_DEPTH} levels deep", _start(at))
    return node, depth


def _start(token: Token) -> int:
    return token.start_pos or 0


_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)")
_JSON_ESCAPES = ['\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\uXXXX"]


def _decode_string(token: Token) -> str:
    quote, body = token[0], token[1:-1]
    for match in _ESCAPE.finditer(body):
        escaped = match.group(1)
        if len(escaped) == 1 and escaped not in '"\\/bfnrt' and not (
                quote == "'" and escaped == "'"):
            allowed = [*_JSON_ESCAPES, *(["\\'"] if quote == "'" else [])]
            raise _Refused(f"invalid escape {match.group(0)!r} in a string",
                           _start(token) + 1 + match.start(), allowed)
    if quote == "'":
        # As JSON: an escaped single quote is a plain one, a plain double quote escaped.
        body = re.sub(r"\\.|\"", lambda m: {"\\'": "'", '"': '\\"'}.get(m[0], m[0]), body)
    return json.loads(f'"{body}"', strict=False)


class _Builder(Transformer):
    """The parser's reduce callbacks (named by the grammar's ``-> alias``)."""

    def number(self, children: list[Token]) -> _Built:
        return _number(children[0], negative=False), 0

    def negative_number(self, children: list[Token]) -> _Built:
        return _number(children[1], negative=True), 0

    def string(self, children: list[Token]) -> _Built:
        return _decode_string(children[0]), 0

    def constant(self, children: list[Token]) -> _Built:
        return {"TRUE": True, "FALSE": False, "NULL": None}[children[0].type], 0

    def field(self, children: list[Token]) -> _Built:
        return {"var": str(children[0])}, 0

    def call(self, children: list[Any]) -> _Built:
        name, _, args, _ = children
        if "." in name:
            raise _Refused(f"{str(name)!r} is not a function name: a function name has no dot",
                           _start(name))
        if name == "var":
            raise _Refused("'var' is not a function: write the field name itself, "
                           "as in amount or account.tier", _start(name))
        args = args or []
        return _node({str(name): [node for node, _ in args]}, args, name)

    def list_literal(self, children: list[Any]) -> _Built:
        bracket, items, _ = children
        items = items or []
        return _node([node for node, _ in items], items, bracket)

    def items(self, children: list[Any]) -> list[_Built]:
        return children[::2]

    def group(self, children: list[Any]) -> _Built:
        return children[1]

    def chain(self, children: list[Any]) -> _Built:
        operands = children[::2]
        op = children[1]
        return _node({str(op): [node for node, _ in operands]}, operands, op)

    def infix(self, children: list[Any]) -> _Built:
        left, op, right = children
        return _node({str(op): [left[0], right[0]]}, [left, right], op)

    def prefix(self, children: list[Any]) -> _Built:
        op, operand = children
        return _node({"!" if op.type == "NOT" else "-": [operand[0]]}, [operand], op)


def _number(token: Token, *, negative: bool) -> int | float:
    text = str(token)
    value: int | float
    try:
        value = float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:  # more digits than int() converts
        value = math.inf
    if math.isinf(value):
        raise _Refused(f"the number {text[:20]}{'...' if len(text) > 20 else ''} is too large",
                       _start(token))
    return -value if negative else value


@functools.cache
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", lexer="basic", transformer=_Builder(),
                maybe_placeholders=True)


def parse(text: str) -> Node:
    """The canonical tree of a rule text.

    :raises RuleSyntaxError: if it does not parse, is longer than ``MAX_TEXT_LENGTH``
        characters or nests deeper than ``MAX_DEPTH``; never a lark exception.
    """
    if not isinstance(text, str):
        raise TypeError(f"rule text must be a string, not {type(text).__name__}")
    if len(text) > MAX_TEXT_LENGTH:
        raise RuleSyntaxError(
            f"the rule is {len(text):,} characters long; the limit is {MAX_TEXT_LENGTH:,}",
            text=text, position=MAX_TEXT_LENGTH)
    interactive = _parser().parse_interactive(text)
    taken: list[Token] = []  # the tokens the parser took
    try:
        for token in interactive.iter_parse():
            # iter_parse yields a token, then feeds it: each token is known to be taken
            # once the next one arrives.
            taken.append(token)
        node, _ = interactive.feed_eof(taken[-1] if taken else None)
        return node
    except _Refused as exc:
        raise RuleSyntaxError(exc.reason, text=text, position=exc.position,
                              expected=exc.expected) from None
    except UnexpectedCharacters as exc:  # from the lexer, after the last token was taken
        raise _character_error(text, exc.pos_in_stream or 0, taken) from None
    except UnexpectedToken as exc:
        if exc.token.type != "$END":
            taken.pop()  # the token the parser refused
        raise _token_error(text, exc.token, taken) from None
    except LarkError as exc:  # pragma: no cover - lark raises nothing else for a text
        raise RuleSyntaxError(f"cannot parse the rule ({exc})", text=text,
                              position=0) from None


def _accepts(taken: list[Token]) -> set[str]:
    """The terminals the parser accepts after ``taken``.

    Asked of a fresh parser fed the same tokens: the one that failed may have reduced
    on the refused token first (``b`` of ``a < b < c`` already closed as an operand of
    ``<``), which would leave out tokens that were fine right after it (``*``, ``(``).
    """
    replay = _parser().parse_interactive("")
    for token in taken:
        replay.feed_token(token)
    accepts = set(replay.accepts())
    if accepts >= _VALUE_CORE:
        accepts -= _LOGICAL  # where a value starts, "and"/"or" only start and(x): unsaid
    return accepts


def _character_error(text: str, position: int, taken: list[Token]) -> RuleSyntaxError:
    char = text[position]
    if char in "\"'":
        end = "the end of the line" if "\n" in text[position:] else "end of input"
        return RuleSyntaxError(
            f"expected a closing {char} for the string that starts here, found {end}",
            text=text, position=position, expected=[char])
    accepts = _accepts(taken)
    previous = taken[-1] if taken else None
    reason = f"expected {_phrase(accepts)}{_after(previous)}, found the character {char!r}"
    if char in _CHARACTER_HINTS:
        reason += f" ({_CHARACTER_HINTS[char]})"
    elif char.isupper():
        reason += " (names and keywords are lowercase)"
    return RuleSyntaxError(reason, text=text, position=position, expected=_words(accepts))


def _token_error(text: str, token: Token, taken: list[Token]) -> RuleSyntaxError:
    accepts = _accepts(taken)
    previous = taken[-1] if taken else None
    if token.type == "$END":
        # Right after the last token (lark would point at its start).
        position = (previous.end_pos or 0) if previous is not None else 0
        found = "end of input"
    else:
        position = _start(token)
        found = _show(token)
    reason = f"expected {_phrase(accepts)}{_after(previous)}, found {found}"
    if token.type == "NOT" and "NOT" not in accepts:
        reason += " (put a not inside an operand in parentheses: a == (not b))"
    elif token.type in _COMPARISON and not accepts & _COMPARISON:
        reason += " (comparisons do not chain: join them with and, as in a < b and b < c)"
    return RuleSyntaxError(reason, text=text, position=position, expected=_words(accepts))


def _words(terminals: Iterable[str]) -> list[str]:
    return sorted(_TERMINAL_WORDS.get(name, name) for name in terminals)


def _phrase(terminals: Iterable[str]) -> str:
    """The expected tokens in words: ``a value``, ``an operator``, ``')' or ','``..."""
    names = set(terminals)
    parts = []
    if names >= _VALUE_CORE:
        parts.append("a value")
        names -= _VALUE_START
    if names >= _ARITHMETIC | _COMPARISON | _LOGICAL:
        parts.append("an operator")
        names -= _ARITHMETIC | _COMPARISON | _LOGICAL
    elif names >= _ARITHMETIC:
        parts.append("an arithmetic operator")
        names -= _ARITHMETIC
    parts += [_TERMINAL_WORDS[n] for n in ("NUMBER", "STRING", "NAME") if n in names]
    tokens = names - {"$END", "NUMBER", "STRING", "NAME"}
    parts += [f"'{word}'" for word in sorted(_TERMINAL_WORDS.get(n, n) for n in tokens)]
    if "$END" in names:
        parts.append("end of input")
    if len(parts) < 2:
        return parts[0] if parts else "nothing"
    return f"{', '.join(parts[:-1])} or {parts[-1]}"


def _after(token: Token | None) -> str:
    return "" if token is None else f" after {_show(token)}"


def _show(token: Token) -> str:
    value = str(token)
    return f"'{value[:24]}...'" if len(value) > 27 else f"'{value}'"


# --- printing ---------------------------------------------------------------------------

_PRIMARY = NEGATE + 1


def to_text(tree: Node) -> str:
    """The text of a canonical tree (JsonLogic's unary shorthand ``{"!": x}`` is read as
    ``{"!": [x]}``; an ``and``/``or`` of fewer than two operands is written ``and(x)``).

    :raises ValueError: if the tree has no text form: something that is not a node, a
        non-finite number, a field name that is not a name, a function name that is not
        a lowercase identifier (or is a keyword, or ``var``), an infix or prefix operator
        with a number of operands it cannot be written with (``{"<": [a, b, c]}``), or
        nesting deeper than ``MAX_DEPTH``.
    """
    return _write(tree, 0)[0]


def _write(node: Node, level: int) -> tuple[str, int]:
    """``(text, binding strength of its outermost construct)`` of a node ``level`` levels
    below the root."""
    if level > MAX_DEPTH:
        raise ValueError(f"the tree nests more than {MAX_DEPTH} levels deep")
    if node is None or isinstance(node, bool):
        return json.dumps(node), _PRIMARY
    if isinstance(node, int | float):
        if isinstance(node, float) and not math.isfinite(node):
            raise ValueError(f"{node!r} has no text form")
        text = json.dumps(node)
        return text, NEGATE if text.startswith("-") else _PRIMARY
    if isinstance(node, str):
        return json.dumps(node, ensure_ascii=False), _PRIMARY
    if isinstance(node, list):
        items = ", ".join(_write(item, level + 1)[0] for item in node)
        return f"[{items}]", _PRIMARY
    if is_var(node):
        name = node["var"]
        if not isinstance(name, str) or not _NAME.fullmatch(name) or name in KEYWORDS:
            raise ValueError(f"field {name!r} has no text form: not a name")
        return name, _PRIMARY
    op_args = operation(node)
    if op_args is None:
        raise ValueError(f"{node!r} is not a rule tree node")
    op, args = op_args
    spec = OPERATORS.get(op) if isinstance(op, str) else None
    if spec is not None and spec.prefix and len(args) == 1:
        # "-" shares its entry with infix minus: as a prefix it binds tighter than "*".
        binding = NEGATE if spec.infix else spec.precedence
        operand, strength = _write(args[0], level + 1)
        if strength < binding or (
                spec.prefix == "-" and _is_number(args[0]) and strength == _PRIMARY):
            operand = f"({operand})"  # -(5) is a negation; -5 would be a number
        separator = "" if spec.prefix == "-" else " "
        return f"{spec.prefix}{separator}{operand}", binding
    if op in ("and", "or") and len(args) < 2:
        written = ", ".join(_write(arg, level + 1)[0] for arg in args)
        return f"{op}({written})", _PRIMARY
    if spec is not None and spec.infix:
        if len(args) != 2 and op not in ("and", "or"):
            raise ValueError(f"{op!r} with {len(args)} operands has no text form")
        strength = spec.precedence
        # Left-associative arithmetic keeps (a - b) - c bare; comparisons do not chain and
        # a nested and/or inside the same and/or keeps its parentheses (it is not flattened).
        left_min = strength if strength in (ADD, MULTIPLY) else strength + 1
        parts = []
        for i, arg in enumerate(args):
            text, inner = _write(arg, level + 1)
            parts.append(f"({text})" if inner < (left_min if i == 0 else strength + 1)
                         else text)
        return f" {spec.infix} ".join(parts), strength
    if (spec is not None and (spec.infix or spec.prefix)) or not _is_function_name(op):
        raise ValueError(f"operator {op!r} with {len(args)} operands has no text form")
    written = ", ".join(_write(arg, level + 1)[0] for arg in args)
    return f"{op}({written})", _PRIMARY


def _is_function_name(name: object) -> bool:
    return (isinstance(name, str) and _FUNCTION_NAME.fullmatch(name) is not None
            and name not in KEYWORDS and name != "var")


def _is_number(node: Node) -> bool:
    return isinstance(node, int | float) and not isinstance(node, bool)

