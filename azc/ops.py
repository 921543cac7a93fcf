"""The op table: the one place that knows each of AutoML-Zero's 65 ops.

Every other stage reads this table: the parser and printer take an op's `form`, the reference
executor its `fn`, the mutator its operand kinds and data rules, the train budget its `cost`.
Ids, semantics and costs follow the original C++ implementation (google-research/automl_zero,
instruction.h, executor.h and compute_cost.cc), including its quirks: scalar heaviside tests
`>= 0` but vector/matrix heaviside `> 0`, op 35 computes column norms, st.dev is
sqrt(E[x^2] - E[x]^2), and a uniform draw with low >= high returns low without drawing.

Operand kinds are "s" (scalar), "v" (vector of F) and "m" (F x F matrix, row-major).
A form is the instruction's text with `{out}`, `{a}`, `{b}` for addresses and `{d0}`..`{d2}`
for constant data; it is both how the printer writes an op and how the parser recognises it.
"""

import ctypes
import ctypes.util
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

S, V, M = "s", "v", "m"


@dataclass(frozen=True)
class Op:
    """One op: its identity, operand kinds, spelling, data, cost and NumPy semantics."""

    id: int
    name: str  # the original's enum name, without the _OP suffix
    out: str | None  # kind of the address written, None for the no-op
    ins: tuple[str, ...]  # kinds of the addresses read, in1 then in2
    form: str
    data: str | None  # how constant data is drawn and mutated; see draw_data
    cost: int  # compute_cost.cc units, used by the train budget
    fn: Callable  # fn(a, b, old, data, F, rng) -> new value of out
    commutative: bool = False  # exactly commutative in IEEE arithmetic, NaN included

    @property
    def random(self) -> bool:
        """Whether executing the op draws random numbers."""
        return self.data in ("uniform", "gaussian")

    @property
    def arity(self) -> int:
        return len(self.ins)

    @property
    def data_size(self) -> int:
        return DATA_SIZES[self.data]


# Constant data per data kind: how many numbers, and which of them are float32 in the original.
# "const" is a double (activation_data); every other field is float32 (float_data_0..2).
DATA_SIZES = {None: 0, "const": 1, "vindex": 2, "mindex": 3, "uniform": 2, "gaussian": 2}


def f32(x: float) -> float:
    """Round a Python float to the nearest float32, as the original stores float_data."""
    return float(np.float32(x))


def index(fraction: float, F: int) -> int:
    """Position in a vector or matrix from the F-independent fraction in [0, 1)."""
    return int(np.float32(fraction) * np.float32(F))


# --- semantics helpers -------------------------------------------------------------------------
# Scalars arrive as np.float64 so IEEE rules hold (1/0 = inf, log(0) = -inf); the caller runs
# under np.errstate(all="ignore").
#
# NOTE: every engine must compute bit-identical values, so the semantics fix what NumPy leaves
# open: sums run sequentially from the first term in row-major order (np.cumsum, not np.sum's
# pairwise order), and transcendentals call the C library's functions (NumPy's SIMD loops may
# differ from libm by an ulp). The native engines call the same libm symbols.

_libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
for _name in ("sin", "cos", "tan", "asin", "acos", "atan", "exp", "log"):
    getattr(_libm, _name).restype = ctypes.c_double
    getattr(_libm, _name).argtypes = (ctypes.c_double,)


def libm(name: str) -> Callable:
    """The C library's double function `name`, on a scalar: IEEE results, no exceptions."""
    function = getattr(_libm, name)
    return lambda x: np.float64(function(float(x)))


def sequential_sum(x, axis=None):
    """Sum from the first term on, one addition at a time (row-major when axis is None)."""
    if axis is None:
        return np.cumsum(np.ravel(x))[-1]
    return np.take(np.cumsum(x, axis=axis), -1, axis=axis)


def _heaviside_s(a):
    return np.float64(1.0 if a >= 0 else 0.0)


def _heaviside(x):
    return (x > 0).astype(np.float64)


def _min_std(a, b):  # std::min and Eigen's cwiseMin: NaN in b gives a
    return np.where(b < a, b, a)


def _max_std(a, b):  # std::max and Eigen's cwiseMax: NaN in b gives a
    return np.where(a < b, b, a)


def _min_m(a, b):  # the matrix op is written "a < b ? a : b": NaN in either gives b
    return np.where(a < b, a, b)


def _max_m(a, b):  # "a > b ? a : b"
    return np.where(a > b, a, b)


def _mean(x):
    return sequential_sum(x) / x.size


def _std(x):
    mean = _mean(x)
    return np.sqrt(sequential_sum(x * x) / x.size - mean * mean)


def _row_std(m):
    F = m.shape[1]
    mean = sequential_sum(m, axis=1) / F
    return np.sqrt(sequential_sum(m * m, axis=1) / F - mean * mean)


def _set_vector(old, data, F):
    new = old.copy()
    new[index(data[0], F)] = data[1]
    return new


def _set_matrix(old, data, F):
    new = old.copy()
    new[index(data[0], F), index(data[1], F)] = data[2]
    return new


def _uniform(data, shape, rng):
    low, high = data
    if not low < high:  # absl::Uniform returns the lower bound of an empty interval
        return np.full(shape, low) if shape else np.float64(low)
    draws = [rng.uniform(low, high) for _ in range(math.prod(shape))]
    return np.array(draws).reshape(shape) if shape else np.float64(draws[0])


def _gaussian(data, shape, rng):
    mean, sd = data
    draws = [rng.gaussian(mean, sd) for _ in range(math.prod(shape))]
    return np.array(draws).reshape(shape) if shape else np.float64(draws[0])


def _unary(f):
    return lambda a, b, old, data, F, rng: f(a)


def _binary(f):
    return lambda a, b, old, data, F, rng: f(a, b)


def _shaped(kind, F):
    return {S: (), V: (F,), M: (F, F)}[kind]


def _random_set(sampler, kind):
    return lambda a, b, old, data, F, rng: sampler(data, _shaped(kind, F), rng)


# --- the table ---------------------------------------------------------------------------------
# (id, name, out, ins, form, data, cost, fn[, commutative])

_u, _b = _unary, _binary
_TABLE = [
    (0, "NO_OP", None, (), "noop()", None, 3013921, None),
    (1, "SCALAR_SUM", S, (S, S), "{out} = {a} + {b}", None, 4703759, _b(np.add), True),
    (2, "SCALAR_DIFF", S, (S, S), "{out} = {a} - {b}", None, 5102027, _b(np.subtract)),
    (3, "SCALAR_PRODUCT", S, (S, S), "{out} = {a} * {b}", None, 4418347, _b(np.multiply), True),
    (4, "SCALAR_DIVISION", S, (S, S), "{out} = {a} / {b}", None, 3963916, _b(np.divide)),
    (5, "SCALAR_ABS", S, (S,), "{out} = abs({a})", None, 3684352, _u(np.abs)),
    (6, "SCALAR_RECIPROCAL", S, (S,), "{out} = 1 / {a}", None, 4212086, _u(np.reciprocal)),
    (7, "SCALAR_SIN", S, (S,), "{out} = sin({a})", None, 7538523, _u(libm("sin"))),
    (8, "SCALAR_COS", S, (S,), "{out} = cos({a})", None, 7452807, _u(libm("cos"))),
    (9, "SCALAR_TAN", S, (S,), "{out} = tan({a})", None, 7583203, _u(libm("tan"))),
    (10, "SCALAR_ARCSIN", S, (S,), "{out} = arcsin({a})", None, 9145616, _u(libm("asin"))),
    (11, "SCALAR_ARCCOS", S, (S,), "{out} = arccos({a})", None, 7673039, _u(libm("acos"))),
    (12, "SCALAR_ARCTAN", S, (S,), "{out} = arctan({a})", None, 9273978, _u(libm("atan"))),
    (13, "SCALAR_EXP", S, (S,), "{out} = exp({a})", None, 11755929, _u(libm("exp"))),
    (14, "SCALAR_LOG", S, (S,), "{out} = log({a})", None, 11627725, _u(libm("log"))),
    (15, "SCALAR_HEAVYSIDE", S, (S,), "{out} = heaviside({a})", None, 4057075, _u(_heaviside_s)),
    (16, "VECTOR_HEAVYSIDE", V, (V,), "{out} = heaviside({a})", None, 3965743, _u(_heaviside)),
    (17, "MATRIX_HEAVYSIDE", M, (M,), "{out} = heaviside({a})", None, 6728311, _u(_heaviside)),
    (18, "SCALAR_VECTOR_PRODUCT", V, (S, V), "{out} = {a} * {b}", None, 3705015,
     _b(np.multiply)),
    (19, "SCALAR_BROADCAST", V, (S,), "{out} = bcast({a})", None, 4165814,
     lambda a, b, old, data, F, rng: np.full(F, a)),
    (20, "VECTOR_RECIPROCAL", V, (V,), "{out} = 1 / {a}", None, 6311851, _u(np.reciprocal)),
    (21, "VECTOR_NORM", S, (V,), "{out} = norm({a})", None, 4810562,
     _u(lambda v: np.sqrt(sequential_sum(v * v)))),
    (22, "VECTOR_ABS", V, (V,), "{out} = abs({a})", None, 3713533, _u(np.abs)),
    (23, "VECTOR_SUM", V, (V, V), "{out} = {a} + {b}", None, 4701519, _b(np.add), True),
    (24, "VECTOR_DIFF", V, (V, V), "{out} = {a} - {b}", None, 4165747, _b(np.subtract)),
    (25, "VECTOR_PRODUCT", V, (V, V), "{out} = {a} * {b}", None, 4504555, _b(np.multiply), True),
    (26, "VECTOR_DIVISION", V, (V, V), "{out} = {a} / {b}", None, 4556237, _b(np.divide)),
    (27, "VECTOR_INNER_PRODUCT", S, (V, V), "{out} = dot({a}, {b})", None, 4294617,
     _b(lambda a, b: sequential_sum(a * b)), True),
    (28, "VECTOR_OUTER_PRODUCT", M, (V, V), "{out} = outer({a}, {b})", None, 9833707,
     _b(np.outer)),
    (29, "SCALAR_MATRIX_PRODUCT", M, (S, M), "{out} = {a} * {b}", None, 5986302,
     _b(np.multiply)),
    (30, "MATRIX_RECIPROCAL", M, (M,), "{out} = 1 / {a}", None, 24336141, _u(np.reciprocal)),
    (31, "MATRIX_VECTOR_PRODUCT", V, (M, V), "{out} = {a} @ {b}", None, 9310002,
     _b(lambda m, v: sequential_sum(m * v, axis=1))),
    (32, "VECTOR_COLUMN_BROADCAST", M, (V,), "{out} = bcast_cols({a})", None, 10993088,
     lambda a, b, old, data, F, rng: np.repeat(a[:, None], F, axis=1)),
    (33, "VECTOR_ROW_BROADCAST", M, (V,), "{out} = bcast_rows({a})", None, 11087322,
     lambda a, b, old, data, F, rng: np.repeat(a[None, :], F, axis=0)),
    (34, "MATRIX_NORM", S, (M,), "{out} = norm({a})", None, 6422746,
     _u(lambda m: np.sqrt(sequential_sum(m * m)))),
    (35, "MATRIX_COLUMN_NORM", V, (M,), "{out} = norm({a}, axis=0)", None, 6682187,
     _u(lambda m: np.sqrt(sequential_sum(m * m, axis=0)))),
    (36, "MATRIX_ROW_NORM", V, (M,), "{out} = norm({a}, axis=1)", None, 13351123,
     _u(lambda m: np.sqrt(sequential_sum(m * m, axis=1)))),
    (37, "MATRIX_TRANSPOSE", M, (M,), "{out} = transpose({a})", None, 9394756,
     _u(lambda m: m.T.copy())),
    (38, "MATRIX_ABS", M, (M,), "{out} = abs({a})", None, 4630926, _u(np.abs)),
    (39, "MATRIX_SUM", M, (M, M), "{out} = {a} + {b}", None, 5579381, _b(np.add), True),
    (40, "MATRIX_DIFF", M, (M, M), "{out} = {a} - {b}", None, 5429452, _b(np.subtract)),
    (41, "MATRIX_PRODUCT", M, (M, M), "{out} = {a} * {b}", None, 5475227, _b(np.multiply), True),
    (42, "MATRIX_DIVISION", M, (M, M), "{out} = {a} / {b}", None, 18234378, _b(np.divide)),
    (43, "MATRIX_MATRIX_PRODUCT", M, (M, M), "{out} = {a} @ {b}", None, 14516296,
     _b(lambda a, b: sequential_sum(a[:, :, None] * b[None, :, :], axis=1))),
    (44, "SCALAR_MIN", S, (S, S), "{out} = minimum({a}, {b})", None, 3677265, _b(_min_std)),
    (45, "VECTOR_MIN", V, (V, V), "{out} = minimum({a}, {b})", None, 3989956, _b(_min_std)),
    (46, "MATRIX_MIN", M, (M, M), "{out} = minimum({a}, {b})", None, 5457728, _b(_min_m)),
    (47, "SCALAR_MAX", S, (S, S), "{out} = maximum({a}, {b})", None, 4573695, _b(_max_std)),
    (48, "VECTOR_MAX", V, (V, V), "{out} = maximum({a}, {b})", None, 3974229, _b(_max_std)),
    (49, "MATRIX_MAX", M, (M, M), "{out} = maximum({a}, {b})", None, 5840952, _b(_max_m)),
    (50, "VECTOR_MEAN", S, (V,), "{out} = mean({a})", None, 4280443, _u(_mean)),
    (51, "MATRIX_MEAN", S, (M,), "{out} = mean({a})", None, 4595196, _u(_mean)),
    (52, "MATRIX_ROW_MEAN", V, (M,), "{out} = mean({a}, axis=1)", None, 9763956,
     _u(lambda m: sequential_sum(m, axis=1) / m.shape[1])),
    (53, "MATRIX_ROW_ST_DEV", V, (M,), "{out} = std({a}, axis=1)", None, 16766477, _u(_row_std)),
    (54, "VECTOR_ST_DEV", S, (V,), "{out} = std({a})", None, 5585730, _u(_std)),
    (55, "MATRIX_ST_DEV", S, (M,), "{out} = std({a})", None, 10640216, _u(_std)),
    (56, "SCALAR_CONST_SET", S, (), "{out} = {d0}", "const", 3691108,
     lambda a, b, old, data, F, rng: np.float64(data[0])),
    (57, "VECTOR_CONST_SET", V, (), "{out}[{d0}] = {d1}", "vindex", 3991421,
     lambda a, b, old, data, F, rng: _set_vector(old, data, F)),
    (58, "MATRIX_CONST_SET", M, (), "{out}[{d0}, {d1}] = {d2}", "mindex", 3693035,
     lambda a, b, old, data, F, rng: _set_matrix(old, data, F)),
    (59, "SCALAR_UNIFORM_SET", S, (), "{out} = uniform({d0}, {d1})", "uniform", 26610704,
     _random_set(_uniform, S)),
    (60, "VECTOR_UNIFORM_SET", V, (), "{out} = uniform({d0}, {d1})", "uniform", 57817372,
     _random_set(_uniform, V)),
    (61, "MATRIX_UNIFORM_SET", M, (), "{out} = uniform({d0}, {d1})", "uniform", 208339446,
     _random_set(_uniform, M)),
    (62, "SCALAR_GAUSSIAN_SET", S, (), "{out} = gaussian({d0}, {d1})", "gaussian", 20775635,
     _random_set(_gaussian, S)),
    (63, "VECTOR_GAUSSIAN_SET", V, (), "{out} = gaussian({d0}, {d1})", "gaussian", 77483018,
     _random_set(_gaussian, V)),
    (64, "MATRIX_GAUSSIAN_SET", M, (), "{out} = gaussian({d0}, {d1})", "gaussian", 277690384,
     _random_set(_gaussian, M)),
]

OPS: tuple[Op, ...] = tuple(Op(*row) for row in _TABLE)
BY_NAME: dict[str, Op] = {op.name: op for op in OPS}
NO_OP = OPS[0]
assert [op.id for op in OPS] == list(range(65)), "op ids must be 0..64 in order"


# --- LLVM lowering: one template per op, shared by both native tiers (azc/codegen.py) ----------
# A template is (indices, body). Values are "lanes": one double per task, of type {ty}, as every
# task of an evaluation runs the same instruction in lockstep. `indices` says which elements the
# body reads and writes: "o[i,j] = a[i,k] b[k,j]" computes each o[i,j] from a[i,k] and b[k,j];
# an index absent from o (here k) is summed, sequentially from its first value. The body is LLVM
# IR over %a and %b giving %r; with a sum, it gives the term %t (or terms %t0, %t1 summed into
# %s0, %s1) and an optional "|"-separated finish computes %r from %s. {zero}, {one}, {n} (the
# number of terms summed) are splat constants; "%r = libm NAME %a" calls the C library per lane.
# Set ops (56-64) have no indices: codegen writes their constant data or random draws.

_ADD, _SUB, _MUL, _DIV = ("%r = f" + name + " {ty} %a, %b" for name in ("add", "sub", "mul", "div"))
_COPY = "%r = freeze {ty} %a"
_ABS = "%r = call {ty} @llvm.fabs.{vt}({ty} %a)"
_RECIPROCAL = "%r = fdiv {ty} {one}, %a"
_STEP = "%c = fcmp ogt {ty} %a, {zero}\n%r = select {bty} %c, {ty} {one}, {ty} {zero}"
_SQUARE = "%t = fmul {ty} %a, %a"
_SQRT = "%r = call {ty} @llvm.sqrt.{vt}({ty} %s)"
_MEAN = "%r = fdiv {ty} %s, {n}"
_COPY_TERM = "%t = freeze {ty} %a|"
_STD = ("%t0 = freeze {ty} %a\n%t1 = fmul {ty} %a, %a"
        "|%m = fdiv {ty} %s0, {n}\n%q = fdiv {ty} %s1, {n}\n%mm = fmul {ty} %m, %m\n"
        "%d = fsub {ty} %q, %mm\n%r = call {ty} @llvm.sqrt.{vt}({ty} %d)")
_MIN_STD = "%c = fcmp olt {ty} %b, %a\n%r = select {bty} %c, {ty} %b, {ty} %a"
_MAX_STD = "%c = fcmp olt {ty} %a, %b\n%r = select {bty} %c, {ty} %b, {ty} %a"
_MIN_M = "%c = fcmp olt {ty} %a, %b\n%r = select {bty} %c, {ty} %a, {ty} %b"
_MAX_M = "%c = fcmp ogt {ty} %a, %b\n%r = select {bty} %c, {ty} %a, {ty} %b"
_S2, _V2, _M2 = "o = a b", "o[i] = a[i] b[i]", "o[i,j] = a[i,j] b[i,j]"
_S1, _V1, _M1 = "o = a", "o[i] = a[i]", "o[i,j] = a[i,j]"

LOWERING: dict[int, tuple[str, str]] = {
    1: (_S2, _ADD), 2: (_S2, _SUB), 3: (_S2, _MUL), 4: (_S2, _DIV),
    5: (_S1, _ABS), 6: (_S1, _RECIPROCAL),
    7: (_S1, "%r = libm sin %a"), 8: (_S1, "%r = libm cos %a"), 9: (_S1, "%r = libm tan %a"),
    10: (_S1, "%r = libm asin %a"), 11: (_S1, "%r = libm acos %a"),
    12: (_S1, "%r = libm atan %a"), 13: (_S1, "%r = libm exp %a"), 14: (_S1, "%r = libm log %a"),
    15: (_S1, "%c = fcmp oge {ty} %a, {zero}\n%r = select {bty} %c, {ty} {one}, {ty} {zero}"),
    16: (_V1, _STEP), 17: (_M1, _STEP),
    18: ("o[i] = a b[i]", _MUL), 19: ("o[i] = a", _COPY), 20: (_V1, _RECIPROCAL),
    21: ("o = a[k]", _SQUARE + "|" + _SQRT), 22: (_V1, _ABS),
    23: (_V2, _ADD), 24: (_V2, _SUB), 25: (_V2, _MUL), 26: (_V2, _DIV),
    27: ("o = a[k] b[k]", "%t = fmul {ty} %a, %b"),
    28: ("o[i,j] = a[i] b[j]", _MUL), 29: ("o[i,j] = a b[i,j]", _MUL), 30: (_M1, _RECIPROCAL),
    31: ("o[i] = a[i,k] b[k]", "%t = fmul {ty} %a, %b"),
    32: ("o[i,j] = a[i]", _COPY), 33: ("o[i,j] = a[j]", _COPY),
    34: ("o = a[i,k]", _SQUARE + "|" + _SQRT),
    35: ("o[j] = a[i,j]", _SQUARE + "|" + _SQRT), 36: ("o[i] = a[i,k]", _SQUARE + "|" + _SQRT),
    37: ("o[i,j] = a[j,i]", _COPY), 38: (_M1, _ABS),
    39: (_M2, _ADD), 40: (_M2, _SUB), 41: (_M2, _MUL), 42: (_M2, _DIV),
    43: ("o[i,j] = a[i,k] b[k,j]", "%t = fmul {ty} %a, %b"),
    44: (_S2, _MIN_STD), 45: (_V2, _MIN_STD), 46: (_M2, _MIN_M),
    47: (_S2, _MAX_STD), 48: (_V2, _MAX_STD), 49: (_M2, _MAX_M),
    50: ("o = a[k]", _COPY_TERM + _MEAN), 51: ("o = a[i,k]", _COPY_TERM + _MEAN),
    52: ("o[i] = a[i,k]", _COPY_TERM + _MEAN), 53: ("o[i] = a[i,k]", _STD),
    54: ("o = a[k]", _STD), 55: ("o = a[i,k]", _STD),
}
assert set(LOWERING) == {op.id for op in OPS if op.out is not None and op.data is None}


# --- NumPy source: one statement per op, for `azc export --to numpy` (azc/export.py) -----------
# Each is Python source over locals named by address ({out}, {a}, {b}), the constant data
# ({d0}..{d2}, written exactly), the vector size {F} and the random stream {rng}. Scalars are
# np.float64 so that IEEE rules hold. The free names ordered_sum, std, index, sin ... log are the
# exported module's runtime (azc/numpy_runtime.py), which reproduces the semantics helpers above
# (sequential sums, libm transcendentals, the program stream) exactly.

_NP_SUM, _NP_DIFF, _NP_PRODUCT, _NP_DIVISION = ("{out} = {a} " + o + " {b}" for o in "+-*/")
_NP_ABS, _NP_RECIPROCAL = "{out} = np.abs({a})", "{out} = 1.0 / {a}"
_NP_STEP = "{out} = ({a} > 0).astype(np.float64)"
_NP_SQRT_SUM_SQUARES = "{out} = np.sqrt(ordered_sum({a} * {a}{axis}))"

NUMPY_SOURCE: dict[int, str] = {
    1: _NP_SUM, 2: _NP_DIFF, 3: _NP_PRODUCT, 4: _NP_DIVISION,
    5: "{out} = abs({a})", 6: _NP_RECIPROCAL,
    7: "{out} = sin({a})", 8: "{out} = cos({a})", 9: "{out} = tan({a})",
    10: "{out} = arcsin({a})", 11: "{out} = arccos({a})", 12: "{out} = arctan({a})",
    13: "{out} = exp({a})", 14: "{out} = log({a})",
    15: "{out} = np.float64({a} >= 0)", 16: _NP_STEP, 17: _NP_STEP,
    18: _NP_PRODUCT, 19: "{out} = np.full({F}, {a})", 20: _NP_RECIPROCAL,
    21: _NP_SQRT_SUM_SQUARES.replace("{axis}", ""), 22: _NP_ABS,
    23: _NP_SUM, 24: _NP_DIFF, 25: _NP_PRODUCT, 26: _NP_DIVISION,
    27: "{out} = ordered_sum({a} * {b})", 28: "{out} = np.outer({a}, {b})",
    29: _NP_PRODUCT, 30: _NP_RECIPROCAL,
    31: "{out} = ordered_sum({a} * {b}, axis=1)",
    32: "{out} = np.repeat({a}[:, None], {F}, axis=1)",
    33: "{out} = np.repeat({a}[None, :], {F}, axis=0)",
    34: _NP_SQRT_SUM_SQUARES.replace("{axis}", ""),
    35: _NP_SQRT_SUM_SQUARES.replace("{axis}", ", axis=0"),
    36: _NP_SQRT_SUM_SQUARES.replace("{axis}", ", axis=1"),
    37: "{out} = {a}.T.copy()", 38: _NP_ABS,
    39: _NP_SUM, 40: _NP_DIFF, 41: _NP_PRODUCT, 42: _NP_DIVISION,
    43: "{out} = ordered_sum({a}[:, :, None] * {b}[None, :, :], axis=1)",
    # min/max keep the NaN rules of _min_std, _max_std, _min_m and _max_m
    44: "{out} = {b} if {b} < {a} else {a}", 45: "{out} = np.where({b} < {a}, {b}, {a})",
    46: "{out} = np.where({a} < {b}, {a}, {b})",
    47: "{out} = {b} if {a} < {b} else {a}", 48: "{out} = np.where({a} < {b}, {b}, {a})",
    49: "{out} = np.where({a} > {b}, {a}, {b})",
    50: "{out} = ordered_sum({a}) / {a}.size", 51: "{out} = ordered_sum({a}) / {a}.size",
    52: "{out} = ordered_sum({a}, axis=1) / {F}", 53: "{out} = std({a}, axis=1)",
    54: "{out} = std({a})", 55: "{out} = std({a})",
    56: "{out} = np.float64({d0})",
    57: "{out}[index({d0}, {F})] = {d1}",
    58: "{out}[index({d0}, {F}), index({d1}, {F})] = {d2}",
    59: "{out} = {rng}.uniform({d0}, {d1})",
    60: "{out} = {rng}.uniform({d0}, {d1}, ({F},))",
    61: "{out} = {rng}.uniform({d0}, {d1}, ({F}, {F}))",
    62: "{out} = {rng}.gaussian({d0}, {d1})",
    63: "{out} = {rng}.gaussian({d0}, {d1}, ({F},))",
    64: "{out} = {rng}.gaussian({d0}, {d1}, ({F}, {F}))",
}
assert set(NUMPY_SOURCE) == {op.id for op in OPS if op.out is not None}


def op_named(name: str) -> Op:
    """Look an op up by its enum name, with or without the `_OP` suffix."""
    name = name.upper().removesuffix("_OP")
    if name not in BY_NAME:
        raise KeyError(f"unknown op {name!r}")
    return BY_NAME[name]


# --- constant data: how it is drawn and mutated (the original's randomizer.cc) ------------------


def draw_data(op: Op, rng: random.Random) -> tuple[float, ...]:
    """Fresh constant data for a newly randomized instruction of this op."""
    kind = op.data
    if kind == "const":
        return (_open_uniform(rng, -1.0, 1.0),)
    if kind == "vindex":
        return (_fraction(rng), f32(rng.uniform(-1, 1)))
    if kind == "mindex":
        return (_fraction(rng), _fraction(rng), f32(rng.uniform(-1, 1)))
    if kind == "uniform":  # deliberately not sorted: low >= high makes a constant
        return (f32(rng.uniform(-1, 1)), f32(rng.uniform(-1, 1)))
    if kind == "gaussian":
        return (f32(rng.uniform(-1, 1)), f32(rng.random()))
    return ()


def alter_data(op: Op, data: tuple[float, ...], rng: random.Random) -> tuple[float, ...]:
    """Data with one field changed, as the original's ALTER_PARAM mutation does."""
    kind = op.data
    if kind == "const":
        return (_flip_or_scale(data[0], rng),)
    if kind == "vindex":
        if rng.random() < 0.5:
            return (_fraction(rng), data[1])
        return (data[0], f32(_flip_or_scale(data[1], rng)))
    if kind == "mindex":
        which = rng.randrange(3)
        if which < 2:
            new = list(data)
            new[which] = _fraction(rng)
            return tuple(new)
        return (data[0], data[1], f32(_flip_or_scale(data[2], rng)))
    if kind == "uniform":
        low, high = data
        if rng.random() < 0.5:
            low = f32(_flip_or_scale(low, rng))
        else:
            high = f32(_flip_or_scale(high, rng))
        return (min(low, high), max(low, high))
    if kind == "gaussian":
        mean, sd = data
        if rng.random() < 0.5:
            return (f32(_flip_or_scale(mean, rng)), sd)
        return (mean, f32(_scale(sd, rng)))
    return data


_BELOW_ONE = float(np.nextafter(np.float32(1), np.float32(0)))


def _fraction(rng) -> float:
    """A position fraction: a float32 in [0, 1), as the original's UniformProbability.

    NOTE: a float64 draw within 2**-25 of 1 rounds to 1.0 in float32, which would index one
    past the end; it becomes the largest float32 below 1 (the draw sequence is unchanged).
    """
    return min(f32(rng.random()), _BELOW_ONE)


def _open_uniform(rng, low, high):
    while True:
        x = rng.uniform(low, high)
        if low < x < high:
            return x


def _scale(x, rng):
    """Multiply by a log-normal factor: sign(x) * exp(log|x| + N(0, 1)); zero stays zero."""
    if x == 0 or not math.isfinite(x):
        return x
    exponent = math.log(abs(x)) + rng.gauss(0.0, 1.0)
    return math.copysign(math.exp(min(exponent, 700.0)), x)


def _flip_or_scale(x, rng):
    if rng.random() < 0.1:
        return -x
    return _scale(x, rng)
