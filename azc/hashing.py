"""Structural hashing: a stable 64-bit name for a program's canonical form.

Two programs get the same hash exactly when their canonical forms (azc.passes.optimize, computed
by its fast path azc.passes_fused.canonicalize) are equal, up to 64-bit collisions: programs
differing in address names, commutative operand order, dead code, foldable constants or the
order of independent instructions (but for ties, see azc.passes_order) hash alike. The hash is
blake2b over a fixed byte encoding, so it is the same in every process, on every machine and in
every run (Python's `hash` is salted per process):

    encoding = for each component: its length (u32), then per instruction
               op, out, in1, in2 (u16 each) and its data fields (float64, little-endian bits)

Data are hashed bit for bit: 0.0 and -0.0 differ, as they can in what a program computes.
"""

import struct
from hashlib import blake2b

from azc.ir import Instruction, Program
from azc.passes_fused import canonicalize

_HEADER = b"azc-program-v1"
_CODES = struct.Struct("<4H")
_COUNT = struct.Struct("<I")
_DATA = tuple(struct.Struct(f"<{n}d") for n in range(4))
_COUNTS = tuple(_COUNT.pack(n) for n in range(256))

# Encodings of data-free instructions seen recently: evolved programs share most instructions.
# NOTE: instructions with data are not cached: equal tuples may differ in bits (0.0 == -0.0).
_encoded: dict[Instruction, bytes] = {}
_CACHE_LIMIT = 1 << 16


def encode_instruction(instruction: Instruction) -> bytes:
    """The canonical bytes of one instruction."""
    op, out, in1, in2, data = instruction
    if data:
        return _CODES.pack(op, out, in1, in2) + _DATA[len(data)].pack(*data)
    code = _encoded.get(instruction)
    if code is None:
        code = _CODES.pack(op, out, in1, in2)
        if len(_encoded) >= _CACHE_LIMIT:
            _encoded.clear()
        _encoded[instruction] = code
    return code


def encode(program: Program) -> bytes:
    """The canonical byte encoding of a program as it is (not optimized first)."""
    parts = [_HEADER]
    known = _encoded.get
    for component in (program.setup, program.predict, program.learn):
        parts.append(_COUNTS[len(component)] if len(component) < 256
                     else _COUNT.pack(len(component)))
        for instruction in component:
            parts.append(known(instruction) or encode_instruction(instruction)
                         if not instruction[4] else encode_instruction(instruction))
    return b"".join(parts)


def digest(program: Program) -> int:
    """The 64-bit hash of a program as it is; call on programs already optimized."""
    return int.from_bytes(blake2b(encode(program), digest_size=8).digest(), "little")


def structural_hash(program: Program) -> int:
    """The 64-bit hash of the program's canonical form: equal for equivalent rewrites."""
    return digest(canonicalize(program))


def optimize_and_hash(program: Program) -> tuple[Program, int]:
    """The canonical form (azc.passes.optimize, by its fast path) and its hash."""
    canonical = canonicalize(program)
    return canonical, digest(canonical)
