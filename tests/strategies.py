"""Hypothesis strategies for random azc programs, shared by every stage's property tests.

    from tests.strategies import programs, instructions

A drawn program uses all 65 ops, only addresses inside the given memory, and finite data as the
IR stores it: op 56's value any float64 (-0.0, subnormals and 1e308 included), every other data
field a float32, index fractions in [0, 1).
"""

from hypothesis import strategies as st

from azc.ir import COMPONENTS, Instruction, MemoryShape, Program
from azc.ops import OPS, Op, f32

DEFAULT_MEMORY = MemoryShape(4, 3, 1)

# Finite constants with the awkward cases made likely: signed zeros, subnormals, extremes.
DOUBLES = st.one_of(
    st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1e-300, 1.7976931348623157e308, -1e308, 0.01]),
    st.floats(allow_nan=False, allow_infinity=False),
)
SINGLES = st.one_of(
    st.sampled_from([f32(x) for x in (0.0, -0.0, 1e-45, -1e-45, 1.1754943508222875e-38,
                                      3.4028234663852886e38, -3.4028234663852886e38, 0.1)]),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
FRACTIONS = st.floats(0.0, 1.0, exclude_max=True, width=32)


def usable_ops(memory: MemoryShape) -> list[Op]:
    """Ops whose every operand kind has at least one address in this memory."""
    return [op for op in OPS
            if all(memory.size(kind) > 0 for kind in (op.out, *op.ins) if kind is not None)]


@st.composite
def instructions(draw, memory: MemoryShape = DEFAULT_MEMORY, ops=None) -> Instruction:
    """One instruction of any usable op, addresses in `memory`, unused fields 0."""
    op = draw(st.sampled_from(ops or usable_ops(memory)))
    if op.out is None:
        return Instruction(op.id)

    def address(kind):
        return draw(st.integers(0, memory.size(kind) - 1))

    out = address(op.out)
    ins = [address(kind) for kind in op.ins] + [0, 0]
    data = _data(draw, op)
    return Instruction(op.id, out, ins[0], ins[1], data)


def _data(draw, op: Op) -> tuple[float, ...]:
    if op.data == "const":
        return (draw(DOUBLES),)
    if op.data == "vindex":
        return (draw(FRACTIONS), draw(SINGLES))
    if op.data == "mindex":
        return (draw(FRACTIONS), draw(FRACTIONS), draw(SINGLES))
    return tuple(draw(SINGLES) for _ in range(op.data_size))


@st.composite
def programs(draw, max_size: int = 8, memory: MemoryShape = DEFAULT_MEMORY, min_size: int = 0,
             ops=None) -> Program:
    """A program of `min_size` to `max_size` instructions per component, over `ops` (default:
    every op the memory can hold)."""
    each = st.lists(instructions(memory, ops), min_size=min_size, max_size=max_size).map(tuple)
    return Program(**{name: draw(each) for name in COMPONENTS})
