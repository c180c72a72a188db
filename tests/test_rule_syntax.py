"""The rule language's text form: parsing to the canonical tree, printing back, errors."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from blockscrm.engine.rules.syntax import KEYWORDS, RuleSyntaxError, parse, to_text
from blockscrm.engine.rules.tree import MAX_DEPTH, OPERATORS

A, B, C, D = ({"var": n} for n in "abcd")

#: What may start a value, as RuleSyntaxError.expected lists it.
VALUE = ["(", "-", "[", "a field name", "a number", "a string", "false", "not", "null",
         "true"]
#: What may follow a field name at the top level.
AFTER_NAME = ["!=", "%", "(", "*", "+", "-", "/", "<", "<=", "==", ">", ">=", "and",
              "end of input", "in", "or"]


# --- text -> tree, and back to the same text ---------------------------------------------

CANONICAL = [
    ('amount > 10000 and stage == "negotiation"',
     {"and": [{">": [{"var": "amount"}, 10000]}, {"==": [{"var": "stage"}, "negotiation"]}]}),
    ("days_between(today(), close_date) <= 7",
     {"<=": [{"days_between": [{"today": []}, {"var": "close_date"}]}, 7]}),
    ('if(discount > 20, "director", "manager")',
     {"if": [{">": [{"var": "discount"}, 20]}, "director", "manager"]}),
    # precedence
    ("a or b and c", {"or": [A, {"and": [B, C]}]}),
    ("(a or b) and c", {"and": [{"or": [A, B]}, C]}),
    ("not a and b", {"and": [{"!": [A]}, B]}),
    ("not (a and b)", {"!": [{"and": [A, B]}]}),
    ("not a == b", {"!": [{"==": [A, B]}]}),
    ("(not a) == b", {"==": [{"!": [A]}, B]}),
    ("not not a", {"!": [{"!": [A]}]}),
    ("a + b * c", {"+": [A, {"*": [B, C]}]}),
    ("(a + b) * c", {"*": [{"+": [A, B]}, C]}),
    ("a + b < c * d", {"<": [{"+": [A, B]}, {"*": [C, D]}]}),
    ("a == b and c != d", {"and": [{"==": [A, B]}, {"!=": [C, D]}]}),
    ("(a == b) == c", {"==": [{"==": [A, B]}, C]}),
    ("a == (b == c)", {"==": [A, {"==": [B, C]}]}),
    ("a % b / c", {"/": [{"%": [A, B]}, C]}),
    ("a >= 1 or b <= 2 or c > 3", {"or": [{">=": [A, 1]}, {"<=": [B, 2]}, {">": [C, 3]}]}),
    # flattening: one chain of one operator, parentheses keep a separate operand
    ("a and b and c", {"and": [A, B, C]}),
    ("a or b or c or d", {"or": [A, B, C, D]}),
    ("(a and b) and c", {"and": [{"and": [A, B]}, C]}),
    ("a and (b and c)", {"and": [A, {"and": [B, C]}]}),
    ("a and b or c and d", {"or": [{"and": [A, B]}, {"and": [C, D]}]}),
    # associativity
    ("a - b - c", {"-": [{"-": [A, B]}, C]}),
    ("a - (b - c)", {"-": [A, {"-": [B, C]}]}),
    ("a / b / c", {"/": [{"/": [A, B]}, C]}),
    ("a / (b * c)", {"/": [A, {"*": [B, C]}]}),
    ("a + b - c", {"-": [{"+": [A, B]}, C]}),
    ("a - (b + c)", {"-": [A, {"+": [B, C]}]}),
    # unary minus and negative numbers
    ("-5", -5),
    ("-2.5", -2.5),
    ("-a", {"-": [A]}),
    ("-(5)", {"-": [5]}),
    ("--5", {"-": [-5]}),
    ("--a", {"-": [{"-": [A]}]}),
    ("-a * b", {"*": [{"-": [A]}, B]}),
    ("-(a * b)", {"-": [{"*": [A, B]}]}),
    ("a - -5", {"-": [A, -5]}),
    ("a * -b", {"*": [A, {"-": [B]}]}),
    ("-5 * 2", {"*": [-5, 2]}),
    ("-(not a)", {"-": [{"!": [A]}]}),
    ("not -a", {"!": [{"-": [A]}]}),
    ("-abs(a)", {"-": [{"abs": [A]}]}),
    # literals
    ("0", 0),
    ("2.5", 2.5),
    ("1000.0", 1000.0),
    ("1e+20", 1e20),
    ("1.5e-07", 1.5e-07),
    ("12345678901234567890", 12345678901234567890),
    ("true", True),
    ("false", False),
    ("null", None),
    ('""', ""),
    ('"say \\"hi\\"\\n\\tpath\\\\to"', 'say "hi"\n\tpath\\to'),
    ('"客户等级 = 金牌"', "客户等级 = 金牌"),
    ('"naïve café ✓"', "naïve café ✓"),
    ("[]", []),
    ("[1, 2]", [1, 2]),
    ('["won", "lost"]', ["won", "lost"]),
    ("[a, b + 1, [true, null]]", [A, {"+": [B, 1]}, [True, None]]),
    # in, names, calls
    ("x in [1, 2]", {"in": [{"var": "x"}, [1, 2]]}),
    ('stage in ["won", "lost"] and amount > 0',
     {"and": [{"in": [{"var": "stage"}, ["won", "lost"]]}, {">": [{"var": "amount"}, 0]}]}),
    ('"admin" in user.roles', {"in": ["admin", {"var": "user.roles"}]}),
    ("a + 1 in b", {"in": [{"+": [A, 1]}, B]}),
    ("not a in b", {"!": [{"in": [A, B]}]}),
    ('account.tier == "gold"', {"==": [{"var": "account.tier"}, "gold"]}),
    ("deal.account.owner_2", {"var": "deal.account.owner_2"}),
    ("_private", {"var": "_private"}),
    ("android or notes or true_value or null_count or index",
     {"or": [{"var": n} for n in ["android", "notes", "true_value", "null_count", "index"]]}),
    ("user.in", {"var": "user.in"}),
    ("today()", {"today": []}),
    ("coalesce(a, b, 0)", {"coalesce": [A, B, 0]}),
    ("my_plugin_score(a, [1, 2])", {"my_plugin_score": [A, [1, 2]]}),
    ("round(a / 3, 2) + 1", {"+": [{"round": [{"/": [A, 3]}, 2]}, 1]}),
    ('if(a > 1, "x", if(b, "y", "z"))', {"if": [{">": [A, 1]}, "x", {"if": [B, "y", "z"]}]}),
]


@pytest.mark.parametrize(("text", "tree"), CANONICAL, ids=[t for t, _ in CANONICAL])
def test_parse(text: str, tree: Any) -> None:
    assert parse(text) == tree


@pytest.mark.parametrize(("text", "tree"), CANONICAL, ids=[t for t, _ in CANONICAL])
def test_to_text(text: str, tree: Any) -> None:
    assert to_text(tree) == text
    assert to_text(parse(text)) == text


def test_numbers_keep_their_type() -> None:
    assert type(parse("7")) is int
    assert type(parse("-7")) is int
    assert type(parse("7.0")) is float
    assert type(parse("1e3")) is float and parse("1e3") == 1000.0


LENIENT = [  # texts that parse, written otherwise than to_text writes them
    ("  amount>1\n\tand\r\nstage=='won'  ", "amount > 1 and stage == \"won\""),
    ("((a))", "a"),
    ("(a + b) + c", "a + b + c"),
    ("(a * b) + c", "a * b + c"),
    ("- 5", "-5"),
    ("-  a", "-a"),
    ("1E3", "1000.0"),
    ("007", "7"),
    ("2.50", "2.5"),
    ("'single'", '"single"'),
    ("'it\\'s \"quoted\"'", '"it\'s \\"quoted\\""'),
    ('"\\u00e9\\u4e2d\\/"', '"é中/"'),
    ('"\\ud83d\\ude00"', '"😀"'),
    ("f( a ,b )", "f(a, b)"),
    ("[ 1 ,2 ]", "[1, 2]"),
    ("and(a, b)", "a and b"),
    ("a and (b)", "a and b"),
    ("a\u3000and\u00a0b", "a and b"),  # ideographic and no-break spaces are spaces
]


@pytest.mark.parametrize(("text", "canonical"), LENIENT, ids=[t for t, _ in LENIENT])
def test_lenient_input(text: str, canonical: str) -> None:
    assert to_text(parse(text)) == canonical
    assert parse(canonical) == parse(text)


# --- tree -> text ------------------------------------------------------------------------

PRINTED = [
    ({"!": A}, "not a"),  # JsonLogic's unary shorthand
    ({"!": {"==": [A, 1]}}, "not a == 1"),
    ({"is_empty": A}, "is_empty(a)"),
    ({"-": [5]}, "-(5)"),
    ({"-": [0.0]}, "-(0.0)"),
    ({"-": [-0.0]}, "--0.0"),
    ({"-": [True]}, "-true"),
    ({"*": [{"-": [A, B]}, {"+": [C, D]}]}, "(a - b) * (c + d)"),
    ({"and": [{"or": [A, B]}, {"or": [C, D]}]}, "(a or b) and (c or d)"),
    ({"or": [{"or": [A, B]}, C]}, "(a or b) or c"),
    ({"==": [{"!": [A]}, {"!": [B]}]}, "(not a) == (not b)"),
    ({"+": [{"==": [A, B]}, 1]}, "(a == b) + 1"),
    ({"in": [{"in": [A, B]}, C]}, "(a in b) in c"),
    ({"cat": ["a", 1]}, 'cat("a", 1)'),  # unknown operators are function calls
    ({"if": []}, "if()"),  # arity is checked elsewhere
    ("tab\there", '"tab\\there"'),
    ("中文 \"引号\" \\", '"中文 \\"引号\\" \\\\"'),
    (1e16, "1e+16"),
    (-1.5, "-1.5"),
]


@pytest.mark.parametrize(("tree", "text"), PRINTED, ids=[t for _, t in PRINTED])
def test_to_text_writes(tree: Any, text: str) -> None:
    assert to_text(tree) == text
    expected = tree if not isinstance(tree, dict) or isinstance(next(iter(tree.values())), list) \
        else {k: [v] for k, v in tree.items()}
    assert parse(text) == expected


UNPRINTABLE = [
    ({"var": "and"}, "field"),
    ({"var": "Amount"}, "field"),
    ({"var": "a..b"}, "field"),
    ({"var": ["a", 0]}, "field"),
    ({"var": ""}, "field"),
    ({"<": [1, A, 3]}, "operands"),
    ({"+": [1, 2, 3]}, "operands"),
    ({"!": [A, B]}, "operands"),
    ({"-": []}, "operands"),
    ({"not": [A]}, "operator"),
    ({"var2-x": []}, "operator"),
    ({"CamelCase": []}, "operator"),
    ({"a.b": []}, "operator"),
    ({"===": [A, B]}, "operator"),
    ({"a": 1, "b": 2}, "not a rule tree node"),
    ({}, "not a rule tree node"),
    (math.inf, "no text form"),
    (math.nan, "no text form"),
    ((1, 2), "not a rule tree node"),
]


@pytest.mark.parametrize(("tree", "message"), UNPRINTABLE, ids=[repr(t) for t, _ in UNPRINTABLE])
def test_to_text_refuses(tree: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        to_text(tree)


def test_infix_and_prefix_operators_of_the_table_read_back() -> None:
    for name, op in OPERATORS.items():
        if op.infix:
            tree = {name: [A, B]}
            assert to_text(tree) == f"a {op.infix} b"
            assert parse(to_text(tree)) == tree
        if op.prefix:
            tree = {name: [A]}
            assert parse(to_text(tree)) == tree
        if not op.infix and not op.prefix:
            tree = {name: [A] * op.min_args}
            assert parse(to_text(tree)) == tree


# --- errors ------------------------------------------------------------------------------

ERRORS = [
    # text, position, expected, words in the message
    ("", 0, VALUE, "line 1, column 1: expected a value, found end of input"),
    ("   ", 0, VALUE, "expected a value, found end of input"),
    ("a and", 5, VALUE, "line 1, column 6: expected a value after 'and', found end of input"),
    ("amount > ", 8, [v for v in VALUE if v != "not"],
     "line 1, column 9: expected a value after '>', found end of input"),
    ("a +", 3, [v for v in VALUE if v != "not"], "after '+'"),
    ("not", 3, VALUE, "after 'not'"),
    ("a < b < c", 6, ["%", "(", "*", "+", "-", "/", "and", "end of input", "or"],
     "found '<' (comparisons do not chain"),
    ("a in b in c", 7, ["%", "(", "*", "+", "-", "/", "and", "end of input", "or"],
     "found 'in'"),
    ("a == not b", 5, [v for v in VALUE if v != "not"], "found 'not' (put a not"),
    ("(a", 2, [*[t for t in AFTER_NAME if t != "end of input"], ")"], "found end of input"),
    ("f(a, (b + 1)", 12, [*[t for t in AFTER_NAME if t not in ("(", "end of input")], ",", ")"],
     "expected an operator, ')' or ',' after ')', found end of input"),
    ("a)", 1, AFTER_NAME, "found ')'"),
    ("(a))", 3, [t for t in AFTER_NAME if t != "("], "found ')'"),
    ("[1, 2", 5, [*[t for t in AFTER_NAME if t not in ("(", "end of input")], ",", "]"],
     "after '2'"),
    ("f(1,", 4, VALUE, "after ','"),
    ("f(1,)", 4, VALUE, "found ')'"),
    ("a b", 2, AFTER_NAME, "expected an operator, '(' or end of input after 'a', found 'b'"),
    ("a andy", 2, AFTER_NAME, "found 'andy'"),
    ("true(1)", 4, [t for t in AFTER_NAME if t != "("], "found '('"),
    ("a § b", 2, AFTER_NAME, "found the character '§'"),
    ("a = b", 2, AFTER_NAME, "found the character '=' (write == to compare)"),
    ("a && b", 2, AFTER_NAME, "(write and)"),
    ("!a", 0, VALUE, "(write not, or != to compare)"),
    ("Amount > 1", 0, VALUE, "found the character 'A' (names and keywords are lowercase)"),
    ("a AND b", 2, AFTER_NAME, "'A'"),
    ("1.", 1, [t for t in AFTER_NAME if t != "("], "found the character '.'"),
    ('"abc', 0, ['"'], 'expected a closing " for the string that starts here, found end of '
                       "input"),
    ("name == 'abc", 8, ["'"], "line 1, column 9: expected a closing '"),
    ('a == "x\ny"', 5, ['"'], "found the end of the line"),
    ('"abc\\"', 0, ['"'], "a closing"),
    ('"a\\qb"', 2, ['\\"', "\\/", "\\\\", "\\b", "\\f", "\\n", "\\r", "\\t", "\\uXXXX"],
     "invalid escape '\\\\q'"),
    ('"\\u12"', 1, ['\\"', "\\/", "\\\\", "\\b", "\\f", "\\n", "\\r", "\\t", "\\uXXXX"],
     "invalid escape"),
    ("'\\x'", 1, ["\\'", '\\"', "\\/", "\\\\", "\\b", "\\f", "\\n", "\\r", "\\t", "\\uXXXX"],
     "invalid escape"),
    ("1e999", 0, [], "the number 1e999 is too large"),
    ("-1" + "0" * 5000, 1, [], "is too large"),
    ("a.b(1)", 0, [], "'a.b' is not a function name"),
    ('var("amount")', 0, [], "'var' is not a function"),
]


@pytest.mark.parametrize(("text", "position", "expected", "message"), ERRORS,
                         ids=[t[:30] or "empty" for t, *_ in ERRORS])
def test_syntax_errors(text: str, position: int, expected: list[str], message: str) -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        parse(text)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.position == position
    assert error.expected == sorted(expected)
    assert message in str(error)
    assert str(error) == f"line {error.line}, column {error.column}: {error.reason}"


def test_error_line_and_column() -> None:
    text = 'amount > 1\n  and\n  stage == "won" or'
    with pytest.raises(RuleSyntaxError) as caught:
        parse(text)
    error = caught.value
    assert (error.position, error.line, error.column) == (len(text), 3, 20)
    assert str(error) == "line 3, column 20: expected a value after 'or', found end of input"

    with pytest.raises(RuleSyntaxError) as caught:
        parse("a and\n  b c")
    assert (caught.value.position, caught.value.line, caught.value.column) == (10, 2, 5)


def test_too_long() -> None:
    parse(" " * 9_990 + "a == 1")  # exactly 9,996 characters
    parse("a" * 10_000)
    with pytest.raises(RuleSyntaxError, match=r"10,001 characters long; the limit is 10,000") \
            as caught:
        parse("a" * 10_001)
    assert caught.value.position == 10_000
    assert caught.value.expected == []


def nested(depth: int) -> tuple[str, Any]:
    """``depth`` nested calls around a field, as text and as tree."""
    tree: Any = A
    for _ in range(depth):
        tree = {"abs": [tree]}
    return "abs(" * depth + "a" + ")" * depth, tree


def test_nesting_limit() -> None:
    text, tree = nested(MAX_DEPTH)
    assert parse(text) == tree
    assert to_text(tree) == text
    text, tree = nested(MAX_DEPTH + 1)
    with pytest.raises(RuleSyntaxError, match=f"nests more than {MAX_DEPTH} levels") as caught:
        parse(text)
    assert caught.value.position == 0
    with pytest.raises(ValueError, match=f"nests more than {MAX_DEPTH} levels"):
        to_text(tree)
    # the limit counts lists, operators and negations too, not parentheses
    assert parse("(" * 3000 + "a" + ")" * 3000) == A
    for deep in ("[" * 40 + "]" * 40, "-" * 40 + "a", "not " * 40 + "a",
                 "a + (" * 40 + "a" + ")" * 40):
        with pytest.raises(RuleSyntaxError, match="nests more than"):
            parse(deep)


def test_deep_unbalanced_input_is_a_syntax_error_not_a_crash() -> None:
    for text in ("(" * 9_000, "[" * 9_000, "f(" * 4_000, "-" * 9_000, "not " * 2_000):
        with pytest.raises(RuleSyntaxError):
            parse(text)


def test_parse_wants_text() -> None:
    with pytest.raises(TypeError):
        parse(None)  # type: ignore[arg-type]


# --- properties --------------------------------------------------------------------------

SEGMENT = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
NAMES = st.lists(SEGMENT, min_size=1, max_size=3).map(".".join).filter(
    lambda name: name not in KEYWORDS)
FUNCTION_NAMES = SEGMENT.filter(lambda name: name not in KEYWORDS and name != "var")
LEAVES = st.one_of(
    NAMES.map(lambda name: {"var": name}),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
    st.sampled_from(['"', "\\", "'", '\\"', "中文", "\n", "a\\nb", "\u2028"]),
    st.booleans(),
    st.none(),
)


def _operations(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    def of(name: str, low: int, high: int | None) -> st.SearchStrategy[Any]:
        top = high if high is not None else low + 3
        return st.lists(children, min_size=low, max_size=top).map(lambda args: {name: args})

    known = [of(name, op.min_args, op.max_args) for name, op in OPERATORS.items()]
    plugin = FUNCTION_NAMES.flatmap(lambda name: of(name, 0, 3))
    return st.one_of(*known, plugin, st.lists(children, max_size=3))


TREES = st.recursive(LEAVES, _operations, max_leaves=25)


def height(node: Any) -> int:
    if isinstance(node, list):
        return 1 + max(map(height, node)) if node else 0
    if isinstance(node, dict) and "var" not in node:
        (args,) = node.values()
        return 1 + max(map(height, args)) if args else 0
    return 0


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TREES)
def test_round_trip_tree(tree: Any) -> None:
    assume(height(tree) <= MAX_DEPTH)
    text = to_text(tree)
    assert parse(text) == tree
    assert to_text(parse(text)) == text
    # numbers keep their type: 1.0 stays a float, 1 an int
    assert json.dumps(parse(text)) == json.dumps(tree)


SOUP = st.text(alphabet=st.sampled_from("adnortu_.019e+-*/%<>=!()[],'\"\\ \n\t中A\x00"),
               max_size=40)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(
    ["a", "b.c", "1", "2.5", "-", "+", "*", "/", "%", "==", "<", ">=", "!=", " and ", " or ",
     " not ", " in ", "(", ")", "[", "]", ",", "f(", '"x"', "'y'", "true", "null", " "]),
    max_size=25).map("".join))
def test_token_soup_parses_or_raises_rule_syntax_error(text: str) -> None:
    try:
        tree = parse(text)
    except RuleSyntaxError as error:
        assert 0 <= error.position <= len(text)
        assert error.line >= 1 and error.column >= 1
    else:
        assert parse(to_text(tree)) == tree


@settings(max_examples=300, deadline=None)
@given(SOUP)
def test_character_soup_parses_or_raises_rule_syntax_error(text: str) -> None:
    try:
        tree = parse(text)
    except RuleSyntaxError as error:
        assert 0 <= error.position <= len(text)
    else:
        assert parse(to_text(tree)) == tree
