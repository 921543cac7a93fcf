"""Tier 2: each program compiled to its own native code, for evaluations big enough to repay it.

A program becomes one straight-line function per component and lane width, every address a
constant, from the same op templates as tier 1. The shape's tier-1 module supplies the driver
(training, early stops, validation, fitness), which calls these functions instead of its
interpreter, so a batch of compiled programs is still evaluated in one native call.

Compiled programs are cached by a key of their packed records (the program's exact content
after no-op removal); each cache entry owns an LLJIT resource tracker, so evicted code is freed
and compiling any number of programs keeps memory flat.
"""

import ctypes
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


def module_text(shape: Shape, programs: list[tuple[np.ndarray, np.ndarray]]) -> str:
    """A module of private functions, one per program, lane width and component, and one
    exported array @functions of their addresses: per program, per group, per component.

    NOTE: one exported symbol per module, not one per function: the JIT keeps a dead library's
    symbol table at its largest size (~50 bytes a symbol), so per-function exports grew the
    process ~0.5 KB per compiled program.
    """
    triple, layout = host_triple_and_layout()
    parts = [f'target triple = "{triple}"', f'target datalayout = "{layout}"']
    widths = sorted({len(group.tasks) for group in shape.groups})
    declared = set()
    for lanes in widths:
        for line in declarations(Emitter(lanes, shape.F)).splitlines():
            if line not in declared:
                declared.add(line)
                parts.append(line)
    for p, (records, offsets) in enumerate(programs):
        for lanes in widths:
            for c in range(3):
                e = Emitter(lanes, shape.F)
                _component(e, records[offsets[c]:offsets[c + 1]])
                e("ret void")
                parts.append(e.function(
                    f"define private void @p{p}_{lanes}_{c}(ptr noalias %mem, ptr noalias %rng, "
                    "ptr noalias %scratch)"))
    table = [f"ptr @p{p}_{len(g.tasks)}_{c}" for p in range(len(programs))
             for g in shape.groups for c in range(3)]
    parts.append(f"@functions = constant [{len(table)} x ptr] [{', '.join(table)}]")
    return "\n".join(parts)


def program_key(records: np.ndarray, shape: Shape) -> str:
    """A stable key of a packed program for one shape: the hash of its exact records."""
    digest = hashlib.blake2b(records.tobytes(), digest_size=16)
    digest.update(repr((shape.F, shape.memory, sorted({len(g.tasks) for g in shape.groups})))
                  .encode())
    return digest.hexdigest()


class CompileFailure(RuntimeError):
    """Programs of a batch that tier 2 could not compile; the rest of the batch was compiled."""

    def __init__(self, programs: list[int], message: str):
        super().__init__(message)
        self.programs = programs  # their positions in the batch
        self.message = message  # LLVM's (or codegen's) message for the first of them


class CompiledCache:
    """Per-program native code, least recently used first out.

    A program that does not compile is remembered (up to FAILED_SIZE of them) and not tried
    again; the others of its module are compiled one by one, so one bad program costs only
    its own code.
    """

    FAILED_SIZE = 1024

    def __init__(self, size: int = CACHE_SIZE, speed: int | str = "loops", codegen: int = 2):
        self.size, self.speed, self.codegen = size, speed, codegen
        self.entries: OrderedDict[str, tuple] = OrderedDict()  # key -> (library, pointers)
        self.failed: OrderedDict[str, str] = OrderedDict()  # key -> why it did not compile
        self.compiled = 0  # programs compiled
        self.compile_seconds = 0.0  # their compile time

    def pointers(self, kernel, packed, batch: int = 64) -> np.ndarray:
        """(programs, groups * 3) function addresses for the packed programs, compiling misses.

        Programs are compiled without their dead code (the kernel's pruner), so programs that
        differ only in dead code share their code. Misses are compiled `batch` programs per
        module: one LLVM module per program costs more in fixed overhead than the code
        generation itself. Raises CompileFailure naming the programs that did not compile.
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
            elif key not in queued and key not in self.failed:
                queued.add(key)
                missing.append((key, records, offsets))
        for start in range(0, len(missing), batch):
            self._compile_or_isolate(shape, missing[start:start + batch])
        while len(self.entries) > max(self.size, len(set(keys))):
            self.entries.popitem(last=False)
        failed = [p for p, key in enumerate(keys) if key in self.failed]
        if failed:
            raise CompileFailure(failed, self.failed[keys[failed[0]]])
        table = np.empty((len(keys), 3 * len(shape.groups)), dtype=np.int64)
        for p, key in enumerate(keys):
            table[p] = self.entries[key][1]
        return table

    def _compile_or_isolate(self, shape: Shape, programs):
        """Compile programs in one module; if that fails, each alone, remembering failures."""
        try:
            self._compile(shape, programs)
        except Exception as error:  # noqa: BLE001 - LLVM reports any fault as an exception
            if len(programs) > 1:
                for program in programs:
                    self._compile_or_isolate(shape, [program])
                return
            self.failed[programs[0][0]] = f"{type(error).__name__}: {error}"
            while len(self.failed) > self.FAILED_SIZE:
                self.failed.popitem(last=False)

    def _compile(self, shape: Shape, programs):
        start = time.perf_counter()
        text = module_text(shape, [(records, offsets) for _, records, offsets in programs])
        library = compile_ir(text, ["functions"], speed=self.speed, codegen=self.codegen)
        width = 3 * len(shape.groups)
        table = np.ctypeslib.as_array((ctypes.c_int64 * (width * len(programs)))
                                      .from_address(library["functions"])).reshape(-1, width)
        seconds = time.perf_counter() - start
        self.compiled += len(programs)
        self.compile_seconds += seconds
        log.debug("compiled %d program(s) in %.1f ms", len(programs), seconds * 1e3)
        for (key, _, _), addresses in zip(programs, table.tolist(), strict=True):
            self.entries[key] = (library, addresses)
