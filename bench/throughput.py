"""Evaluation throughput of the engines on one core: tier 1, tier 2 and the NumPy reference.

    python bench/throughput.py [--workload demo|paper] [--programs N] [--json]

Workloads:
  demo   the original's run_demo.sh: 10 linear tasks, F = 4, 100 train + 100 valid examples,
         random programs of 10/2/8 instructions over memory 4/3/1 from the demo's six ops.
  paper  paper scale (run_baseline.sh): F = 16, 10 binary tasks x 8,000 train + 1,000 valid,
         programs of 7/11/23 instructions over memory 5/9/2 from the baseline's op lists.

Every figure is full evaluations per CPU second (no caching); tier 2 counts its compile time.
The process pins itself to one core; figures taken while other work loads the machine are noisy
(hyperthread siblings share execution units) even in CPU time.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time

import numpy as np

from azc import engine as engines
from azc.engine_tier2 import CompiledCache
from azc.ir import Instruction, MemoryShape, Program
from azc.ops import OPS, draw_data, op_named
from azc.reference import ReferenceEvaluator
from azc.tasks import ACCURACY, Task, TaskSpec, make_tasks

DEMO_OPS = ["SCALAR_CONST_SET", "VECTOR_INNER_PRODUCT", "SCALAR_DIFF", "SCALAR_PRODUCT",
            "SCALAR_VECTOR_PRODUCT", "VECTOR_SUM"]
PAPER_OPS = (
    ["SCALAR_CONST_SET", "SCALAR_GAUSSIAN_SET", "SCALAR_UNIFORM_SET", "VECTOR_GAUSSIAN_SET",
     "VECTOR_UNIFORM_SET", "MATRIX_GAUSSIAN_SET", "MATRIX_UNIFORM_SET"],
    ["SCALAR_SUM", "MATRIX_VECTOR_PRODUCT", "VECTOR_MAX", "VECTOR_INNER_PRODUCT", "VECTOR_SUM"],
    ["SCALAR_SUM", "SCALAR_DIFF", "SCALAR_PRODUCT", "SCALAR_VECTOR_PRODUCT", "VECTOR_SUM",
     "VECTOR_HEAVYSIDE", "VECTOR_PRODUCT", "VECTOR_OUTER_PRODUCT", "MATRIX_SUM"])


def workload(name: str):
    """(tasks, memory, component sizes, op ids per component)."""
    if name == "demo":
        tasks = make_tasks(TaskSpec("linear", 4, 100, 100, num_tasks=10))
        ids = [op_named(n).id for n in DEMO_OPS]
        return tasks, MemoryShape(4, 3, 1), (10, 2, 8), (ids, ids, ids)
    data = np.random.RandomState(0)
    tasks = []
    for t in range(10):  # stand-ins for projected CIFAR-10 pairs: same shapes, random data
        features = data.normal(size=(9000, 16))
        labels = (features @ data.normal(size=16) > 0).astype(np.float64)
        tasks.append(Task(f"binary-{t}", features[:8000], labels[:8000], features[8000:],
                          labels[8000:], ACCURACY))
    ops = tuple([op_named(n).id for n in names] for names in PAPER_OPS)
    return tasks, MemoryShape(5, 9, 2), (7, 11, 23), ops


def random_programs(count, memory, sizes, ops, seed=0):
    """Random programs with the original's address ranges (s0 and v0 are never written)."""
    rand = random.Random(seed)
    lowest = {"s": 1, "v": 1, "m": 0}

    def instruction(component):
        op = OPS[rand.choice(ops[component])]
        addresses = [rand.randrange(lowest[op.out], memory.size(op.out))]
        addresses += [rand.randrange(memory.size(kind)) for kind in op.ins]
        return Instruction(op.id, *(addresses + [0] * (3 - len(addresses))),
                           data=draw_data(op, rand))

    return [Program(*(tuple(instruction(c) for _ in range(size)) for c, size in
                      enumerate(sizes))) for _ in range(count)]


def clock() -> float:
    """Seconds of CPU this process used: on a shared machine, time spent descheduled while
    other work runs would otherwise count (on an idle machine the two clocks agree)."""
    return time.process_time()


def rate(evaluate, programs, repeats=3):
    """Best evaluations per CPU second over a few repeats."""
    best = 0.0
    for _ in range(repeats):
        start = clock()
        evaluate(programs)
        best = max(best, len(programs) / max(clock() - start, 1e-9))
    return best


def measure(name: str, count: int) -> dict:
    """Every figure of one workload, as a dict (the --json output)."""
    tasks, memory, sizes, ops = workload(name)
    all_ops = sorted({o for component in ops for o in component})
    programs = random_programs(count, memory, sizes, ops)
    result = {"workload": name, "programs": count}

    interp = engines.make_evaluator(tasks, memory, engine="interp", ops=all_ops)
    start = clock()
    interp.fitness_batch(programs[:1])
    result["tier1_compile_s"] = clock() - start
    packed = interp.pack(programs, memory)
    result["tier1_per_second"] = rate(lambda _: interp.task_fitness_packed(packed, memory),
                                      programs)
    result["tier1_from_programs_per_second"] = rate(interp.fitness_batch, programs)

    # Tier 2 from a cold cache: compile (batched modules) + run, and single-program latency.
    # The same programs as tier 1, from a cold cache (compile + run), then cached.
    jit = engines.make_evaluator(tasks, memory, engine="jit", ops=all_ops)
    engines._COMPILED = CompiledCache(size=max(count, 512))
    start = clock()
    jit.fitness_batch(programs)
    result["tier2_per_second"] = count / (clock() - start)
    result["tier2_cached_per_second"] = rate(lambda _: jit.task_fitness_packed(
        jit.pack(programs, memory), memory), programs)
    latencies = []
    for program in random_programs(min(count, 50), memory, sizes, ops, seed=2):
        engines._COMPILED = CompiledCache()
        packed_one = jit.pack([program], memory)
        start = clock()
        engines._COMPILED.pointers(jit._binding(memory)[0], packed_one)
        latencies.append((clock() - start) * 1e3)
    result["compile_ms_median"] = statistics.median(latencies)
    result["compile_ms_p90"] = statistics.quantiles(latencies, n=10)[-1]

    # The reference: as many programs as fit in a few seconds (at least one).
    reference = ReferenceEvaluator(tasks, memory)
    start, done = clock(), 0
    while done < len(programs) and (done == 0 or clock() - start < 5.0):
        reference.evaluate(programs[done])
        done += 1
    result["reference_per_second"] = done / (clock() - start)
    result["reference_programs"] = done
    result["tier1_vs_reference"] = result["tier1_per_second"] / result["reference_per_second"]
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", choices=("demo", "paper"), default="demo")
    parser.add_argument("--programs", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--core", type=int, default=0, help="CPU to pin to")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {args.core})
    count = args.programs or (2000 if args.workload == "demo" else 20)
    result = measure(args.workload, count)
    result["load_average"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(result))
        return
    print(f"workload {result['workload']}, {count} random programs, one core, CPU-time rates "
          f"(load average {result['load_average']:.2f}: above ~1 the figures are noisy)")
    rows = [("tier 1 (packed arrays)", "tier1_per_second"),
            ("tier 1 (from Program objects)", "tier1_from_programs_per_second"),
            ("tier 2 (compile included)", "tier2_per_second"),
            ("tier 2 (cached code)", "tier2_cached_per_second"),
            ("reference (NumPy)", "reference_per_second")]
    for label, key in rows:
        print(f"  {label:32s} {result[key]:14,.1f} evaluations/s")
    print(f"  tier-2 compile latency: median {result['compile_ms_median']:.1f} ms, "
          f"p90 {result['compile_ms_p90']:.1f} ms; tier-1 compile "
          f"{result['tier1_compile_s']:.2f} s")
    print(f"  tier 1 / reference: {result['tier1_vs_reference']:,.0f}x")


if __name__ == "__main__":
    sys.exit(main())
