"""Optimizer speed: microseconds per demo-size program for optimize + structural hash.

Programs are random as the original's RANDOM_ALGORITHM makes them for the demo experiment:
10 setup, 2 predict and 8 learn instructions over the demo's six ops, memory 4/3/1, scalar
outputs never s0, vector outputs never v0. Each timing is the best of three rounds, each over
programs never seen before (the optimizer caches per-instruction facts, and a round over the
same programs again would find every constant's instruction cached).

    optimize_and_hash_us   the fast path (azc.passes_fused), one program at a time: the figure
    ..._children_us        the same on children as evolution makes them (the mutator applied to
                           a population of 100 that each child joins), which share most
                           instructions with their parents: the optimizer's real workload
    pipeline_and_hash_us   the pass manager running the readable passes of azc.passes, + hash
    batch_..._us           azc.passes_batch.structural_hashes (the same canonical forms, hashed)
                           on arrays of 1,000 programs at a time, as batch evolution holds them;
                           converting the programs to arrays is not timed
    pass_*_us              each pass alone on the unoptimized programs

NOTE: on a loaded 2-core machine these CPU times swing by up to 2x between runs (another
process on the sibling hardware thread slows this one); for a comparison that load does not
move, count instructions: valgrind --tool=callgrind python -c "..." over a fixed program list.

    python bench/optimize.py [--programs 20000] [--json]
"""

import argparse
import json
import os
import random
import time

from azc.hashing import digest, encode, optimize_and_hash
from azc.ir import Instruction, MemoryShape, Program
from azc.mutate_batch import programs_to_arrays
from azc.mutator import MutationSettings, Mutator
from azc.ops import S, V, op_named
from azc.passes import PIPELINE
from azc.passes_batch import program_hashes, structural_hashes

BATCH = 1000

DEMO_OPS = [op_named(name) for name in ("SCALAR_CONST_SET", "VECTOR_INNER_PRODUCT",
                                        "SCALAR_DIFF", "SCALAR_PRODUCT",
                                        "SCALAR_VECTOR_PRODUCT", "VECTOR_SUM")]
SIZES = (10, 2, 8)
MEMORY = MemoryShape(4, 3, 1)


def random_instruction(rng: random.Random) -> Instruction:
    op = rng.choice(DEMO_OPS)
    lowest = {S: 1, V: 1}.get(op.out, 0)  # the original never writes s0 or v0
    out = rng.randrange(lowest, MEMORY.size(op.out))
    ins = [rng.randrange(MEMORY.size(kind)) for kind in op.ins] + [0, 0]
    data = (rng.uniform(-1, 1),) if op.data == "const" else ()
    return Instruction(op.id, out, ins[0], ins[1], data)


def random_programs(n: int, seed: int = 0) -> list[Program]:
    rng = random.Random(seed)
    return [Program(*(tuple(random_instruction(rng) for _ in range(size)) for size in SIZES))
            for _ in range(n)]


def children(n: int, seed: int) -> list[Program]:
    """`n` children, each of a random member of a population it then replaces."""
    rng = random.Random(seed)
    population = random_programs(100, seed + 1000)
    ops = tuple(tuple(op.id for op in DEMO_OPS) for _ in range(3))
    mutator = Mutator(MutationSettings(MEMORY, ops), rng)
    made = []
    for _ in range(n):
        slot = rng.randrange(len(population))
        population[slot] = mutator.mutate(population[slot])
        made.append(population[slot])
    return made


def per_program(function, rounds) -> float:
    """Best of the rounds' CPU times (steadier on a shared machine), in us per program."""
    best = float("inf")
    for programs in rounds:
        start = time.process_time()
        for program in programs:
            function(program)
        best = min(best, time.process_time() - start)
    return best / len(rounds[0]) * 1e6


def per_program_in_batches(rounds) -> float:
    """As per_program, for structural_hashes on batches of BATCH programs as arrays."""
    best = float("inf")
    for programs in rounds:
        capacities = tuple(max(len(p.components()[c]) for p in programs) for c in range(3))
        batches = [programs_to_arrays(programs[i:i + BATCH], capacities)
                   for i in range(0, len(programs), BATCH)]
        start = time.process_time()
        for codes, data, sizes in batches:
            structural_hashes(codes, data, sizes, capacities)
        best = min(best, time.process_time() - start)
    return best / len(rounds[0]) * 1e6


def pipeline_and_hash(program: Program):
    canonical = PIPELINE.run(program)
    return canonical, digest(canonical)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=20000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    rounds = [random_programs(args.programs, seed) for seed in range(3)]
    programs = rounds[0]
    canonical = [optimize_and_hash(p)[0] for p in programs]
    assert all(encode(PIPELINE.run(p)) == encode(c)
               for p, c in zip(programs[:2000], canonical[:2000], strict=True))
    capacities = tuple(max(len(p.components()[c]) for p in programs) for c in range(3))
    assert (structural_hashes(*programs_to_arrays(programs[:BATCH], capacities), capacities)
            == program_hashes(programs[:BATCH])).all()
    # Most random programs never reach s1 and optimize to nothing; evolved ones mostly do.
    alive = [[p for p in r if len(optimize_and_hash(p)[0])] for r in rounds]
    made = [children(args.programs, seed) for seed in range(3)]
    figures = {
        "programs": args.programs,
        "alive_programs": len(alive[0]),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "optimize_and_hash_us": per_program(optimize_and_hash, rounds),
        "optimize_and_hash_alive_us": per_program(optimize_and_hash, alive),
        "optimize_and_hash_children_us": per_program(optimize_and_hash, made),
        "batch_optimize_and_hash_us": per_program_in_batches(rounds),
        "batch_optimize_and_hash_children_us": per_program_in_batches(made),
        "pipeline_and_hash_us": per_program(pipeline_and_hash, rounds),
        "pipeline_us": per_program(PIPELINE.run, rounds),
        "hash_of_optimized_us": per_program(digest, [canonical] * 3),
        "instructions_before": sum(map(len, programs)) / len(programs),
        "instructions_after": sum(map(len, canonical)) / len(canonical),
    }
    for step in PIPELINE.passes:
        figures[f"pass_{step.name}_us"] = per_program(step.run, rounds)

    if args.json:
        print(json.dumps(figures))
        return
    for name, value in figures.items():
        shown = f"{value:10.2f}" if isinstance(value, float) else f"{value:10d}"
        print(f"{name:34s} {shown}")


if __name__ == "__main__":
    main()
