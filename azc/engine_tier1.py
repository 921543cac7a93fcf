"""Tier 1: an evaluator compiled once per experiment shape, running whole evaluations natively.

One native call evaluates a batch of programs. For each program and each group of like-shaped
tasks (the group's tasks are SIMD lanes run in lockstep):

    memory = zeros; rng = the streams of (seed, task); run Setup
    alive = all lanes; best = 0
    for each epoch (a chunk of the training steps):
        for each step: v0, s0 = x, 0; Predict; [sigmoid s1]; check |y - s1|
                       lanes failing the check stop (keeping best); all stopped -> done
                       v0, s0 = x, y; Learn
        validate the alive lanes (Predict only); a lane failing validation scores 0 for this
            epoch and its memory is restored to the moment it failed if more epochs follow
        best = max(best, this epoch's fitness)

Stopped lanes keep computing (their results are ignored), so lanes never diverge. Programs
arrive pre-decoded by azc.engine.pack: one 12 x int64 record per instruction, no-ops removed,
addresses turned into element offsets, const-set positions into indices, plus liveness facts
from which @prune drops dead code before each program runs.
"""

import ctypes
import math
from dataclasses import dataclass

import numpy as np

from azc.codegen import Emitter, declarations, lower, lower_set, per_lane_call
from azc.engine_prune import pruner
from azc.ir import FEATURES, LABEL, PREDICTION, MemoryShape
from azc.jit import compile_ir, host_triple_and_layout
from azc.ops import LOWERING
from azc.tasks import ACCURACY

RECORD = 12  # int64 fields per instruction record, see engine.Packed
CTX_SLOTS = 10  # per group: x/y train, x/y valid, rng seeds, memory, snapshot, rng, rng snapshot,
# scratch


@dataclass(frozen=True)
class Group:
    """Tasks evaluated in lockstep: same step counts and eval type."""

    tasks: tuple[int, ...]  # indices into the evaluator's task list: one lane each
    train_steps: int  # training steps of the evaluation (all epochs)
    epoch_size: int
    valid_steps: int  # validation examples run
    valid_stored: int  # validation examples stored: the loss is averaged over these
    eval_type: str

    @property
    def recorded_steps(self) -> int:
        """Training errors a fingerprint records: those of the first epoch."""
        return min(self.epoch_size, self.train_steps)


@dataclass(frozen=True)
class Shape:
    """Everything the compiled evaluator is specialized to."""

    F: int
    memory: MemoryShape
    ops: tuple[int, ...]
    groups: tuple[Group, ...]
    num_tasks: int
    max_abs_error: float

    def offsets(self) -> tuple[int, int, int]:
        """First lane-vector element of the scalar, vector and matrix banks."""
        m = self.memory
        return 0, m.scalars, m.scalars + m.vectors * self.F

    @property
    def elements(self) -> int:
        """Lane vectors in the whole memory."""
        m = self.memory
        return m.scalars + m.vectors * self.F + m.matrices * self.F * self.F


def _interpreter(shape: Shape, g: int) -> str:
    """@interp_g(recs, first, last, mem, rng, scratch): run records [first, last)."""
    group = shape.groups[g]
    e = Emitter(len(group.tasks), shape.F)
    with e.loop("%count", "n") as i:
        index = e.value("i64", f"add i64 %first, {i}")
        record = e.gep("%recs", index, f"[{RECORD} x i64]")
        fields = [e.load("i64", e.gep(record, str(k), "i64"), "f") for k in range(8)]
        op, out, in1, in2, index0, index1 = fields[:6]
        data = [e.value("double", f"bitcast i64 {f} to double") for f in fields[6:]]
        pointers = [e.lane("%mem", x) for x in (out, in1, in2)]
        cases = {op_id: e.label(f"op{op_id}") for op_id in shape.ops if op_id != 0}
        nxt = e.label("next")
        targets = " ".join(f"i64 {op_id}, label %{label}" for op_id, label in cases.items())
        e(f"switch i64 {op}, label %{nxt} [ {targets} ]")
        for op_id, label in cases.items():
            e.block(label)
            if op_id in LOWERING:
                lower(e, op_id, *pointers, "%scratch")
            else:
                lower_set(e, op_id, pointers[0], data, (index0, index1), "%rng")
            e(f"br label %{nxt}")
        e.block(nxt)
    e("ret void")
    header = (f"define internal void @interp{g}(ptr noalias %recs, i64 %first, i64 %last, "
              "ptr noalias %mem, ptr noalias %rng, ptr noalias %scratch)")
    text = e.function(header)
    return text.replace("start:\n", "start:\n  %count = sub i64 %last, %first\n", 1)


class _Driver:
    """Emits the per-group evaluation driver; see the module docstring."""

    def __init__(self, shape: Shape, g: int, compiled: bool = False):
        self.shape, self.g, self.group = shape, g, shape.groups[g]
        self.compiled = compiled
        self.e = e = Emitter(len(self.group.tasks), shape.F)
        self.T, self.F = e.T, e.F
        self.ctx = {name: e.load("ptr", e.gep("%ctx", str(k), "i64"), name)
                    for k, name in enumerate(("xt", "yt", "xv", "yv", "seeds", "mem", "snap",
                                              "rng", "srng", "scratch"))}
        s_base, v_base, _ = shape.offsets()
        self.s0 = e.lane(self.ctx["mem"], s_base + LABEL)
        self.s1 = e.lane(self.ctx["mem"], s_base + PREDICTION)
        self.v0 = e.lane(self.ctx["mem"], v_base + FEATURES * shape.F)
        self.max_error = e.const(shape.max_abs_error)

    def run(self, component: int):
        """Run component 0, 1 or 2 (setup, predict, learn) of the current program."""
        e, c = self.e, self.ctx
        if self.compiled:  # tier 2: the program's own function for this component and group
            slot = e.gep("%offs", str(self.g * 3 + component), "ptr")
            function = e.load("ptr", slot, "fn")
            e(f"call void {function}(ptr {c['mem']}, ptr {c['rng']}, ptr {c['scratch']})")
            return
        first = e.load("i64", e.gep("%offs", str(component), "i64"))
        last = e.load("i64", e.gep("%offs", str(component + 1), "i64"))
        e(f"call void @interp{self.g}(ptr %recs, i64 {first}, i64 {last}, ptr {c['mem']}, "
          f"ptr {c['rng']}, ptr {c['scratch']})")

    def copy(self, to: str, source: str, count: int):
        """Copy `count` lane vectors, one lane vector at a time.

        NOTE: not a memcpy: the ops then load whole lane vectors, and stores of that same
        width let the CPU forward them to those loads (a memcpy's wider stores would not).
        """
        e = self.e
        for k in range(count):
            e.store(e.ty, e.load(e.ty, e.lane(source, k)), e.lane(to, k))

    def example(self, x: str, step: str):
        """v0 = features of example `step`; s0 = 0."""
        e = self.e
        row = e.value("i64", f"mul i64 {step}, {self.F}")
        self.copy(self.v0, e.lane(x, row), self.F)
        e.store(e.ty, e.const(0.0), self.s0)

    def sigmoid(self, x: str) -> str:
        """1 / (1 + exp(-x)) per lane, with the C library's exp as the reference."""
        e = self.e
        negative = e.value(e.ty, f"fneg {e.ty} {x}")
        exp = per_lane_call(e, "exp", negative)
        denominator = e.value(e.ty, f"fadd {e.ty} {e.const(1.0)}, {exp}")
        return e.value(e.ty, f"fdiv {e.ty} {e.const(1.0)}, {denominator}")

    def any(self, mask: str) -> str:
        """Whether any lane of a mask is set."""
        return self.e.value("i1", f"call i1 @llvm.vector.reduce.or.v{self.T}i1({self.e.bty} "
                                  f"{mask})")

    def record(self, slot: int, count_slot: int, cap: int, step: str, errors: str, ok: str):
        """Store this step's errors and count the lanes still recording (FEC fingerprints)."""
        e, shape = self.e, self.shape
        table = e.load("ptr", e.gep("%rec", str(slot), "i64"))
        counts = e.load("ptr", e.gep("%rec", str(count_slot), "i64"))
        for lane, task in enumerate(self.group.tasks):
            row = e.value("i64", f"mul i64 %p, {shape.num_tasks}")
            row = e.value("i64", f"add i64 {row}, {task}")
            base = e.value("i64", f"mul i64 {row}, {cap}")
            at = e.value("i64", f"add i64 {base}, {step}")
            value = e.value("double", f"extractelement {e.ty} {errors}, i64 {lane}")
            e.store("double", value, e.gep(table, at))
            flag = e.value("i1", f"extractelement {e.bty} {ok}, i64 {lane}")
            count_at = e.gep(counts, row, "i64")
            old = e.load("i64", count_at)
            e.store("i64", e.value("i64", f"add i64 {old}, " + e.value(
                "i64", f"zext i1 {flag} to i64")), count_at)

    def masked_copy(self, to: str, source: str, mask: str):
        """to[lane] = source[lane] for the lanes in mask, over all memory elements."""
        e = self.e
        with e.loop(self.shape.elements, "k") as k:
            pt, ps = e.lane(to, k), e.lane(source, k)
            new, old = e.load(e.ty, ps), e.load(e.ty, pt)
            e.store(e.ty, e.value(e.ty, f"select {e.bty} {mask}, {e.ty} {new}, {e.ty} {old}"),
                    pt)

    def emit(self) -> str:
        """The driver function @group<g> (or @cgroup<g> for tier 2)."""
        e, c, group, shape = self.e, self.ctx, self.group, self.shape
        T = self.T
        true = "splat (i1 true)"
        e(f"call void @llvm.memset.p0.i64(ptr align 8 {c['mem']}, i8 0, "
          f"i64 {shape.elements * T * 8}, i1 false)")
        e(f"call void @llvm.memcpy.p0.p0.i64(ptr align 8 {c['rng']}, ptr align 8 {c['seeds']}, "
          f"i64 {T * 8}, i1 false)")
        self.run(0)
        alive, best = e.var(e.bty, "alive"), e.var(e.ty, "best")
        e.store(e.bty, true, alive)
        e.store(e.ty, e.const(0.0), best)
        finish = e.label("finish")
        L, size = group.train_steps, group.epoch_size
        epochs = -(-L // size)
        recording = e.value("i1", "icmp ne ptr %rec, null")
        with e.loop(epochs, "ep") as epoch:
            start = e.value("i64", f"mul i64 {epoch}, {size}")
            stop = e.value("i64", f"add i64 {start}, {size}")
            short = e.value("i1", f"icmp slt i64 {stop}, {L}")
            stop = e.value("i64", f"select i1 {short}, i64 {stop}, i64 {L}")
            first_epoch = e.value("i1", f"icmp eq i64 {epoch}, 0")
            with e.loop(e.value("i64", f"sub i64 {stop}, {start}"), "st") as offset:
                step = e.value("i64", f"add i64 {start}, {offset}")
                self.train_step(step, alive, finish, e.value(
                    "i1", f"and i1 {recording}, {first_epoch}"))
            self.validate(short, alive, best, e.value("i1", f"and i1 {recording}, {first_epoch}"))
        e(f"br label %{finish}")
        e.block(finish)
        final = e.load(e.ty, best)
        for lane, task in enumerate(group.tasks):
            value = e.value("double", f"extractelement {e.ty} {final}, i64 {lane}")
            e.store("double", value, e.gep("%fitness", str(task)))
        e("ret void")
        name = f"cgroup{self.g}" if self.compiled else f"group{self.g}"
        return e.function(f"define internal void @{name}(ptr noalias %recs, "
                          "ptr noalias %offs, ptr noalias %ctx, ptr noalias %fitness, "
                          "ptr %rec, i64 %p)")

    def train_step(self, step: str, alive: str, finish: str, recording: str):
        """Predict, check the error (stopping failing lanes), learn."""
        e, c = self.e, self.ctx
        self.example(c["xt"], step)
        self.run(1)
        s1 = e.load(e.ty, self.s1)
        if self.group.eval_type == ACCURACY:  # classifiers learn from the squashed prediction
            s1 = self.sigmoid(s1)
            e.store(e.ty, s1, self.s1)
        label = e.load(e.ty, e.lane(c["yt"], step))
        difference = e.value(e.ty, f"fsub {e.ty} {label}, {s1}")
        error = e.value(e.ty, f"call {e.ty} @llvm.fabs.{e.vt}({e.ty} {difference})")
        ok = e.value(e.bty, f"fcmp ole {e.ty} {error}, {self.max_error}")
        still = e.value(e.bty, f"and {e.bty} {ok}, " + e.load(e.bty, alive))
        e.store(e.bty, still, alive)
        with e.when(recording, "rec"):
            self.record(0, 1, self.group.recorded_steps, step, error, still)
        going = e.label("going")
        e(f"br i1 {self.any(still)}, label %{going}, label %{finish}")
        e.block(going)
        row = e.value("i64", f"mul i64 {step}, {self.F}")
        if self.compiled:
            self.copy(self.v0, e.lane(c["xt"], row), self.F)
        else:  # the pruner tells whether Predict may have changed v0
            rewrite = e.load("i64", e.gep("%offs", "4", "i64"))
            with e.when(e.value("i1", f"icmp ne i64 {rewrite}, 0"), "refeed"):
                self.copy(self.v0, e.lane(c["xt"], row), self.F)
        e.store(e.ty, label, self.s0)
        self.run(2)

    def validate(self, more: str, alive: str, best: str, recording: str):
        """One validation of the alive lanes; updates their best fitness."""
        e, c, group = self.e, self.ctx, self.group
        ok, loss, snapped = e.var(e.bty, "vok"), e.var(e.ty, "loss"), e.var(e.bty, "snapped")
        e.store(e.bty, e.load(e.bty, alive), ok)
        e.store(e.ty, e.const(0.0), loss)
        e.store(e.bty, "zeroinitializer", snapped)
        done = e.label("vdone")
        with e.loop(group.valid_steps, "vs") as step:
            self.example(c["xv"], step)
            self.run(1)
            s1 = e.load(e.ty, self.s1)
            label = e.load(e.ty, e.lane(c["yv"], step))
            if group.eval_type == ACCURACY:
                p = self.sigmoid(s1)
                truth = e.value(e.bty, f"fcmp ogt {e.ty} {label}, {e.const(0.5)}")
                guess = e.value(e.bty, f"fcmp ogt {e.ty} {p}, {e.const(0.5)}")
                same = e.value(e.bty, f"icmp eq {e.bty} {truth}, {guess}")
                error = e.value(e.ty, f"select {e.bty} {same}, {e.ty} {e.const(0.0)}, "
                                      f"{e.ty} {e.const(1.0)}")
                term = error
            else:
                error = e.value(e.ty, f"fsub {e.ty} {label}, {s1}")
                term = e.value(e.ty, f"fmul {e.ty} {error}, {error}")
            size = e.value(e.ty, f"call {e.ty} @llvm.fabs.{e.vt}({e.ty} {error})")
            passes = e.value(e.bty, f"fcmp ole {e.ty} {size}, {self.max_error}")
            was = e.load(e.bty, ok)
            old = e.load(e.ty, loss)
            added = e.value(e.ty, f"fadd {e.ty} {old}, {term}")
            e.store(e.ty, e.value(e.ty, f"select {e.bty} {was}, {e.ty} {added}, {e.ty} {old}"),
                    loss)
            failing = e.value(e.bty, f"xor {e.bty} {passes}, splat (i1 true)")
            failing = e.value(e.bty, f"and {e.bty} {failing}, {was}")
            snap = e.value("i1", f"and i1 {more}, {self.any(failing)}")
            with e.when(snap, "snap"):  # keep the lane as it was when its validation stopped
                self.masked_copy(c["snap"], c["mem"], failing)
                self.lanes_select(c["srng"], c["rng"], failing)
                e.store(e.bty, e.value(e.bty, f"or {e.bty} {failing}, "
                                              + e.load(e.bty, snapped)), snapped)
            still = e.value(e.bty, f"and {e.bty} {was}, {passes}")
            e.store(e.bty, still, ok)
            with e.when(recording, "vrec"):
                self.record(2, 3, group.valid_steps, step, size, still)
            going = e.label("vgoing")
            e(f"br i1 {self.any(still)}, label %{going}, label %{done}")
            e.block(going)
        e(f"br label %{done}")
        e.block(done)
        restored = e.load(e.bty, snapped)
        with e.when(self.any(restored), "restore"):
            self.masked_copy(c["mem"], c["snap"], restored)
            self.lanes_select(c["rng"], c["srng"], restored)
        self.epoch_fitness(e.load(e.ty, loss), e.load(e.bty, ok), alive, best)

    def lanes_select(self, to: str, source: str, mask: str):
        """Copy the random-stream states of the masked lanes."""
        e = self.e
        new, old = e.load(e.ity, source), e.load(e.ity, to)
        e.store(e.ity, e.value(e.ity, f"select {e.bty} {mask}, {e.ity} {new}, {e.ity} {old}"),
                to)

    def epoch_fitness(self, loss: str, ok: str, alive: str, best: str):
        """This validation's fitness per lane (fitness.py's formulas); best = max(best, it)."""
        e, group = self.e, self.group
        mean = e.value(e.ty, f"fdiv {e.ty} {loss}, {e.const(float(group.valid_stored))}")
        if group.eval_type == ACCURACY:
            fitness = e.value(e.ty, f"fsub {e.ty} {e.const(1.0)}, {mean}")
        else:  # 1 - (2/pi) atan(rms), 0 for a non-finite rms
            rms = e.value(e.ty, f"call {e.ty} @llvm.sqrt.{e.vt}({e.ty} {mean})")
            angle = per_lane_call(e, "atan", rms)
            scaled = e.value(e.ty, f"fmul {e.ty} {e.const(2.0 / math.pi)}, {angle}")
            fitness = e.value(e.ty, f"fsub {e.ty} {e.const(1.0)}, {scaled}")
            size = e.value(e.ty, f"call {e.ty} @llvm.fabs.{e.vt}({e.ty} {rms})")
            finite = e.value(e.bty, f"fcmp olt {e.ty} {size}, {e.const(math.inf)}")
            fitness = e.value(e.ty, f"select {e.bty} {finite}, {e.ty} {fitness}, "
                                    f"{e.ty} {e.const(0.0)}")
        fitness = e.value(e.ty, f"select {e.bty} {ok}, {e.ty} {fitness}, {e.ty} {e.const(0.0)}")
        old = e.load(e.ty, best)
        better = e.value(e.bty, f"fcmp ogt {e.ty} {fitness}, {old}")
        better = e.value(e.bty, f"and {e.bty} {better}, " + e.load(e.bty, alive))
        e.store(e.ty, e.value(e.ty, f"select {e.bty} {better}, {e.ty} {fitness}, {e.ty} {old}"),
                best)


def module_text(shape: Shape) -> str:
    """The whole tier-1 module: interpreters, group drivers and @evaluate."""
    triple, layout = host_triple_and_layout()
    parts = [f'target triple = "{triple}"', f'target datalayout = "{layout}"']
    declared = set()
    for g, group in enumerate(shape.groups):
        e = Emitter(len(group.tasks), shape.F)
        for line in declarations(e).splitlines():
            if line not in declared:
                declared.add(line)
                parts.append(line)
        parts.append(_interpreter(shape, g))
        parts.append(_Driver(shape, g).emit())
        parts.append(_Driver(shape, g, compiled=True).emit())
    parts.append(pruner(shape, RECORD))
    parts.append(_batch(shape, "evaluate", "group", 4, prune=True))
    parts.append(_batch(shape, "evaluate_compiled", "cgroup", 3 * len(shape.groups)))
    return "\n".join(parts)


def _batch(shape: Shape, name: str, driver: str, stride: int, prune: bool = False) -> str:
    """@name(n, recs, offs, ctx, fitness, rec, work): every group's driver for each program.

    `offs` holds per program either component offsets (interpreter) or, for tier 2, one
    function pointer per group and component. With `prune`, each program's live records are
    first copied to `work` (records, then one flag byte per record of the longest program).
    """
    e = Emitter(1, shape.F)
    recs = "%recs"
    with e.loop("%n", "prog") as p:
        offs = e.gep("%offs", e.value("i64", f"mul i64 {p}, {stride}"), "i64")
        fitness = e.gep("%fitness", e.value("i64", f"mul i64 {p}, {shape.num_tasks}"))
        if prune:
            recs, pruned = "%work", e.var("[5 x i64]", "pruned")
            e(f"call void @prune(ptr %recs, ptr {offs}, ptr %work, ptr {pruned}, ptr %flags)")
            offs = pruned
        for g in range(len(shape.groups)):
            ctx = e.gep("%ctx", str(g * CTX_SLOTS), "i64")
            e(f"call void @{driver}{g}(ptr {recs}, ptr {offs}, ptr {ctx}, ptr {fitness}, "
              f"ptr %rec, i64 {p})")
    e("ret void")
    return e.function(f"define void @{name}(i64 %n, ptr %recs, ptr %offs, ptr %ctx, "
                      "ptr %fitness, ptr %rec, ptr %work, ptr %flags)")


_SIGNATURE = ctypes.CFUNCTYPE(None, ctypes.c_int64, *[ctypes.c_void_p] * 7)


class Kernel:
    """A compiled tier-1 evaluator for one Shape; data arrays are bound per evaluator."""

    def __init__(self, shape: Shape, speed: int = 2):
        self.shape = shape
        self.text = module_text(shape)
        exports = ["evaluate", "evaluate_compiled", "prune_program"]
        self.library = compile_ir(self.text, exports, speed=speed)
        self.function = _SIGNATURE(self.library["evaluate"])
        self.compiled_function = _SIGNATURE(self.library["evaluate_compiled"])
        self._prune = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 5)(self.library["prune_program"])

    def prune(self, records: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One program's live records and their component offsets (see @prune)."""
        records = np.ascontiguousarray(records, dtype=np.int64)
        offsets = np.ascontiguousarray(offsets - offsets[0], dtype=np.int64)
        out = np.empty_like(records)
        out_offsets = np.zeros(5, dtype=np.int64)
        flags = np.empty(len(records) + 1, dtype=np.int8)
        self._prune(records.ctypes.data, offsets.ctypes.data, out.ctypes.data,
                    out_offsets.ctypes.data, flags.ctypes.data)
        return out[:out_offsets[3]], out_offsets

