"""Evaluators: one interface over the reference executor and the two native tiers.

    evaluator = make_evaluator(tasks, memory, engine="auto")
    evaluator.evaluate(program)          -> Evaluation(fitness, task_fitness)
    evaluator.fitness_batch(programs)    -> float64 array, one native call per batch
    evaluator.fingerprints(programs)     -> per-example errors for functional-equivalence caches

Programs reach native code as packed records (see `pack`), checked first: op ids against the
allowed ops, addresses against the memory shape, const-set positions against F. Whatever the
program, generated code then never reads or writes outside its memory.
"""

import logging
from dataclasses import dataclass, replace

import numpy as np

from azc import rng
from azc.engine_pack import Packed, RecordCache, pack, program_arrays
from azc.engine_tier1 import CTX_SLOTS, RECORD, Group, Kernel, Shape
from azc.engine_tier2 import CompiledCache, CompileFailure
from azc.errors import ConfigError
from azc.fitness import Evaluation, combine_fitnesses
from azc.ir import Instruction, MemoryShape, Program
from azc.ops import DATA_SIZES, OPS
from azc.tasks import MIN_TRAIN_STEPS, Task

log = logging.getLogger("azc")

ENGINES = ("auto", "interp", "jit", "reference")
class NativeBuildError(RuntimeError):
    """The native evaluator of a shape could not be compiled (a bug, logged as a warning)."""


@dataclass
class Fingerprints:
    """Per-example errors of a short evaluation, per (program, task): the FEC's input.

    `train_errors[p, t, :train_counts[p, t]]` are |y - s1| of the first epoch (after the sigmoid
    overwrite of ACCURACY tasks), stopping before an early stop; `valid_errors` likewise for the
    first validation (RMS: |y - s1|, ACCURACY: 0/1). Entries past the counts are NaN.
    """

    train_errors: np.ndarray
    train_counts: np.ndarray
    valid_errors: np.ndarray
    valid_counts: np.ndarray


_KERNELS: dict[Shape, Kernel] = {}
_COMPILED = CompiledCache()
_RECORDS: dict[tuple, RecordCache] = {}  # per (memory, F, ops): shared by an experiment's
# evaluators, so a batch fingerprinted and then evaluated is decoded once
L1_BYTES = 24 * 1024  # lockstep memory per block: within a typical 32-48 KB L1 data cache
# Engine "auto" compiles a program when the tier-1 time it saves exceeds its compile time.
# NOTE: measured with bench/throughput.py (live instructions only): tier 2 runs paper-scale
# programs 1.2-1.7x faster than tier 1 after ~110 ms of compiling, and demo programs slower (its
# driver calls each component through a pointer), so "auto" compiles only for big evaluations.
JIT_SPEEDUP = 1.3
SECONDS_PER_LANE_STEP = 5e-10  # tier-1 seconds per live instruction, lane and feature
COMPILE_SECONDS = 0.11  # tier-2 compile time of one paper-scale program


def kernel_for(shape: Shape) -> Kernel:
    """The compiled tier-1 evaluator of a shape, compiled on first use."""
    if shape not in _KERNELS:
        log.info("compiling the tier-1 evaluator for F=%d, memory %s, %d ops, %d group(s)",
                 shape.F, shape.memory, len(shape.ops), len(shape.groups))
        _KERNELS[shape] = Kernel(shape)
    return _KERNELS[shape]


def _groups(tasks, num_train, num_valid) -> tuple[Group, ...]:
    shapes: dict[tuple, list[int]] = {}
    for index, task in enumerate(tasks):
        train = task.max_train_examples if num_train is None else min(
            num_train, task.max_train_examples)
        stored = len(task.valid_labels)
        valid = stored if num_valid is None else min(num_valid, stored)
        key = (train, task.epoch_orders.shape[1], valid, stored, task.eval_type)
        shapes.setdefault(key, []).append(index)
    return tuple(Group(tuple(indices), *key) for key, indices in shapes.items())


def split_groups(groups, memory: MemoryShape, F: int, lanes: int | None = None):
    """Cut groups into lockstep blocks whose memory fits the L1 cache (or of `lanes` lanes).

    All lanes of a block share every cache line, so a block's working set is its memory times
    its lanes: with F = 16 matrices, ten lanes would spill to L2.
    """
    elements = memory.scalars + memory.vectors * F + memory.matrices * F * F
    widest = lanes or max(1, min(16, L1_BYTES // (elements * 8)))
    if lanes is None and widest > 4:
        widest -= widest % 4  # whole 256-bit vectors: 5 lanes cost as much as 8
    blocks = []
    for group in groups:
        count = -(-len(group.tasks) // widest)
        size = -(-len(group.tasks) // count)
        for start in range(0, len(group.tasks), size):
            blocks.append(replace(group, tasks=group.tasks[start:start + size]))
    return tuple(blocks)


SEEDS_SLOT = 4  # position of the rng seeds among a group's arrays (see _group_arrays)

class NativeEvaluator:
    """Tier 1: fitness of programs over a task collection through one compiled evaluator."""

    def __init__(self, tasks: list[Task], memory: MemoryShape | None = None, *,
                 max_abs_error: float = 100.0, num_train: int | None = None,
                 num_valid: int | None = None, seed: int = 0, combine: str = "mean",
                 ops=None, engine: str = "auto", lanes: int | None = None):
        self.tasks = list(tasks)
        self.engine, self.lanes = engine, lanes
        _check_tasks(self.tasks)
        combine_fitnesses([0.0], combine)
        self.F = self.tasks[0].features_size
        self.memory, self.combine, self.seed = memory, combine, seed
        self.max_abs_error = float(max_abs_error)
        # Without an op list the evaluator is first built for the ops of the first batch, and
        # rebuilt once for all ops if a later batch needs more.
        self.fixed_ops = ops is not None
        self.ops = tuple(sorted({_op_id(o) for o in ops} - {0})) if ops is not None else ()
        self.groups = _groups(self.tasks, num_train, num_valid)
        self._options = dict(max_abs_error=max_abs_error, num_train=num_train,
                             num_valid=num_valid, seed=seed, combine=combine)
        self._bound: dict[tuple, tuple] = {}
        self._streams: list[tuple[np.ndarray, tuple[int, ...]]] = []  # bound rng seeds, tasks
        self._fallback = None  # the reference evaluator, if native code cannot be built
        self.used: set[str] = set()  # the engines that ran batches: "interp", "jit"

    def _binding(self, memory: MemoryShape):
        """The kernel for a memory shape and its data arrays (kept alive here)."""
        key = (memory, self.ops)
        if memory.scalars < 2 or memory.vectors < 1:
            raise ConfigError(f"memory {memory} lacks the reserved s0, s1 and v0")
        if key not in self._bound:
            groups = split_groups(self.groups, memory, self.F, self.lanes)
            shape = Shape(self.F, memory, self.ops, groups, len(self.tasks), self.max_abs_error)
            try:
                kernel = kernel_for(shape)
            except Exception as error:  # an LLVM failure here is a bug; the user still gets
                log.warning("cannot build the native evaluator (%s); using the reference "
                            "executor", error)  # answers, slowly
                from azc.reference import ReferenceEvaluator
                self._fallback = ReferenceEvaluator(self.tasks, self.memory, **self._options)
                raise NativeBuildError(str(error)) from error
            arrays = []
            ctx = np.zeros(len(groups) * CTX_SLOTS, dtype=np.int64)
            for g, group in enumerate(groups):
                for slot, array in enumerate(self._group_arrays(shape, group)):
                    arrays.append(array)
                    ctx[g * CTX_SLOTS + slot] = array.ctypes.data
                self._streams.append((arrays[-CTX_SLOTS + SEEDS_SLOT], group.tasks))
            self._bound[key] = (kernel, arrays, ctx)
        return self._bound[key]

    def _group_arrays(self, shape: Shape, group: Group):
        T, F = len(group.tasks), self.F
        tasks = [self.tasks[i] for i in group.tasks]
        steps = [t.epoch_orders.reshape(-1)[:group.train_steps] for t in tasks]
        xt = np.stack([t.train_features[s] for t, s in zip(tasks, steps, strict=True)], axis=-1)
        yt = np.stack([t.train_labels[s] for t, s in zip(tasks, steps, strict=True)], axis=-1)
        xv = np.stack([t.valid_features[:group.valid_steps] for t in tasks], axis=-1)
        yv = np.stack([t.valid_labels[:group.valid_steps] for t in tasks], axis=-1)
        seeds = np.array([rng.stream_state(self.seed, i) for i in group.tasks], dtype=np.uint64)
        work = [np.zeros(shape.elements * T), np.zeros(shape.elements * T),
                np.zeros(T, np.uint64), np.zeros(T, np.uint64), np.zeros(F * F * T)]
        data = [np.ascontiguousarray(a, dtype=np.float64) for a in (xt, yt, xv, yv)]
        return data + [seeds] + work

    def _memory_for(self, programs) -> MemoryShape:
        if self.memory is not None:
            return self.memory
        shapes = [p.memory_shape() for p in programs] or [MemoryShape(2, 1, 0)]
        return MemoryShape(max(s.scalars for s in shapes), max(s.vectors for s in shapes),
                           max(s.matrices for s in shapes))

    def pack(self, programs, memory: MemoryShape | None = None) -> Packed:
        """Check and pack Program objects for this evaluator."""
        memory = memory or self._memory_for(programs)
        if self.fixed_ops:
            key = (memory, self.F, self.ops)
            cache = _RECORDS.get(key)
            if cache is None:
                cache = _RECORDS[key] = RecordCache(memory, self.F, self.ops)
            return cache.pack(programs)
        codes, data, lengths = program_arrays(programs)
        if not self.fixed_ops:
            used = {o for o in np.unique(codes[:, 0]).tolist() if 0 < o < len(OPS)}
            if not used <= set(self.ops):
                grown = used if not self.ops else {o.id for o in OPS if o.id}
                self.ops = tuple(sorted(grown | set(self.ops)))
        return pack(codes, data, lengths, memory, self.F, self.ops)

    def task_fitness_packed(self, packed: Packed, memory: MemoryShape, record=None):
        """(programs, tasks) fitness of packed programs: one native call."""
        kernel, _, ctx = self._binding(memory)
        fitness = np.zeros((len(packed), len(self.tasks)))
        if not len(packed):
            return fitness
        record = None if record is None else record.ctypes.data
        if self._use_jit(kernel, packed):
            try:
                table = _COMPILED.pointers(kernel, packed)
            except CompileFailure as failure:  # the rest of the batch is compiled and cached
                named = ", ".join(map(str, failure.programs[:5]))
                extra = len(failure.programs) - 5
                more = f" and {extra} more" if extra > 0 else ""
                log.warning("tier-2 compilation failed for program %s%s of a batch of %d (%s); "
                            "evaluating the batch on tier 1", named, more, len(packed),
                            failure.message)
            else:
                kernel.compiled_function(len(packed), packed.records.ctypes.data,
                                         table.ctypes.data, ctx.ctypes.data,
                                         fitness.ctypes.data, record, None, None)
                self.used.add("jit")
                return fitness
        self.used.add("interp")
        longest = int((packed.offsets[:, 3] - packed.offsets[:, 0]).max())
        work = np.empty(longest * RECORD + longest // 8 + 1, dtype=np.int64)
        kernel.function(len(packed), packed.records.ctypes.data, packed.offsets.ctypes.data,
                        ctx.ctypes.data, fitness.ctypes.data, record, work.ctypes.data,
                        work.ctypes.data + longest * RECORD * 8)
        return fitness

    def _use_jit(self, kernel, packed: Packed) -> bool:
        """Whether to compile each program: engine "jit", or "auto" when it repays the compile.

        Work is estimated from the live instructions of a few programs of the batch.
        """
        if self.engine != "auto":
            return self.engine == "jit"
        # Live code is at most all code: most batches need no pruned sample to decide.
        longest = int((packed.offsets[:4, 3] - packed.offsets[:4, 0]).max())
        if longest * self._seconds_saved_per_instruction() <= COMPILE_SECONDS:
            return False
        sample = [kernel.prune(packed.records[o[0]:o[3]], o)[1] for o in packed.offsets[:4]]
        lengths = np.diff(np.array(sample), axis=1).mean(axis=0)  # setup, predict, learn
        steps = sum((g.train_steps * (lengths[1] + lengths[2]) + g.valid_steps * lengths[1])
                    * len(g.tasks) for g in self.groups)
        saved = steps * SECONDS_PER_LANE_STEP * self.F * (1 - 1 / JIT_SPEEDUP)
        return saved > COMPILE_SECONDS

    def _seconds_saved_per_instruction(self) -> float:
        """An upper bound of the tier-2 time saved per live instruction of a program."""
        steps = sum((g.train_steps + g.valid_steps) * len(g.tasks) for g in self.groups)
        return steps * SECONDS_PER_LANE_STEP * self.F * (1 - 1 / JIT_SPEEDUP)

    def combined(self, task_fitness: np.ndarray) -> np.ndarray:
        """Combine per-task fitness rows exactly as fitness.combine_fitnesses does."""
        if self.combine == "mean":  # sequential sums, as Python's sum
            return np.cumsum(task_fitness, axis=1)[:, -1] / task_fitness.shape[1]
        return np.sort(task_fitness, axis=1)[:, task_fitness.shape[1] // 2]

    def fitness_batch(self, programs, seed: int | None = None) -> np.ndarray:
        """Combined fitness of each program, as a float64 array; random ops draw from the
        streams of `seed` instead of the evaluator's own, if given."""
        if seed is not None and seed != self.seed:
            own = self.seed
            self._set_seed(seed)
            try:
                return self.fitness_batch(programs)
            finally:
                self._set_seed(own)
        programs = list(programs)
        if self._fallback is None:
            memory = self._memory_for(programs)
            try:
                return self.combined(self.task_fitness_packed(self.pack(programs, memory),
                                                              memory))
            except NativeBuildError:
                pass
        return self._fallback.fitness_batch(programs)

    def _set_seed(self, seed: int):
        """Point every bound random stream (and the fallback's) at `seed`."""
        self.seed = self._options["seed"] = seed
        for seeds, tasks in self._streams:
            seeds[:] = [rng.stream_state(seed, i) for i in tasks]
        if self._fallback is not None:
            self._fallback.seed = seed

    def fitness_arrays(self, codes, data, lengths, memory: MemoryShape) -> np.ndarray:
        """Combined fitness of programs given in compact form (see engine_pack.program_arrays):
        the fast path for callers that keep programs as arrays."""
        packed = pack(codes, data, lengths, memory, self.F, self.ops if self.fixed_ops else None)
        if not self.fixed_ops:
            self.ops = tuple(sorted(set(self.ops) | set(packed.records[:, 0].tolist())))
        if self._fallback is None:
            try:
                return self.combined(self.task_fitness_packed(packed, memory))
            except NativeBuildError:
                pass
        return self._fallback.fitness_batch(_programs_of(codes, data, lengths))

    def evaluate(self, program: Program) -> Evaluation:
        """The program's combined fitness and its fitness on each task."""
        if self._fallback is None:
            memory = self._memory_for([program])
            try:
                row = self.task_fitness_packed(self.pack([program], memory), memory)[0]
                return Evaluation(float(self.combined(row[None])[0]),
                                  tuple(float(x) for x in row))
            except NativeBuildError:
                pass
        return self._fallback.evaluate(program)

    def fingerprints(self, programs) -> Fingerprints:
        """Record the per-example errors of an evaluation (build it with a short budget)."""
        programs = list(programs)
        memory = self._memory_for(programs)
        if self._fallback is None:
            try:
                return self._native_fingerprints(programs, memory)
            except NativeBuildError:
                pass
        return self._reference_fingerprints(programs)

    def _native_fingerprints(self, programs, memory: MemoryShape) -> Fingerprints:
        P, n = len(programs), len(self.tasks)
        train_cap = max(g.recorded_steps for g in self.groups)
        valid_cap = max(g.valid_steps for g in self.groups)
        if any(g.recorded_steps != train_cap or g.valid_steps != valid_cap
               for g in self.groups):
            raise ConfigError("fingerprints need tasks of equal epoch and validation sizes")
        # One buffer for the errors and one for the counts: four arrays cost more to allocate.
        errors = np.empty(P * n * (train_cap + valid_cap))
        counts = np.zeros(2 * P * n, np.int64)
        split = P * n * train_cap
        result = Fingerprints(errors[:split].reshape(P, n, train_cap), counts[:P * n].reshape(P, n),
                              errors[split:].reshape(P, n, valid_cap), counts[P * n:].reshape(P, n))
        at, counted = errors.ctypes.data, counts.ctypes.data
        record = np.array([at, counted, at + split * 8, counted + P * n * 8], dtype=np.int64)
        self.task_fitness_packed(self.pack(programs, memory), memory, record)
        for errors, counts in ((result.train_errors, result.train_counts),
                               (result.valid_errors, result.valid_counts)):
            errors[np.arange(errors.shape[2]) >= counts[..., None]] = np.nan
        return result

    def _reference_fingerprints(self, programs) -> Fingerprints:
        """As the native fingerprints, from the reference executor (when native code fails)."""
        from azc.reference import run_task
        runs = [[run_task(program, task, memory=self.memory, seed=self.seed, task_index=t,
                          record=True, **{k: self._options[k] for k in
                                          ("num_train", "num_valid", "max_abs_error")})
                 for t, task in enumerate(self.tasks)] for program in programs]
        shape = (len(programs), len(self.tasks))
        train_cap = max(g.recorded_steps for g in self.groups)
        valid_cap = max(g.valid_steps for g in self.groups)
        result = Fingerprints(np.full(shape + (train_cap,), np.nan), np.zeros(shape, np.int64),
                              np.full(shape + (valid_cap,), np.nan), np.zeros(shape, np.int64))
        for p, task_runs in enumerate(runs):
            for t, run in enumerate(task_runs):
                result.train_counts[p, t] = len(run.train_errors)
                result.train_errors[p, t, :len(run.train_errors)] = run.train_errors
                result.valid_counts[p, t] = len(run.valid_errors)
                result.valid_errors[p, t, :len(run.valid_errors)] = run.valid_errors
        return result


def _programs_of(codes, data, lengths) -> list[Program]:
    """Program objects from compact arrays (see engine_pack.program_arrays)."""
    instructions = [Instruction(op, out, in1, in2, tuple(values[:DATA_SIZES[OPS[op].data]]))
                    for (op, out, in1, in2), values in zip(np.asarray(codes).tolist(),
                                                           np.asarray(data).tolist(), strict=True)]
    programs, at = [], 0
    for sizes in np.asarray(lengths).reshape(-1, 3).tolist():
        components = []
        for size in sizes:
            components.append(tuple(instructions[at:at + size]))
            at += size
        programs.append(Program(*components))
    return programs


def _op_id(op) -> int:
    if isinstance(op, str):
        from azc.ops import op_named
        return op_named(op).id
    return int(getattr(op, "id", op))


def _check_tasks(tasks):
    if not tasks:
        raise ConfigError("an evaluator needs at least one task")
    sizes = {task.features_size for task in tasks}
    if len(sizes) > 1:
        raise ConfigError(f"tasks of one evaluator must share a feature size, got {sorted(sizes)}")
    for task in tasks:
        if task.max_train_examples < MIN_TRAIN_STEPS:
            raise ConfigError(f"task {task.name!r} has {task.max_train_examples} training "
                              f"steps; at least {MIN_TRAIN_STEPS} are needed")


def make_evaluator(tasks, memory: MemoryShape | None = None, *, engine: str = "auto",
                   max_abs_error: float = 100.0, num_train: int | None = None,
                   num_valid: int | None = None, seed: int = 0, combine: str = "mean",
                   ops=None, lanes: int | None = None):
    """An evaluator with ReferenceEvaluator's interface on the chosen engine.

    "reference" is the NumPy oracle; "interp" the tier-1 evaluator compiled once for this shape;
    "jit" compiles each program (tier 2); "auto" picks per batch by expected work.
    `ops` (ids or names) limits the ops the tier-1 evaluator is built for: fewer ops compile
    faster; None means those of the programs seen. `lanes` caps the tasks run in lockstep
    (default: as many as keep the block's memory in the L1 cache).
    """
    options = dict(max_abs_error=max_abs_error, num_train=num_train, num_valid=num_valid,
                   seed=seed, combine=combine)
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if engine == "reference":
        from azc.reference import ReferenceEvaluator
        return ReferenceEvaluator(tasks, memory, **options)
    return NativeEvaluator(tasks, memory, ops=ops, engine=engine, lanes=lanes, **options)
