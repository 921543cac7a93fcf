"""Tier 2: each program compiled to its own native code, for evaluations big enough to repay it.

A program becomes one straight-line function per component and lane width, every address a
constant, from the same op templates as tier 1. The shape's tier-1 module supplies the driver
(training, early stops, validation, fitness), which calls these functions instead of its
interpreter, so a batch of compiled programs is still evaluated in one native call.

Compiled programs are cached by a key of their packed records (the program's exact content
after no-op removal); each cache entry owns an LLJIT resource tracker, so evicted code is freed
and compiling any number of programs keeps memory flat.
"""

import hashlib
import logging
import time
from collections import OrderedDict

import numpy as np

from azc.codegen import Emitter, declarations, double, lower, lower_set
from azc.engine_tier1 import Shape
from azc.jit import compile_ir, host_triple_and_layout
from azc.ops import LOWERING

log = logging.getLogger("azc")
CACHE_SIZE = 512


def _component(e: Emitter, records: np.ndarray):
    """Straight-line code for one component's records (see engine.pack)."""
    for op, out, in1, in2, index0, index1, value0, value1 in records[:, :8].tolist():
        pointers = [e.lane("%mem", x) for x in (out, in1, in2)]
        if op in LOWERING:
            lower(e, op, *pointers, "%scratch")
        else:
            values = [double(np.int64(v).view(np.float64)) for v in (value0, value1)]
            lower_set(e, op, pointers[0], values, (index0, index1), "%rng")


def module_text(shape: Shape, programs: list[tuple[str, np.ndarray, np.ndarray]]) -> str:
    """A module defining @<name>_g<lanes>_<component> for each (name, records, offsets)."""
    triple, layout = host_triple_and_layout()
    parts = [f'target triple = "{triple}"', f'target datalayout = "{layout}"']
    widths = sorted({len(group.tasks) for group in shape.groups})
    declared = set()
    for lanes in widths:
        for line in declarations(Emitter(lanes, shape.F)).splitlines():
            if line not in declared:
                declared.add(line)
                parts.append(line)
    for name, records, offsets in programs:
        for lanes in widths:
            for c in range(3):
                e = Emitter(lanes, shape.F)
                _component(e, records[offsets[c]:offsets[c + 1]])
                e("ret void")
                parts.append(e.function(
                    f"define void @{name}_{lanes}_{c}(ptr noalias %mem, ptr noalias %rng, "
                    "ptr noalias %scratch)"))
    return "\n".join(parts)


def program_key(records: np.ndarray, shape: Shape) -> str:
    """A stable key of a packed program for one shape: the hash of its exact records."""
    digest = hashlib.blake2b(records.tobytes(), digest_size=16)
    digest.update(repr((shape.F, shape.memory, sorted({len(g.tasks) for g in shape.groups})))
                  .encode())
    return digest.hexdigest()


class CompiledCache:
    """Per-program native code, least recently used first out."""

    def __init__(self, size: int = CACHE_SIZE, speed: int | str = "loops", codegen: int = 2):
        self.size, self.speed, self.codegen = size, speed, codegen
        self.entries: OrderedDict[str, tuple] = OrderedDict()  # key -> (library, pointers)
        self.compile_seconds: list[float] = []
        self.failed_keys: list[str] = []  # the programs of a compilation that raised

    def pointers(self, kernel, packed, batch: int = 64) -> np.ndarray:
        """(programs, groups * 3) function addresses for the packed programs, compiling misses.

        Programs are compiled without their dead code (the kernel's pruner), so programs that
        differ only in dead code share their code. Misses are compiled `batch` programs per
        module: one LLVM module per program costs more in fixed overhead than the code
        generation itself.
        """
        shape = kernel.shape
        keys, missing, queued = [], [], set()
        for p in range(len(packed)):
            records, offsets = kernel.prune(packed.records[packed.offsets[p, 0]:
                                                           packed.offsets[p, 3]],
                                            packed.offsets[p])
            key = program_key(np.concatenate([records.reshape(-1), offsets]), shape)
            keys.append(key)
            if key in self.entries:
                self.entries.move_to_end(key)
            elif key not in queued:
                queued.add(key)
                missing.append((key, records, offsets))
        for start in range(0, len(missing), batch):
            self._compile(shape, missing[start:start + batch])
        table = np.empty((len(keys), 3 * len(shape.groups)), dtype=np.int64)
        for p, key in enumerate(keys):
            table[p] = self.entries[key][1]
        while len(self.entries) > max(self.size, len(set(keys))):
            self.entries.popitem(last=False)
        return table

    def _compile(self, shape: Shape, programs):
        named = [(f"p{key}", records, offsets) for key, records, offsets in programs]
        text = module_text(shape, named)
        exports = [f"{name}_{len(g.tasks)}_{c}" for name, _, _ in named for g in shape.groups
                   for c in range(3)]
        start = time.perf_counter()
        self.failed_keys = [key for key, _, _ in programs]
        library = compile_ir(text, sorted(set(exports)), speed=self.speed,
                             codegen=self.codegen)
        self.failed_keys = []
        seconds = time.perf_counter() - start
        self.compile_seconds.append(seconds / len(programs))
        log.debug("compiled %d program(s) in %.1f ms", len(programs), seconds * 1e3)
        for name, _, _ in named:
            addresses = [library[f"{name}_{len(g.tasks)}_{c}"] for g in shape.groups
                         for c in range(3)]
            self.entries[name[1:]] = (library, addresses)
