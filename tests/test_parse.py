"""Parser: every op from its form, the layout rules, and an error with a caret for each fault."""

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azc.errors import AzcError, DataError, ParseError
from azc.ir import Instruction, MemoryShape, Program
from azc.ops import OPS, f32
from azc.parse import grammar_text, parse, parse_file
from azc.printer import format_program
from tests.strategies import programs

LINEAR = """\
# the original's LINEAR_ALGORITHM
def setup():
    s2 = 0.01

def predict():
    s1 = dot(v1, v0)   # weights . features

def learn():
    s3 = s0 - s1
    s3 = s2 * s3
    v2 = s3 * v0
    v1 = v1 + v2
"""


def one(line: str) -> Instruction:
    """The single instruction a line parses to, inside learn()."""
    return parse(f"def learn():\n    {line}\n").learn[0]


def test_linear_program():
    assert parse(LINEAR) == Program(
        setup=(Instruction(56, 2, data=(0.01,)),),
        predict=(Instruction(27, 1, 1, 0),),
        learn=(Instruction(2, 3, 0, 1), Instruction(3, 3, 2, 3), Instruction(18, 2, 3, 0),
               Instruction(23, 1, 1, 2)))


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_every_op_parses_from_its_form(op):
    kinds = zip(("out", "a", "b"), (op.out, *op.ins), (3, 5, 7), strict=False)
    addresses = {slot: f"{kind}{n}" for slot, kind, n in kinds}
    line = op.form.format(**addresses, d0="0.25", d1="0.5", d2="0.75")
    instruction = one(line)
    assert instruction.op == op.id
    assert instruction.out == (3 if op.out else 0)
    assert (instruction.in1, instruction.in2) == ((5, 7, 0, 0)[: op.arity] + (0, 0))[:2]
    assert instruction.data == (0.25, 0.5, 0.75)[: op.data_size]


@pytest.mark.parametrize("line, op", [
    ("s1 = s2 * s3", 3), ("v1 = s2 * v3", 18), ("v1 = v2 * v3", 25), ("m1 = s2 * m3", 29),
    ("m1 = m2 * m3", 41), ("s1 = abs(s2)", 5), ("v1 = abs(v2)", 22), ("m1 = abs(m2)", 38),
    ("s1 = uniform(0, 1)", 59), ("v1 = uniform(0, 1)", 60), ("m1 = uniform(0, 1)", 61),
    ("s1 = norm(v0)", 21), ("s1 = norm(m0)", 34), ("v1 = norm(m0, axis=0)", 35),
    ("v1 = norm(m0, axis=1)", 36), ("s1 = 1 / s2", 6), ("s1 = 1.0 / s2", 6), ("s1 = 2", 56),
    ("v3 = m0 @ v0", 31), ("m1 = m2 @ m0", 43), ("s1 = mean(m0)", 51),
])
def test_op_resolved_by_form_and_kinds(line, op):
    assert one(line).op == op


@pytest.mark.parametrize("text, value", [
    ("2", 2.0), ("-3", -3.0), ("+0.5", 0.5), (".5", 0.5), ("5.", 5.0), ("1e-3", 0.001),
    ("-2.5E+2", -250.0), ("-0.0", -0.0), ("1e308", 1e308), ("5e-324", 5e-324),
])
def test_numbers(text, value):
    assert one(f"s2 = {text}").data == (value,)


def test_const_is_float64_and_other_data_float32():
    assert one("s2 = 0.1").data == (0.1,)
    assert one("s2 = uniform(0.1, 0.3)").data == (f32(0.1), f32(0.3))
    assert one("v2[0.1] = 0.1").data == (f32(0.1), f32(0.1))


def test_layout_freedoms():
    text = ("\n# leading comment\n\ndef learn():\n    # inside\n\n    s3 = s0-s1  # trailing\n"
            "        # odd comment indent\n    pass\ndef setup():\n\tpass\n")
    assert parse(text) == Program(learn=(Instruction(2, 3, 0, 1),))
    assert parse(LINEAR.replace("\n", "\r\n")) == parse(LINEAR)
    assert parse(LINEAR.rstrip("\n")) == parse(LINEAR)
    assert parse("") == Program() == parse("# nothing\n")


def error_of(text: str, memory=None) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse(text, "p.az", memory)
    return caught.value


def check_points_at(error: ParseError, line: int, column: int, source_line: str):
    """The message starts with p.az:line:column and puts a caret under that column."""
    header, quoted, caret = str(error).split("\n")
    assert header.startswith(f"p.az:{line}:{column}: ")
    assert quoted == "    " + source_line
    assert caret.index("^") == 4 + column - 1
    assert (error.line, error.column) == (line, column)


ERRORS = [
    # (text, line, column, words the message must contain)
    ("setup():\n    pass\n", 1, 1, ["def setup():"]),
    ("def setup():\ns1 = s2 + s3\n", 2, 1, ["indented"]),
    ("def setup():\n    s1 = s2\n      s1 = s2 + s3\n", 3, 7, ["indentation"]),
    ("def setup():\n    s1 = s2 + s3\n  s1 = s2 + s3\n", 3, 3, ["indentation"]),
    ("def setup():\n    s1 = s2 % s3\n", 2, 13, ["%"]),
    ("def setup()\n    pass\n", 1, 12, ["`:`"]),
    ("def setup():\n", 1, 13, ["indented", "pass"]),
    ("def setup():\n    s1 = \n", 2, 10, ["end of line", "address"]),
    ("def learn():\n    s1 = sqrt(s0)\n", 2, 10, ["unknown function `sqrt`"]),
    ("def learn():\n    s1 = dot(s0, v1)\n", 2, 14, ["dot", "(v, v)", "(s, v)"]),
    ("def learn():\n    v1 = dot(v0, v1)\n", 2, 5, ["dot", "writes a scalar", "not a vector"]),
    ("def learn():\n    v1 = v1 * s2\n", 2, 5, ["`v = s * v`", "`v = v * s`"]),
    ("def learn():\n    s1 = dot(v0)\n", 2, 5, ["`s = dot(v, v)`"]),
    ("def learn():\n    s1 = s0\n", 2, 5, ["not an azc instruction"]),
    ("def learn():\n    v1 = norm(m0, axis=2)\n", 2, 5, ["axis=0", "axis=1"]),
    ("def learn():\n    v1[1.0] = 2\n", 2, 8, ["outside [0, 1)"]),
    ("def learn():\n    m1[0.5, -0.1] = 2\n", 2, 13, ["outside [0, 1)"]),
    ("def learn():\n    v1[0.99999999] = 2\n", 2, 8, ["outside [0, 1)"]),
    ("def learn():\n    s1 = inf\n", 2, 10, ["not a finite"]),
    ("def learn():\n    s1 = -nan\n", 2, 10, ["not a finite"]),
    ("def learn():\n    s1 = 1e999\n", 2, 10, ["not a finite"]),
    ("def learn():\n    s1 = gaussian(0, 1e39)\n", 2, 22, ["float32"]),
    ("def learn():\n    pass\ndef learn():\n    pass\n", 3, 5, ["twice", "line 1"]),
    ("def lern():\n    pass\n", 1, 5, ["unknown component", "`learn`"]),
    ("def learn():\n    s1 = {a}\n", 2, 10, ["placeholder"]),
    ("  def learn():\n    pass\n", 1, 1, ["indentation"]),
    ("def learn():\n    s1 = frobnicate(s0)\n", 2, 10, ["unknown function", "the functions are"]),
    ("def learn():\n    s1 = sinn(s0)\n", 2, 10, ["did you mean `sin`"]),
    ("def learn():\n    s1 = s2 + v1\n", 2, 5, ["`s = s + v`", "`v = v + v`"]),
    ("def learn():\n    s1 = 2 / s0\n", 2, 5, ["`s = 1 / s`"]),
    ("def learn():\n    s1 = s0 s1\n", 2, 13, ["address `s1`", "operator", "end of line"]),
    ("def learn():\n    noop\n", 2, 9, ["`(`"]),
    ("def learn():\n    s1 = dot(x1, v0)\n", 2, 14, ["unknown address `x1`"]),
    ("def learn():\n    s1 = dot(v1, x0)\n", 2, 18, ["unknown address `x0`"]),
    ("def learn():\n    x1 = 0.01\n", 2, 5, ["unknown address `x1`"]),
    ("def learn():\n    s1 = w2\n", 2, 10, ["unknown address `w2`"]),
    # huge addresses made memories of terabytes
    ("def learn():\n    s1 = dot(v0, v99999999999)\n", 2, 18, ["v99999999999", "v0 to v63"]),
    ("def learn():\n    m64 = m0 + m0\n", 2, 5, ["m64", "m0 to m63"]),
]


@pytest.mark.parametrize("text, line, column, words", ERRORS)
def test_errors_point_at_the_fault(text, line, column, words):
    error = error_of(text)
    check_points_at(error, line, column, text.split("\n")[line - 1])
    for word in words:
        assert word in str(error).split("\n")[0]


@pytest.mark.parametrize("line, column, words", [
    ("v3 = v0 + v1", 5, ["v3", "4/3/1", "3 vectors (v0 to v2)"]),
    ("s1 = s9 + s0", 10, ["s9", "4 scalars"]),
    ("m0 = m1 + m0", 10, ["m1", "one matrix (m0)"]),
])
def test_addresses_beyond_memory(line, column, words):
    error = error_of(f"def learn():\n    {line}\n", MemoryShape(4, 3, 1))
    check_points_at(error, 2, column, "    " + line)
    assert all(word in str(error) for word in words)
    assert parse(f"def learn():\n    {line}\n", memory=MemoryShape(10, 10, 10))


def test_memory_without_matrices():
    error = error_of("def setup():\n    m0 = transpose(m0)\n", MemoryShape(4, 3, 0))
    assert "no matrices" in str(error)


@given(st.text(alphabet="defsvm0123456789 ()[]=+-*/@.,:#\n\tabcdilnoprtuxyz{}e", max_size=80))
@settings(max_examples=300)
def test_any_text_parses_or_raises_parse_error(text):
    try:
        parse("def learn():\n    " + text)
    except ParseError as error:
        assert re.match(r"<text>:\d+:\d+: ", str(error))
        assert "^" in str(error).split("\n")[-1]


@given(programs(max_size=4), st.lists(st.tuples(st.integers(0, 10**6),
                                                st.sampled_from(list("s1v0m(),=[]# \n\t.-e"))
                                                | st.just("")), min_size=1, max_size=4))
@settings(max_examples=300)
def test_damaged_programs_parse_or_raise_parse_error(program, edits):
    """Valid text with characters replaced or deleted: a program or a located ParseError."""
    text = list(format_program(program))
    for position, char in edits:
        text[position % len(text)] = char
    try:
        parse("".join(text), "p.az")
    except ParseError as error:
        header, quoted, caret = str(error).split("\n")
        assert re.match(r"p.az:\d+:\d+: ", header)
        assert caret.strip(" \t").startswith("^")


def test_parse_file(tmp_path):
    path = tmp_path / "linear.az"
    path.write_bytes(b"\xef\xbb\xbf" + LINEAR.encode())
    assert parse_file(path) == parse(LINEAR)
    path.write_text("def setup():\n    s9 = 1\n")
    with pytest.raises(ParseError, match=re.escape(f"{path}:2:5: ")):
        parse_file(path, MemoryShape(4, 3, 1))


@pytest.mark.parametrize("make, words", [
    (lambda p: p / "missing.az", "no such file"),
    (lambda p: p, "directory"),
    (lambda p: (p / "latin1.az").write_bytes(b"# caf\xe9\n") and p / "latin1.az", "not UTF-8"),
])
def test_parse_file_errors(tmp_path, make, words):
    with pytest.raises(DataError, match=words) as caught:
        parse_file(make(tmp_path))
    assert isinstance(caught.value, AzcError)


def test_grammar_ships_in_the_package():
    """One grammar in the repo: the package's copy is the repo's grammar/ (azc/grammar links it)."""
    repo = Path(__file__).resolve().parent.parent
    assert grammar_text() == (repo / "grammar" / "azc.lark").read_text(encoding="utf-8")
