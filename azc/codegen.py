"""LLVM IR text for ops, shared by the tier-1 evaluator and tier-2 programs.

Both native tiers lay memory out as address x element x task: every element is a "lane
vector" of T doubles, one per task, because the tasks of an evaluation run the same program in
lockstep. An op is emitted from its template in ops.LOWERING, which names the elements it reads
and an LLVM body over lane vectors; this module adds the loops, sums, temporaries and the
set ops' constants and random draws.

IR is written as text (about 8x faster than llvmlite.ir) with mutable locals in allocas, which
the optimizer promotes to registers; addresses are always GEPs, never integer arithmetic.
"""

import re
import struct
from contextlib import contextmanager

from azc import rng
from azc.ops import LOWERING, OPS, S, V

LIBM = ("sin", "cos", "tan", "asin", "acos", "atan", "exp", "log")
# Ops whose output may alias an input they read out of element order: computed in scratch.
_PRODUCTS = {31, 37, 43}


def double(x: float) -> str:
    """An exact LLVM literal for a double."""
    return f"0x{struct.unpack('<Q', struct.pack('<d', float(x)))[0]:016X}"


def i64(x: int) -> str:
    """A signed decimal literal for a 64-bit pattern."""
    x &= (1 << 64) - 1
    return str(x - (1 << 64) if x >= 1 << 63 else x)


class Emitter:
    """Collects one function's IR: fresh names, entry-block allocas, loops and branches."""

    def __init__(self, lanes: int, F: int):
        self.T, self.F = lanes, F
        self.ty, self.bty, self.ity = f"<{lanes} x double>", f"<{lanes} x i1>", f"<{lanes} x i64>"
        self.vt = f"v{lanes}f64"
        self.lines: list[str] = []
        self.allocas: list[str] = []
        self._count = 0

    def name(self, hint: str = "t") -> str:
        """A fresh SSA name."""
        self._count += 1
        return f"%{hint}.{self._count}"

    def label(self, hint: str = "b") -> str:
        """A fresh block label."""
        return self.name(hint)[1:]

    def __call__(self, line: str):
        self.lines.append("  " + line)

    def block(self, label: str):
        """Start a basic block."""
        self.lines.append(f"{label}:")

    def var(self, type_: str, hint: str = "v") -> str:
        """A mutable local (an alloca in the entry block)."""
        name = self.name(hint)
        self.allocas.append(f"  {name} = alloca {type_}, align 16")
        return name

    def value(self, type_: str, text: str, hint: str = "t") -> str:
        """Emit `name = text` and return the name."""
        name = self.name(hint)
        self(f"{name} = {text}")
        return name

    def load(self, type_: str, pointer: str, hint: str = "t") -> str:
        """Load a value (align 8: lane vectors are only double-aligned)."""
        return self.value(type_, f"load {type_}, ptr {pointer}, align 8", hint)

    def store(self, type_: str, value: str, pointer: str):
        """Store a value."""
        self(f"store {type_} {value}, ptr {pointer}, align 8")

    def gep(self, pointer: str, offset: str, type_: str = "double") -> str:
        """Address of element `offset` of `type_` from `pointer`."""
        return self.value("ptr", f"getelementptr inbounds {type_}, ptr {pointer}, i64 {offset}",
                          "p")

    def lane(self, pointer: str, element) -> str:
        """Pointer to lane vector number `element` (an i64 value or literal) of an operand."""
        if element == 0 or element == "0":
            return pointer
        offset = self.value("i64", f"mul i64 {element}, {self.T}", "o")
        return self.gep(pointer, offset)

    def splat(self, scalar: str, type_: str = "double") -> str:
        """A lane vector with every lane equal to a scalar value or literal."""
        vector = f"<{self.T} x {type_}>"
        one = self.value(vector, f"insertelement {vector} poison, {type_} {scalar}, i64 0")
        return self.value(vector, f"shufflevector {vector} {one}, {vector} poison, "
                                  f"<{self.T} x i32> zeroinitializer")

    def const(self, x: float) -> str:
        """A lane-vector constant with every lane equal to x."""
        return f"splat (double {double(x)})"

    @contextmanager
    def loop(self, count, hint: str = "i"):
        """for i in range(count): the body is the with-block; yields the i64 index."""
        counter = self.var("i64", hint + "c")
        head, body, done = self.label(hint + "head"), self.label(hint + "body"), self.label(
            hint + "done")
        self.store("i64", "0", counter)
        self(f"br label %{head}")
        self.block(head)
        index = self.load("i64", counter, hint)
        more = self.value("i1", f"icmp slt i64 {index}, {count}")
        self(f"br i1 {more}, label %{body}, label %{done}")
        self.block(body)
        yield index
        following = self.value("i64", f"add i64 {index}, 1")
        self.store("i64", following, counter)
        self(f"br label %{head}")
        self.block(done)

    @contextmanager
    def when(self, condition: str, hint: str = "if"):
        """if condition: the with-block."""
        then, after = self.label(hint), self.label(hint + "end")
        self(f"br i1 {condition}, label %{then}, label %{after}")
        self.block(then)
        yield
        self(f"br label %{after}")
        self.block(after)

    def function(self, header: str) -> str:
        """The whole function text around the collected body."""
        return "\n".join([header + " {", "entry:", *self.allocas, "  br label %start",
                          "start:", *self.lines, "}", ""])


# --- op templates -----------------------------------------------------------------------------

_INDEXED = re.compile(r"(\w)(?:\[([\w,]+)\])?")
_LOCAL = re.compile(r"%([A-Za-z_]\w*)")


def parse_indices(spec: str):
    """'o[i,j] = a[i,k] b[k,j]' -> (('i','j'), [('i','k'), ('k','j')], ('k',))."""
    left, right = spec.split("=")
    out = _INDEXED.fullmatch(left.strip()).group(2)
    out = tuple(out.split(",")) if out else ()
    ins = []
    for operand in right.split():
        found = _INDEXED.fullmatch(operand).group(2)
        ins.append(tuple(found.split(",")) if found else ())
    summed = []
    for indices in ins:
        summed += [i for i in indices if i not in out and i not in summed]
    return out, ins, tuple(summed)


def _body(e: Emitter, text: str, names: dict[str, str], n: int) -> dict[str, str]:
    """Emit template lines with fresh local names; returns the template-name -> SSA map."""
    text = text.format(ty=e.ty, bty=e.bty, vt=e.vt, zero=e.const(0.0), one=e.const(1.0),
                       n=e.const(float(n)))
    for line in text.split("\n"):
        libm = re.fullmatch(r"%(\w+) = libm (\w+) %(\w+)", line)
        if libm:
            target, function, source = libm.groups()
            names[target] = per_lane_call(e, function, names[source])
            continue
        fresh = re.match(r"%(\w+) =", line).group(1)
        if fresh not in names:
            names[fresh] = e.name(fresh)
        e(_LOCAL.sub(lambda m: names.get(m.group(1), m.group(0)), line))
    return names


def per_lane_call(e: Emitter, function: str, vector: str) -> str:
    """Call a C library double function on each lane."""
    result = "poison"
    for lane in range(e.T):
        x = e.value("double", f"extractelement {e.ty} {vector}, i64 {lane}")
        y = e.value("double", f"call double @{function}(double {x})")
        result = e.value(e.ty, f"insertelement {e.ty} {result}, double {y}, i64 {lane}")
    return result


def _element(e: Emitter, indices: tuple[str, ...], at: dict[str, str]) -> str:
    """The lane-vector number of an operand element: 0, i, or i * F + j."""
    if not indices:
        return "0"
    if len(indices) == 1:
        return at[indices[0]]
    row = e.value("i64", f"mul i64 {at[indices[0]]}, {e.F}")
    return e.value("i64", f"add i64 {row}, {at[indices[1]]}")


def lower(e: Emitter, op_id: int, out: str, a: str, b: str, scratch: str):
    """Emit one op of the LOWERING table on operand pointers `out`, `a`, `b`."""
    spec, template = LOWERING[op_id]
    out_indices, in_indices, summed = parse_indices(spec)
    term, _, finish = template.partition("|") if summed else (template, "", "")
    target = scratch if op_id in _PRODUCTS else out
    at: dict[str, str] = {}

    def nest(indices, inner):
        if not indices:
            return inner()
        with e.loop(e.F, indices[0]) as index:
            at[indices[0]] = index
            nest(indices[1:], inner)

    def element():
        if not summed:
            operands = [e.load(e.ty, e.lane(pointer, _element(e, indices, at)), name)
                        for name, pointer, indices in zip("ab", (a, b), in_indices, strict=False)]
            result = _body(e, template, dict(zip("ab", operands, strict=False)), 1)["r"]
        else:
            sums = _sum(e, summed, term, at, a, b, in_indices)
            result = _body(e, finish, sums, e.F ** len(summed))["r"] if finish else sums["s"]
        e.store(e.ty, result, e.lane(target, _element(e, out_indices, at)))

    nest(out_indices, element)
    if target is not out:
        size = e.F ** len(out_indices) * e.T * 8
        e(f"call void @llvm.memcpy.p0.p0.i64(ptr align 8 {out}, ptr align 8 {scratch}, "
          f"i64 {size}, i1 false)")


def _sum(e, summed, term, at, a, b, in_indices):
    """Sequential sums of the term's values over the summed indices (row-major order)."""
    terms = sorted(set(re.findall(r"%(t\d?) =", term)))
    accumulators = {t: e.var(e.ty, "acc") for t in terms}
    for accumulator in accumulators.values():
        e.store(e.ty, e.const(-0.0), accumulator)  # -0.0 + x == x for every x

    def inner(indices):
        if not indices:
            operands = [e.load(e.ty, e.lane(pointer, _element(e, idx, at)), name)
                        for name, pointer, idx in zip("ab", (a, b), in_indices, strict=False)]
            values = _body(e, term, dict(zip("ab", operands, strict=False)), 1)
            for t, accumulator in accumulators.items():
                old = e.load(e.ty, accumulator)
                e.store(e.ty, e.value(e.ty, f"fadd {e.ty} {old}, {values[t]}"), accumulator)
            return
        with e.loop(e.F, indices[0]) as index:
            at[indices[0]] = index
            inner(indices[1:])

    inner(summed)
    return {"s" + t[1:]: e.load(e.ty, accumulator) for t, accumulator in accumulators.items()}


# --- set ops: constants and random draws --------------------------------------------------------


def element_count(kind: str, F: int) -> int:
    """Elements of a scalar, vector or matrix."""
    return {S: 1, V: F, "m": F * F}[kind]


def lower_set(e: Emitter, op_id: int, out: str, values: tuple[str, str], indices, state: str):
    """Emit a set op; `values` are its data as double values, `indices` the const positions."""
    op = OPS[op_id]
    if op.data == "const":
        e.store(e.ty, e.splat(values[0]), out)
    elif op.data == "vindex":
        e.store(e.ty, e.splat(values[0]), e.lane(out, indices[0]))
    elif op.data == "mindex":
        row = e.value("i64", f"mul i64 {indices[0]}, {e.F}")
        element = e.value("i64", f"add i64 {row}, {indices[1]}")
        e.store(e.ty, e.splat(values[0]), e.lane(out, element))
    elif op.data == "uniform":
        _uniform(e, out, values, element_count(op.out, e.F), state)
    elif op.data == "gaussian":
        _gaussian(e, out, values, element_count(op.out, e.F), state)
    else:
        raise AssertionError(f"op {op.name} is not a set op")


def unit(e: Emitter, state: str) -> str:
    """One splitmix64 draw per lane, as rng.Stream.unit: uniform on (0, 1)."""
    s = e.load(e.ity, state)
    s = e.value(e.ity, f"add {e.ity} {s}, splat (i64 {i64(rng.GOLDEN)})")
    e.store(e.ity, s, state)
    z = s
    for shift, factor in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        shifted = e.value(e.ity, f"lshr {e.ity} {z}, splat (i64 {shift})")
        mixed = e.value(e.ity, f"xor {e.ity} {z}, {shifted}")
        z = e.value(e.ity, f"mul {e.ity} {mixed}, splat (i64 {i64(factor)})")
    shifted = e.value(e.ity, f"lshr {e.ity} {z}, splat (i64 31)")
    z = e.value(e.ity, f"xor {e.ity} {z}, {shifted}")
    top = e.value(e.ity, f"lshr {e.ity} {z}, splat (i64 12)")
    x = e.value(e.ty, f"uitofp {e.ity} {top} to {e.ty}")
    x = e.value(e.ty, f"fadd {e.ty} {x}, {e.const(0.5)}")
    return e.value(e.ty, f"fmul {e.ty} {x}, {e.const(2.0 ** -52)}")


def _uniform(e, out, values, count, state):
    low, high = values
    ordered = e.value("i1", f"fcmp olt double {low}, {high}")
    draw, constant, done = e.label("draw"), e.label("const"), e.label("setdone")
    e(f"br i1 {ordered}, label %{draw}, label %{constant}")
    e.block(draw)
    lows, highs = e.splat(low), e.splat(high)
    width = e.value(e.ty, f"fsub {e.ty} {highs}, {lows}")
    with e.loop(count, "u") as index:
        scaled = e.value(e.ty, f"fmul {e.ty} {width}, {unit(e, state)}")
        e.store(e.ty, e.value(e.ty, f"fadd {e.ty} {lows}, {scaled}"), e.lane(out, index))
    e(f"br label %{done}")
    e.block(constant)  # absl's Uniform returns the lower bound of an empty interval
    lows = e.splat(low)
    with e.loop(count, "u") as index:
        e.store(e.ty, lows, e.lane(out, index))
    e(f"br label %{done}")
    e.block(done)


def _gaussian(e, out, values, count, state):
    means, sds = e.splat(values[0]), e.splat(values[1])
    with e.loop(count, "g") as index:
        u1, u2 = unit(e, state), unit(e, state)
        log = per_lane_call(e, "log", u1)
        radius = e.value(e.ty, f"fmul {e.ty} {e.const(-2.0)}, {log}")
        radius = e.value(e.ty, f"call {e.ty} @llvm.sqrt.{e.vt}({e.ty} {radius})")
        angle = e.value(e.ty, f"fmul {e.ty} {e.const(rng.TWO_PI)}, {u2}")
        normal = e.value(e.ty, f"fmul {e.ty} {radius}, {per_lane_call(e, 'cos', angle)}")
        scaled = e.value(e.ty, f"fmul {e.ty} {sds}, {normal}")
        e.store(e.ty, e.value(e.ty, f"fadd {e.ty} {means}, {scaled}"), e.lane(out, index))


def declarations(e: Emitter) -> str:
    """Declarations every module using these lowerings needs."""
    lines = [f"declare double @{name}(double)" for name in LIBM]
    lines += [f"declare {e.ty} @llvm.fabs.{e.vt}({e.ty})",
              f"declare {e.ty} @llvm.sqrt.{e.vt}({e.ty})",
              "declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)",
              "declare void @llvm.memset.p0.i64(ptr, i8, i64, i1)",
              f"declare i1 @llvm.vector.reduce.or.v{e.T}i1({e.bty})"]
    return "\n".join(lines) + "\n"
