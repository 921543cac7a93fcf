"""The mutator on arrays: a whole chunk of children per call, drawn with vectorized NumPy.

Programs here are rows of three arrays (the layout of ir.to_arrays, one row per program):

    codes[p, k] = (op, out, in1, in2)      int64, instruction k of program p
    data[p, k]  = (d0, d1, d2)             float64, the op's constant data, zeros past it
    sizes[p]    = (setup, predict, learn)  instructions in each component

Each component has a fixed number of slots (`capacities`: setup's, then predict's, then
learn's); a component's instructions fill its first slots and no-ops (zeros) pad the rest,
so padding is never executed. The distribution of a child is exactly azc.mutator.Mutator's
(reference §9): with probability mutate_prob one action drawn uniformly from the list as
given, a component drawn uniformly among those with allowed ops, alter_param as §9.3
(const-set flip or log-normal scale, uniform-set pairs re-sorted), random instructions as §9.4
with mutator.address_ranges, insert/remove/trade with the original's size limits. Only the
order of the random draws differs, so runs are statistically, not draw for draw, alike.
"""

import numpy as np

from azc.errors import ConfigError
from azc.ir import COMPONENTS, Instruction, Program
from azc.mutator import MUTATIONS, MutationSettings, address_ranges, check_settings
from azc.ops import DATA_SIZES, OPS

PAD = -2  # a slot past a component's end, in `_rearrange` sources
NEW = -1  # the slot of an inserted instruction
_DATA_KINDS = (None, "const", "vindex", "mindex", "uniform", "gaussian")
NONE, CONST, VINDEX, MINDEX, UNIFORM, GAUSSIAN = range(len(_DATA_KINDS))


def _op_tables(settings: MutationSettings) -> dict[str, np.ndarray]:
    """Per op id: first writable address and how many, readable counts, arity, data kind."""
    ranges = address_ranges(settings.memory)
    n = len(OPS)
    tables = {name: np.zeros(n, np.int64)
              for name in ("out_first", "out_count", "in1_count", "in2_count", "arity", "data")}
    for op in OPS:
        if op.out is None:
            continue
        writable = ranges[op.out][0]
        tables["out_first"][op.id] = writable.start
        tables["out_count"][op.id] = len(writable)
        for which, kind in enumerate(op.ins):
            tables[("in1_count", "in2_count")[which]][op.id] = len(ranges[kind][1])
        tables["arity"][op.id] = op.arity
        tables["data"][op.id] = _DATA_KINDS.index(op.data)
    return tables


def _f32(x: np.ndarray) -> np.ndarray:
    """Round to float32 and back, as ops.f32 (overflow becomes inf, as there)."""
    return x.astype(np.float32).astype(np.float64)


class BatchMutator:
    """Mutation actions applied to a chunk of parents at once (see the module docstring)."""

    def __init__(self, settings: MutationSettings, capacities, rng: np.random.Generator):
        check_settings(settings)
        problem = batch_problem(settings)
        if problem:
            raise ConfigError(problem[1])
        self.settings = settings
        self.rng = rng
        self.capacities = np.array(capacities, dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.capacities)[:-1]])
        self.min_sizes = np.array(settings.min_sizes, dtype=np.int64)
        self.max_sizes = np.array(settings.max_sizes, dtype=np.int64)
        self.actions = np.array([MUTATIONS.index(name) for name in settings.mutations])
        self.mutable = np.array([c for c in range(3) if settings.ops[c]], dtype=np.int64)
        widest = max(len(ops) for ops in settings.ops)
        self.allowed = np.zeros((3, widest), dtype=np.int64)
        self.allowed_count = np.array([len(ops) for ops in settings.ops], dtype=np.int64)
        for c, ops in enumerate(settings.ops):
            self.allowed[c, :len(ops)] = ops
        self.op = _op_tables(settings)

    # --- random instructions (reference §9.4) ---------------------------------------------------

    def random_instructions(self, components: np.ndarray):
        """One random instruction per entry of `components`: codes (n, 4) and data (n, 3)."""
        rng, n = self.rng, len(components)
        pick = (rng.random(n) * self.allowed_count[components]).astype(np.int64)
        op = self.allowed[components, pick]
        codes = np.zeros((n, 4), dtype=np.int64)
        codes[:, 0] = op
        codes[:, 1] = self.op["out_first"][op] + (
            rng.random(n) * self.op["out_count"][op]).astype(np.int64)
        codes[:, 2] = (rng.random(n) * self.op["in1_count"][op]).astype(np.int64)
        codes[:, 3] = (rng.random(n) * self.op["in2_count"][op]).astype(np.int64)
        return codes, self.random_data(op)

    def random_data(self, op: np.ndarray) -> np.ndarray:
        """Fresh constant data for instructions of these ops (ops.draw_data)."""
        rng, n = self.rng, len(op)
        kind = self.op["data"][op]
        unit = rng.random((n, 3))  # [0, 1)
        signed = 2.0 * unit - 1.0  # [-1, 1)
        # NOTE: positions are drawn as float32 in [0, 1): a float64 draw rounded to float32
        # may become 1.0, a position one past the end.
        position = rng.random((n, 2), dtype=np.float32).astype(np.float64)
        data = np.zeros((n, 3))

        const = np.flatnonzero(kind == CONST)  # a double on the open interval (-1, 1)
        data[const, 0] = self._open_signed(len(const))
        for k, columns in ((VINDEX, (position[:, 0], signed[:, 1])),
                           (MINDEX, (position[:, 0], position[:, 1], signed[:, 2])),
                           (UNIFORM, (signed[:, 0], signed[:, 1])),  # not sorted, as drawn
                           (GAUSSIAN, (signed[:, 0], unit[:, 1]))):
            rows = kind == k
            for j, column in enumerate(columns):
                data[rows, j] = _f32(column[rows])
        return data

    def _open_signed(self, n: int) -> np.ndarray:
        values = self.rng.uniform(-1.0, 1.0, n)
        while (bad := np.flatnonzero(values <= -1.0)).size:
            values[bad] = self.rng.uniform(-1.0, 1.0, bad.size)
        return values

    # --- mutation (reference §9.2) --------------------------------------------------------------

    def mutate(self, codes: np.ndarray, data: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """Mutate children in place: codes (B, N, 4), data (B, N, 3), sizes (B, 3), copies of
        their parents' rows.

        Returns a bool (B,) array: whether each child now differs from its parent (a mutation
        may redraw what was there), bit for bit, so a constant -0.0 differs from 0.0 as in
        ir.instruction_key.
        """
        rng, count = self.rng, len(codes)
        changed = np.zeros(count, bool)
        prob = self.settings.mutate_prob
        mutated = np.ones(count, bool) if prob >= 1.0 else rng.random(count) < prob
        rows = np.flatnonzero(mutated)
        if not len(self.mutable) or not rows.size:
            return changed
        action = self.actions[(rng.random(rows.size) * len(self.actions)).astype(np.int64)]
        component = self.mutable[(rng.random(rows.size) * len(self.mutable)).astype(np.int64)]
        before = sizes[rows].copy()

        for name in MUTATIONS:
            chosen = action == MUTATIONS.index(name)
            if name == "identity" or not chosen.any():
                continue
            writes = getattr(self, "_" + name)
            row, index, new_codes, new_data = writes(codes, data, sizes, rows[chosen],
                                                     component[chosen])
            differs = _rows_differ(codes[row, index], new_codes) | _rows_differ(
                data[row, index].view(np.int64), new_data.view(np.int64))
            changed[row[differs]] = True
            codes[row, index], data[row, index] = new_codes, new_data
        changed[rows] |= _rows_differ(before, sizes[rows])  # a no-op removed from the end
        return changed

    # Each action returns its writes: rows, instruction indices, new codes and new data; those
    # that resize a component also update `sizes`.

    def _positions(self, sizes, rows, components, extra: int = 0):
        """A uniform instruction index (0 .. size - 1 + extra) in each row's component."""
        length = sizes[rows, components] + extra
        return (self.rng.random(len(rows)) * length).astype(np.int64), length > 0

    def _alter_param(self, codes, data, sizes, rows, components):
        index, present = self._positions(sizes, rows, components)
        rows, index = rows[present], index[present] + self.starts[components[present]]
        return rows, index, *self.alter(codes[rows, index], data[rows, index])

    def _randomize_instruction(self, codes, data, sizes, rows, components):
        index, present = self._positions(sizes, rows, components)
        index = index[present] + self.starts[components[present]]
        return rows[present], index, *self.random_instructions(components[present])

    def _randomize_component_function(self, codes, data, sizes, rows, components):
        """Every instruction of the chosen component replaced by a random one."""
        length = sizes[rows, components]
        row = np.repeat(rows, length)
        component = np.repeat(components, length)
        first = np.repeat(self.starts[components] - np.cumsum(length) + length, length)
        index = first + np.arange(length.sum())
        return row, index, *self.random_instructions(component)

    def _randomize_algorithm(self, codes, data, sizes, rows, components):
        mutable = self.mutable
        return self._randomize_component_function(
            codes, data, sizes, np.repeat(rows, len(mutable)), np.tile(mutable, len(rows)))

    def _insert_instruction(self, codes, data, sizes, rows, components):
        """A random instruction at one of size + 1 places, while size < max - 1."""
        size = sizes[rows, components]
        top = self.max_sizes[components]
        room = (top == 0) | (size < top - 1)  # NOTE: the original's cap is max - 1
        rows, components, size = rows[room], components[room], size[room]
        at, _ = self._positions(sizes, rows, components, extra=1)
        slot = np.arange(self.capacities.max())[None, :]
        source = np.where(slot < at[:, None], slot, np.where(slot == at[:, None], NEW, slot - 1))
        source[slot > size[:, None]] = PAD
        sizes[rows, components] += 1
        return self._rearrange(codes, data, rows, components, source)

    def _remove_instruction(self, codes, data, sizes, rows, components):
        """One instruction deleted, while size > min."""
        size = sizes[rows, components]
        keep = size > self.min_sizes[components]
        rows, components, size = rows[keep], components[keep], size[keep]
        at, _ = self._positions(sizes, rows, components)
        slot = np.arange(self.capacities.max())[None, :]
        source = np.where(slot < at[:, None], slot, slot + 1)
        source[slot >= size[:, None] - 1] = PAD
        sizes[rows, components] -= 1
        return self._rearrange(codes, data, rows, components, source)

    def _trade_instruction(self, codes, data, sizes, rows, components):
        """Insert at one of size + 1 places, then delete one of the size + 1 (maybe the new)."""
        size = sizes[rows, components]
        at, _ = self._positions(sizes, rows, components, extra=1)
        gone, _ = self._positions(sizes, rows, components, extra=1)
        slot = np.arange(self.capacities.max())[None, :]
        longer = np.where(slot < gone[:, None], slot, slot + 1)  # slot in the grown component
        source = np.where(longer < at[:, None], longer,
                          np.where(longer == at[:, None], NEW, longer - 1))
        source[slot >= size[:, None]] = PAD
        return self._rearrange(codes, data, rows, components, source)

    def _rearrange(self, codes, data, rows, components, source):
        """Writes filling each row's component slot k from its old slot source[k] (or NEW, a
        random instruction, or PAD, a no-op); slots past the component's capacity are ignored."""
        capacity = self.capacities[components]
        slot = np.broadcast_to(np.arange(source.shape[1]), source.shape)
        inside = slot < capacity[:, None]
        row, source = np.repeat(rows, capacity), source[inside]
        start = np.repeat(self.starts[components], capacity)
        index = start + slot[inside]
        old = start + np.clip(source, 0, np.repeat(capacity, capacity) - 1)
        new_codes, new_data = codes[row, old], data[row, old]
        fresh = np.flatnonzero(source == NEW)
        new_codes[fresh], new_data[fresh] = self.random_instructions(
            np.repeat(components, capacity)[fresh])
        new_codes[source == PAD], new_data[source == PAD] = 0, 0.0
        return row, index, new_codes, new_data

    # --- parameter changes (reference §9.3) -----------------------------------------------------

    def alter(self, codes: np.ndarray, data: np.ndarray):
        """Each instruction with one address or one data field changed; no-ops stay."""
        rng, n = self.rng, len(codes)
        codes, data = codes.copy(), data.copy()
        op = codes[:, 0]
        kind, arity = self.op["data"][op], self.op["arity"][op]
        has_out = self.op["out_count"][op] > 0
        choice = rng.random(n)
        fresh = rng.random(n)  # the redrawn address

        # Set ops: half out, half data. One-input: half in1, half out. Two-input: thirds.
        sets = has_out & (kind != NONE)
        new_out = sets & (choice < 0.5)
        new_data = sets & ~(choice < 0.5)
        unary, binary = ~sets & (arity == 1), ~sets & (arity == 2)
        third = (choice * 3).astype(np.int64)
        new_in1 = (unary & (choice < 0.5)) | (binary & (third == 0))
        new_in2 = binary & (third == 1)
        new_out |= (unary & ~(choice < 0.5)) | (binary & (third == 2))

        codes[:, 1] = np.where(new_out, self.op["out_first"][op]
                               + (fresh * self.op["out_count"][op]).astype(np.int64), codes[:, 1])
        codes[:, 2] = np.where(new_in1, (fresh * self.op["in1_count"][op]).astype(np.int64),
                               codes[:, 2])
        codes[:, 3] = np.where(new_in2, (fresh * self.op["in2_count"][op]).astype(np.int64),
                               codes[:, 3])
        rows = np.flatnonzero(new_data)
        if rows.size:
            data[rows] = self.alter_data(kind[rows], data[rows])
        return codes, data

    def alter_data(self, kind: np.ndarray, data: np.ndarray) -> np.ndarray:
        """Data with one field changed (ops.alter_data), for instructions of these data kinds."""
        rng, n = self.rng, len(kind)
        data = data.copy()
        which = rng.random(n)
        redraw = rng.random(n, dtype=np.float32).astype(np.float64)  # a fresh position

        # The field each kind changes, and whether by a fresh position or by flip-or-scale.
        half = which < 0.5
        third = (which * 3).astype(np.int64)
        field = np.select([kind == VINDEX, kind == MINDEX, kind == UNIFORM, kind == GAUSSIAN],
                          [np.where(half, 0, 1), third, np.where(half, 0, 1),
                           np.where(half, 0, 1)], 0)
        position = ((kind == VINDEX) & half) | ((kind == MINDEX) & (third < 2))
        scale_only = (kind == GAUSSIAN) & ~half  # a st.dev is scaled, never flipped

        old = data[np.arange(n), field]
        new = self._flip_or_scale(old, scale_only)
        with np.errstate(over="ignore"):  # const is a double, others float32
            new = np.where(kind == CONST, new, _f32(new))
        new = np.where(position, redraw, new)
        data[np.arange(n), field] = new

        # A uniform-set pair is re-sorted so that low <= high.
        pairs = np.flatnonzero(kind == UNIFORM)
        data[pairs, :2] = np.sort(data[pairs, :2], axis=1)
        return data

    def _flip_or_scale(self, x: np.ndarray, scale_only: np.ndarray) -> np.ndarray:
        """-x with probability 0.1 (never where scale_only), else sign(x) exp(log|x| + N(0,1))."""
        flip = (self.rng.random(len(x)) < 0.1) & ~scale_only
        gauss = self.rng.standard_normal(len(x))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            exponent = np.minimum(np.log(np.abs(x)) + gauss, 700.0)
            scaled = np.copysign(np.exp(exponent), x)
        scaled = np.where((x == 0) | ~np.isfinite(x), x, scaled)
        return np.where(flip, -x, scaled)


def _rows_differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether rows of two (n, k) arrays differ (column by column: reducing short rows is slow)."""
    unequal = a != b
    differs = unequal[:, 0].copy()
    for column in range(1, unequal.shape[1]):
        differs |= unequal[:, column]
    return differs


# --- conversions --------------------------------------------------------------------------------


def batch_problem(settings: MutationSettings) -> tuple[int, str] | None:
    """(component, problem) if these settings cannot mutate on arrays, else None."""
    if "insert_instruction" not in settings.mutations:
        return None
    for c, name in enumerate(COMPONENTS):
        if settings.ops[c] and not settings.max_sizes[c]:
            return c, (f"batch evolution inserts instructions only up to a max_size: set "
                       f"[{name}] max_size, or use mode = \"exact\"")
    return None


def capacities(settings: MutationSettings, programs) -> tuple[int, int, int]:
    """Slots per component: the longest component of the programs, or the most that
    insert_instruction can grow it to (max_size - 1)."""
    slots = [max((len(p.components()[c]) for p in programs), default=0) for c in range(3)]
    if "insert_instruction" in settings.mutations:
        for c in range(3):
            if settings.ops[c]:
                slots[c] = max(slots[c], settings.max_sizes[c] - 1)
    return tuple(slots)


def programs_to_arrays(programs, capacities) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Programs as codes (P, N, 4), data (P, N, 3) and sizes (P, 3), in `capacities` slots."""
    starts = np.concatenate([[0], np.cumsum(capacities)[:-1]])
    codes = np.zeros((len(programs), int(sum(capacities)), 4), dtype=np.int64)
    data = np.zeros((len(programs), int(sum(capacities)), 3))
    sizes = np.zeros((len(programs), 3), dtype=np.int64)
    for p, program in enumerate(programs):
        for c, component in enumerate(program.components()):
            if len(component) > capacities[c]:
                raise ConfigError(f"batch evolution holds at most {capacities[c]} "
                                  f"{COMPONENTS[c]} instructions, got {len(component)}")
            sizes[p, c] = len(component)
            for k, instruction in enumerate(component, start=starts[c]):
                codes[p, k] = instruction[:4]
                data[p, k, :len(instruction.data)] = instruction.data
    return codes, data, sizes


_DATA_SIZE = tuple(DATA_SIZES[op.data] for op in OPS)


def arrays_to_program(codes: np.ndarray, data: np.ndarray, capacities, sizes) -> Program:
    """One program's rows back as a Program (data trimmed to each op's fields)."""
    return arrays_to_programs(codes[None], data[None], capacities, np.asarray(sizes)[None])[0]


def arrays_to_programs(codes: np.ndarray, data: np.ndarray, capacities,
                       sizes: np.ndarray) -> list[Program]:
    """Many programs' rows back as Programs; padding slots are never read."""
    starts = np.concatenate([[0], np.cumsum(capacities)[:-1]]).tolist()
    data_size, new = _DATA_SIZE, tuple.__new__  # NOTE: skips NamedTuple's Python-level __new__
    programs = []
    for rows, values, lengths in zip(codes.tolist(), data.tolist(), sizes.tolist(), strict=True):
        components = []
        for start, length in zip(starts, lengths, strict=True):
            components.append(tuple(
                new(Instruction, (op, out, in1, in2, tuple(fields[:data_size[op]])))
                for (op, out, in1, in2), fields in zip(rows[start:start + length],
                                                       values[start:start + length],
                                                       strict=True)))
        programs.append(Program(*components))
    return programs
