"""Parse azc text into a Program.

The grammar (grammar/azc.lark) knows the layout of a program but no op. Each op is recognised
from its `form` in the op table: the parser reads every form with the same grammar, once, and
keys it by its shape, the parse tree with addresses and numbers blanked out. An instruction's
shape picks the candidate forms; literal numbers in the form (the `1` of `1 / {a}`, the axis of
`norm({a}, axis=0)`) and the kinds of the addresses (s, v, m) pick the op:

    shape(instruction) -> forms with that shape -> literals agree -> operand kinds agree -> op

Components may come in any order, each at most once; a missing one is empty. Every failure
is a ParseError whose message names file:line:column, quotes the line and puts a caret under
the fault.
"""

import difflib
import math
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.indenter import Indenter

from azc.errors import DataError, ParseError
from azc.ir import COMPONENTS, MAX_ADDRESSES, Instruction, MemoryShape, Program
from azc.ops import OPS, Op, f32

KIND_NAMES = {"s": "scalar", "v": "vector", "m": "matrix"}
PLURALS = {"s": "scalars", "v": "vectors", "m": "matrices"}
ADDRESS_SLOTS = ("out", "a", "b")


# --- the grammar -------------------------------------------------------------------------------


class _Dedent(Exception):
    """Indentation that returns to no enclosing level; carries the line and its indent."""

    def __init__(self, line: int, column: int):
        self.line, self.column = line, column


class _Indenter(Indenter):
    """Python's indentation rules: _INDENT/_DEDENT tokens from the spaces after each newline."""

    NL_type = "_NL"
    OPEN_PAREN_types = []
    CLOSE_PAREN_types = []
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8

    def handle_NL(self, token):
        indent = token.rsplit("\n", 1)[1]
        width = indent.count(" ") + indent.count("\t") * self.tab_len
        if width < self.indent_level[-1] and width not in self.indent_level:
            raise _Dedent(token.end_line, token.end_column)
        yield from super().handle_NL(token)


def grammar_text() -> str:
    """The azc grammar, as shipped inside the package (azc/grammar is the repo's grammar/)."""
    return resources.files("azc").joinpath("grammar", "azc.lark").read_text(encoding="utf-8")


@cache
def _parser() -> Lark:
    """The LALR parser, built once; "instruction" is a second start for reading op forms."""
    return Lark(grammar_text(), parser="lalr", postlex=_Indenter(), start=["start", "instruction"],
                propagate_positions=True, maybe_placeholders=False)


# --- the op table, read through the grammar ----------------------------------------------------


class Form(NamedTuple):
    """One op's form as the parser matches it."""

    op: Op
    slots: tuple  # per leaf in text order: "out", "a", "b", "d0".. or a literal float
    indices: frozenset  # data slots that are fraction indices (inside [..] on the left)
    word: str | None  # the function name or operator that names the op in messages
    text: str  # the form with kinds for addresses, "c" for data: "s = dot(v, v)"


def _shape(tree) -> tuple[tuple, list[Token]]:
    """The tree with addresses as "@" and numbers as "#", and those leaves in text order."""
    leaves = []

    def blank(node):
        if isinstance(node, Tree):
            return (node.data, *map(blank, node.children))
        if node.type == "SLOT":
            leaves.append(node)
            return "@" if node.value.strip("{}") in ADDRESS_SLOTS else "#"
        if node.type in ("ADDRESS", "NUMBER"):
            leaves.append(node)
            return "@" if node.type == "ADDRESS" else "#"
        return node.value

    return blank(tree), leaves


def _word(tree) -> Token | None:
    """The token that names what an instruction computes: its function or operator."""
    for node in tree.iter_subtrees_topdown():
        if node.data == "call":
            return node.children[0]
        if node.data == "binary":
            return node.children[1]
    return None


def _kinded(op: Op) -> str:
    kinds = dict(zip(ADDRESS_SLOTS, (op.out, *op.ins), strict=False))
    return op.form.format(**kinds, d0="c", d1="c", d2="c")


@cache
def _forms() -> dict[tuple, list[Form]]:
    """Every op's form keyed by its shape; checks that no two ops are spelled alike."""
    forms: dict[tuple, list[Form]] = {}
    for op in OPS:
        tree = _parser().parse(op.form, start="instruction")
        shape, leaves = _shape(tree)
        slots = tuple(t.value.strip("{}") if t.type == "SLOT" else float(t) for t in leaves)
        indices = frozenset(t.value.strip("{}") for t in tree.children[1:-1]
                            if tree.data == "assign_element")
        word = _word(tree)
        form = Form(op, slots, indices, word and word.value, _kinded(op))
        assert all(_signature(form) != _signature(f) for f in forms.get(shape, ())), op.form
        forms.setdefault(shape, []).append(form)
    return forms


def _signature(form: Form) -> tuple:
    return form.slots, form.op.out, form.op.ins


def _slot_kind(op: Op, slot: str) -> str:
    return op.out if slot == "out" else op.ins[ADDRESS_SLOTS.index(slot) - 1]


# --- errors ------------------------------------------------------------------------------------


class Source:
    """Program text with a name, for error messages that quote the faulty line."""

    def __init__(self, text: str, filename: str | None):
        self.name = filename or "<text>"
        # NOTE: split as Lark counts lines (only "\n"), not as str.splitlines() does (\f, \x1c..)
        self.lines = [line.removesuffix("\r") for line in text.split("\n")]
        if len(self.lines) > 1 and not self.lines[-1]:
            self.lines.pop()  # the empty "line" after a final newline

    def error(self, message: str, line: int, column: int, width: int = 1) -> ParseError:
        """A ParseError at line:column (1-based) with the line quoted and a caret under it."""
        line = min(max(line, 1), max(len(self.lines), 1))
        text = self.lines[line - 1] if self.lines else ""
        column = min(max(column, 1), len(text) + 1)
        width = max(1, min(width, len(text) + 1 - column))
        pad = "".join(c if c == "\t" else " " for c in text[: column - 1])
        where = f"{self.name}:{line}:{column}"
        return ParseError(f"{where}: {message}\n    {text}\n    {pad}{'^' * width}", line, column)

    def at(self, token: Token, message: str) -> ParseError:
        return self.error(message, token.line, token.column, len(token.value))

    def over(self, tree: Tree, message: str) -> ParseError:
        meta = tree.meta
        width = meta.end_column - meta.column if meta.end_line == meta.line else 1
        return self.error(message, meta.line, meta.column, width)


def _one_of(items: list[str]) -> str:
    items = list(dict.fromkeys(items))
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _close(word: str, choices, n: int = 3) -> str:
    matches = difflib.get_close_matches(word, sorted(set(choices)), n=n, cutoff=0.6)
    return f"; did you mean {_one_of([f'`{m}`' for m in matches])}?" if matches else ""


TERMINALS = {
    "ADDRESS": "an address (s1, v0, m2)", "NUMBER": "a number", "NAME": "a name",
    "OPERATOR": "an operator (+ - * / @)", "SLOT": "a placeholder", "_NL": "end of line",
    "_INDENT": "an indented block", "_DEDENT": "end of block", "$END": "end of file",
    "DEF": "`def`", "PASS": "`pass`", "LPAR": "`(`", "RPAR": "`)`", "COLON": "`:`",
    "EQUAL": "`=`", "COMMA": "`,`", "LSQB": "`[`", "RSQB": "`]`",
}


def _describe(token: Token) -> str:
    """A found token: "name `setup`", "end of line"."""
    if token.type in ("ADDRESS", "NUMBER", "NAME", "OPERATOR", "SLOT"):
        return f"{token.type.lower()} `{token}`"
    return TERMINALS.get(token.type, f"`{token}`")


def _syntax_error(fault: UnexpectedInput, source: Source, text: str) -> ParseError:
    """Lark's error, said in terms of azc: what was found, what belongs there."""
    if isinstance(fault, UnexpectedCharacters):
        char = text[fault.pos_in_stream]
        return source.error(f"unexpected character `{char}`", fault.line, fault.column)
    if not isinstance(fault, UnexpectedToken):
        return source.error(f"syntax error: {fault}", fault.line, fault.column)

    # the parser's own view is sharper than the lexer's when the lexer raised the error
    token, expected = fault.token, fault.expected
    if fault.interactive_parser is not None:
        expected = fault.interactive_parser.accepts() or expected
    line, column, width = token.line or 1, token.column or 1, len(token.value or " ")
    if token.type in ("_INDENT", "_DEDENT", "_NL"):
        width = 1
    if token.type in ("_INDENT", "_DEDENT"):
        line, column = token.end_line, token.end_column
    if token.type == "$END":
        line, column = len(source.lines), len(source.lines[-1]) + 1 if source.lines else 1

    unknown = _unknown_address(source, line, column)
    if unknown is not None:
        name, column = unknown
        message = (f"unknown address `{name}`: addresses are s (scalar), v (vector) or "
                   "m (matrix) and a number, as s1, v0, m2")
        width = len(name)
    elif token.type == "_INDENT":
        message = "unexpected indentation: a component's instructions must line up"
    elif "_INDENT" in expected:
        message = "expected an indented block of instructions (write `pass` for none)"
    elif "DEF" in expected:
        message = (f"unexpected {_describe(token)}: expected `def setup():`, `def predict():` or "
                   "`def learn():`; instructions go indented inside a component")
    else:
        wanted = _one_of([TERMINALS.get(t, f"`{t}`") for t in sorted(expected) if t != "SLOT"])
        message = f"unexpected {_describe(token)}; expected {wanted}"
    return source.error(message, line, column, width)


def _unknown_address(source: Source, line: int, column: int) -> tuple[str, int] | None:
    """(name, column) of a would-be address (a letter and digits, as `x1`) just before the
    fault on its line: the grammar reads it as a name, and complains about what follows."""
    if not 1 <= line <= len(source.lines):
        return None
    found = re.search(r"\b([A-Za-z]\d+)\s*$", source.lines[line - 1][:column - 1])
    if found is None or re.fullmatch(r"[svm]\d+", found.group(1)):
        return None
    return found.group(1), found.start(1) + 1


# --- instructions ------------------------------------------------------------------------------


def _resolve(tree: Tree, source: Source) -> tuple[Form, list[Token]]:
    """The form an instruction matches, or a ParseError that says why none does."""
    shape, leaves = _shape(tree)
    candidates = _forms().get(shape, ())
    literal = [f for f in candidates if all(
        isinstance(s, str) or float(leaf) == s for s, leaf in zip(f.slots, leaves, strict=True))]
    matching = [f for f in literal if all(
        s not in ADDRESS_SLOTS or leaf.type == "ADDRESS" and leaf[0] == _slot_kind(f.op, s)
        for s, leaf in zip(f.slots, leaves, strict=True))]
    if matching:
        return matching[0], leaves

    # Why nothing matched, from the coarsest reason to the finest.
    for leaf in leaves:
        if leaf.type == "SLOT":
            raise source.at(leaf, f"`{leaf}` is a placeholder of the op table, not an operand")
    meta = tree.meta
    written = re.sub(r"\b([svm])\d+\b", r"\1",
                     source.lines[meta.line - 1][meta.column - 1: meta.end_column - 1])
    if not candidates:
        raise _unknown_form(tree, written, source)
    if not literal:
        forms = _one_of([f"`{f.text}`" for f in candidates])
        raise source.over(tree, f"`{written}` is not an op; did you mean {forms}?")
    raise _kind_error(literal, leaves, tree, written, source)


def _unknown_form(tree: Tree, written: str, source: Source) -> ParseError:
    """No op has this shape: name the function's real forms, or close names, or close forms."""
    everything = [f for forms in _forms().values() for f in forms]
    word = _word(tree)
    spelled = [f.text for f in everything if word is not None and f.word == word.value]
    if spelled:
        return source.over(tree, f"`{word}` is written {_one_of([f'`{s}`' for s in spelled])}")
    if word is not None and word.type == "NAME":
        names = sorted({f.word for f in everything if f.word and f.word.isidentifier()})
        hint = _close(word.value, names) or f"; the functions are {', '.join(names)}"
        return source.at(word, f"unknown function `{word}`{hint}")
    close = difflib.get_close_matches(written, [f.text for f in everything], n=3, cutoff=0.5)
    hint = f"; close forms: {_one_of([f'`{c}`' for c in close])}" if close else ""
    return source.over(tree, f"`{written}` is not an azc instruction{hint}")


def _kind_error(forms: list[Form], leaves: list[Token], tree: Tree, written: str,
                source: Source) -> ParseError:
    """Operands of kinds no form takes: point at the first operand no form accepts."""
    name = f"`{forms[0].word}`" if forms[0].word else "this assignment"
    spelled = _one_of([f"`{f.text}`" for f in forms])
    for position, leaf in enumerate(leaves):
        slots = {f.slots[position] for f in forms}
        if not slots <= set(ADDRESS_SLOTS):
            continue
        allowed = [_slot_kind(f.op, f.slots[position]) for f in forms]
        if leaf[0] in allowed:
            continue
        if slots == {"out"}:
            kinds = _one_of([KIND_NAMES[k] for k in allowed])
            return source.at(leaf, f"{name} writes a {kinds}, not a {KIND_NAMES[leaf[0]]} "
                                   f"like {leaf}: it is written {spelled}")
        inputs = zip(leaves, forms[0].slots, strict=True)
        given = ", ".join(t[0] for t, s in inputs if s in ("a", "b"))
        takes = _one_of(["(" + ", ".join(f.op.ins) + ")" for f in forms])
        return source.at(leaf, f"{name} takes {takes}, not ({given}): it is written {spelled}")
    return source.over(tree, f"{name} has no form `{written}`; it is written {spelled}")


def _instruction(tree: Tree, source: Source, memory: MemoryShape | None) -> Instruction:
    """The IR instruction for one parsed line, with its data checked and rounded."""
    form, leaves = _resolve(tree, source)
    op = form.op
    fields = {"out": 0, "a": 0, "b": 0}
    data = [0.0] * op.data_size

    for slot, leaf in zip(form.slots, leaves, strict=True):
        if slot in ADDRESS_SLOTS:
            fields[slot] = _address(leaf, source, memory)
        elif isinstance(slot, str):
            k = int(slot[1:])
            data[k] = _number(leaf, source, double=op.data == "const")
            if slot in form.indices and not 0.0 <= data[k] < 1.0:
                raise source.at(leaf, f"index {leaf} is outside [0, 1): positions are fractions "
                                      "of the length, e.g. 0.125 is element 1 of 8")
    return Instruction(op.id, fields["out"], fields["a"], fields["b"], tuple(data))


def _address(token: Token, source: Source, memory: MemoryShape | None) -> int:
    kind, address = token.value[0], int(token.value[1:])
    if address >= MAX_ADDRESSES:
        raise source.at(token, f"{token} is beyond the largest memory azc runs: "
                               f"{kind}0 to {kind}{MAX_ADDRESSES - 1}")
    if memory is not None and address >= memory.size(kind):
        size, name = memory.size(kind), KIND_NAMES[kind]
        have = (f"{size} {PLURALS[kind]} ({kind}0 to {kind}{size - 1})" if size > 1
                else f"one {name} ({kind}0)" if size else f"no {PLURALS[kind]}")
        raise source.at(token, f"{token} is beyond the memory {memory}, which has {have}")
    return address


def _number(token: Token, source: Source, double: bool) -> float:
    """A constant as the IR stores it: float64 for op 56's value, float32 for all other data."""
    value = float(token)
    if not math.isfinite(value):
        raise source.at(token, f"constant {token} is not a finite number")
    if double:
        return value
    with np.errstate(over="ignore"):
        rounded = f32(value)
    if not math.isfinite(rounded):
        raise source.at(token, f"constant {token} is too large for a float32 field")
    return rounded


# --- programs ----------------------------------------------------------------------------------


def parse(text: str, filename: str | None = None, memory: MemoryShape | None = None) -> Program:
    """The Program a text spells; with `memory`, also check every address fits in it."""
    source = Source(text, filename)
    if not text.endswith("\n"):
        text += "\n"
    try:
        tree = _parser().parse(text, start="start")
    except _Dedent as fault:
        raise source.error("this line's indentation matches no enclosing block",
                           fault.line, fault.column) from None
    except UnexpectedInput as fault:
        raise _syntax_error(fault, source, text) from None

    components: dict[str, tuple[Instruction, ...]] = {}
    where: dict[str, int] = {}
    for component in tree.children:
        name, *statements = component.children
        if component.meta.column > 1:  # the indenter only sees indentation after a newline
            raise source.error("unexpected indentation: `def` starts at the first column",
                               component.meta.line, 1, component.meta.column - 1)
        if name.value not in COMPONENTS:
            raise source.at(name, f"unknown component `{name}`: the components are "
                                  "setup, predict and learn" + _close(name.value, COMPONENTS))
        if name.value in components:
            raise source.at(name, f"`{name}` is defined twice (first at line {where[name]})")
        where[name.value] = name.line
        components[name.value] = tuple(_instruction(s, source, memory)
                                       for s in statements if s.data != "pass_")
    return Program(**components)


def parse_file(path, memory: MemoryShape | None = None) -> Program:
    """Parse a .az file; DataError if it cannot be read as UTF-8 text."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a program file") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read it ({error.strerror or error})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte 0x{raw[error.start]:02x} at offset "
                        f"{error.start}); azc programs are UTF-8 text files") from None
    return parse(text, str(path), memory)
