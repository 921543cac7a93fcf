"""Initial programs: the population evolution starts from (reference §5, generator.cc).

    noop                programs of no-ops, `init_sizes` long
    random              the no-op program with every instruction of a mutable component randomized
    linear              a linear regressor trained by SGD (learning rate 0.01)
    neural_net          a 2-layer ReLU network trained by SGD
    damaged_neural_net  the network without its two Gaussian weight initializations

Hand-written programs are padded with no-ops at the end up to `init_sizes`, never truncated.
"""

from azc.ir import NOP, Instruction, Program
from azc.mutator import Mutator
from azc.ops import f32, op_named

INITIAL_POPULATIONS = ("noop", "random", "linear", "neural_net", "damaged_neural_net")
LEARNING_RATE = 0.01
INIT_SCALE = 0.1


def _i(name: str, out: int = 0, in1: int = 0, in2: int = 0, data=()) -> Instruction:
    return Instruction(op_named(name).id, out, in1, in2, tuple(data))


def linear_program(learning_rate: float = LEARNING_RATE) -> Program:
    """s1 = dot(v1, v0); learn: v1 += lr * (s0 - s1) * v0."""
    return Program(
        setup=(_i("SCALAR_CONST_SET", 2, data=(learning_rate,)),),
        predict=(_i("VECTOR_INNER_PRODUCT", 1, 1, 0),),
        learn=(
            _i("SCALAR_DIFF", 3, 0, 1),
            _i("SCALAR_PRODUCT", 3, 2, 3),
            _i("SCALAR_VECTOR_PRODUCT", 2, 3, 0),
            _i("VECTOR_SUM", 1, 1, 2),
        ),
    )


def neural_net_program(learning_rate: float = LEARNING_RATE, first_sd: float = INIT_SCALE,
                       final_sd: float = INIT_SCALE, damaged: bool = False) -> Program:
    """A 2-layer ReLU network: s1 = dot(relu(m0 @ v0 + v1), v2) + s2, trained by SGD.

    Addresses: s2 final bias, s3 learning rate, s4 error; v1 first-layer bias, v2 final weights,
    v3 pre-activation, v4 post-ReLU, v5 zeros, v6-v8 gradients; m0 weights, m1 their gradient.
    Needs memory of at least 5/9/2.
    """
    inits = (
        _i("VECTOR_GAUSSIAN_SET", 2, data=(0.0, f32(final_sd))),
        _i("MATRIX_GAUSSIAN_SET", 0, data=(0.0, f32(first_sd))),
    )
    setup = (() if damaged else inits) + (_i("SCALAR_CONST_SET", 3, data=(learning_rate,)),)
    predict = (
        _i("MATRIX_VECTOR_PRODUCT", 3, 0, 0),
        _i("VECTOR_SUM", 3, 3, 1),
        _i("VECTOR_MAX", 4, 3, 5),
        _i("VECTOR_INNER_PRODUCT", 1, 4, 2),
        _i("SCALAR_SUM", 1, 1, 2),
    )
    learn = (
        _i("SCALAR_DIFF", 4, 0, 1),
        _i("SCALAR_PRODUCT", 4, 3, 4),
        _i("SCALAR_SUM", 2, 2, 4),
        _i("SCALAR_VECTOR_PRODUCT", 6, 4, 4),
        _i("VECTOR_SUM", 2, 2, 6),
        _i("SCALAR_VECTOR_PRODUCT", 7, 4, 2),  # NOTE: uses the already-updated v2, as written
        _i("VECTOR_HEAVYSIDE", 8, 3),
        _i("VECTOR_PRODUCT", 7, 8, 7),
        _i("VECTOR_SUM", 1, 1, 7),
        _i("VECTOR_OUTER_PRODUCT", 1, 7, 0),
        _i("MATRIX_SUM", 0, 0, 1),
    )
    return Program(setup, predict, learn)


def noop_program(sizes: tuple[int, int, int]) -> Program:
    return Program(*((NOP,) * size for size in sizes))


def pad(program: Program, sizes: tuple[int, int, int]) -> Program:
    """Append no-ops to each component up to its size; longer components stay as they are."""
    return Program(*(code + (NOP,) * max(0, size - len(code))
                     for code, size in zip(program.components(), sizes, strict=True)))


class Generator:
    """Makes the initial program of each population slot."""

    def __init__(self, kind: str, sizes: tuple[int, int, int], mutator: Mutator):
        if kind not in INITIAL_POPULATIONS:
            raise ValueError(f"unknown initial population {kind!r}")
        self.kind = kind
        self.sizes = tuple(sizes)
        self.mutator = mutator
        self._fixed = {
            "noop": noop_program(self.sizes),
            "linear": pad(linear_program(), self.sizes),
            "neural_net": pad(neural_net_program(), self.sizes),
            "damaged_neural_net": pad(neural_net_program(damaged=True), self.sizes),
        }.get(kind)

    def hand_written_ops(self) -> set[int]:
        """Ops of the hand-written initial program (none for noop and random)."""
        return {i.op for i in self._fixed.instructions()} if self._fixed else set()

    def initial_program(self) -> Program:
        """A fresh program: the fixed hand-written one, or a new random one."""
        if self._fixed is not None:
            return self._fixed
        return Program(*(self.mutator.random_component(c, size) if self.mutator.ops[c]
                         else (NOP,) * size for c, size in enumerate(self.sizes)))


def baseline_program(kind: str, sizes: tuple[int, int, int]) -> Program:
    """The train budget's reference program, padded like the experiment's initial programs."""
    makers = {"linear": linear_program, "neural_net": neural_net_program}
    if kind not in makers:
        raise ValueError(f"unknown train budget baseline {kind!r}; use linear or neural_net")
    return pad(makers[kind](), sizes)
