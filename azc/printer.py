"""Print a Program as canonical azc text.

Canonical means one spelling per program: the three components always in the order setup,
predict, learn, each present (`pass` when empty), instructions indented by four spaces, each
written by its op's `form`, a blank line between components. Numbers print so that parsing the
text gives back exactly the same bits:

    parse(format_program(p)) == p        (including the sign of -0.0)
    format_program(parse(text)) is a fixed point of parse-then-format
"""

import math

import numpy as np

from azc.ir import COMPONENTS, Instruction, Program
from azc.ops import OPS, f32

INDENT = "    "


def format_number(value: float, single: bool = False) -> str:
    """The shortest text that parses back to `value`: as a float32 if `single`, else float64."""
    value = float(value)
    if single and math.isfinite(value) and f32(value) == value:
        # numpy's shortest float32 digits, laid out as Python writes floats (1000001.0, 1e-45)
        text = repr(float(str(np.float32(value))))
        # NOTE: decimal -> float64 -> float32 rounds twice; keep the short text only if it is safe
        if f32(float(text)) == value and math.copysign(1.0, float(text)) == math.copysign(1, value):
            return text
    return repr(value)


def format_instruction(instruction: Instruction) -> str:
    """One instruction as a line of azc text, without indentation: `s3 = s0 - s1`."""
    op = OPS[instruction.op]
    if len(instruction.data) != op.data_size:
        raise ValueError(f"{op.name} takes {op.data_size} data fields, not {instruction.data}")
    addresses = (instruction.out, instruction.in1, instruction.in2)
    kinds = (op.out, *op.ins)
    fields = {slot: f"{kind}{address}"
              for slot, kind, address in zip(("out", "a", "b"), kinds, addresses, strict=False)}
    single = op.data != "const"
    for k, value in enumerate(instruction.data):
        fields[f"d{k}"] = format_number(value, single)
    return op.form.format(**fields)


def format_component(name: str, component: tuple[Instruction, ...]) -> str:
    """`def name():` and its indented body; an empty component's body is `pass`."""
    body = [format_instruction(instruction) for instruction in component] or ["pass"]
    return "\n".join([f"def {name}():", *(INDENT + line for line in body)])


def format_program(program: Program) -> str:
    """The canonical text of a program, ending in a newline."""
    blocks = [format_component(name, component)
              for name, component in zip(COMPONENTS, program.components(), strict=True)]
    return "\n\n".join(blocks) + "\n"
