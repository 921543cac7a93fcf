"""Resident memory while tier 2 compiles (and frees) many random programs in one process.

    python bench/compile_memory.py [--programs 100000] [--every 10000] [--ops all|demo]
                                   [--no-evaluate] [--tracemalloc] [--json]

Random demo-size programs (10/2/8 instructions over memory 4/3/1, F = 4) go through the real
tier-2 path: pack, prune, compile 64 programs per LLVM module into the LLJIT, run the batch on
the demo's ten linear tasks (unless --no-evaluate), and let the cache of compiled code
(CACHE_SIZE programs) evict and free the oldest. Every program is new, so every one is compiled.

Prints resident memory (RSS) growth since the warm-up at each checkpoint, so a slow creep shows
as a rising curve; with --tracemalloc also the Python allocations that grew most. The process
pins itself to one core.
"""

import argparse
import json
import os
import sys
import time
import tracemalloc

from throughput import random_programs, workload  # bench/throughput.py, next to this script

from azc import engine as engines
from azc.engine_tier2 import CACHE_SIZE, CompiledCache
from azc.ir import MemoryShape
from azc.ops import OPS

BATCH = 250


def rss_mb() -> float:
    """This process's resident memory in MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run(programs: int, every: int, ops: str, evaluate: bool, trace: bool):
    """Yield one checkpoint dict per `every` programs compiled after a warm-up."""
    tasks, memory, sizes, demo_ops = workload("demo")
    if ops == "all":
        ids = [op.id for op in OPS if op.id]
        demo_ops = (ids, ids, ids)
        memory = MemoryShape(4, 3, 1)
    all_ops = sorted({o for component in demo_ops for o in component})
    jit = engines.make_evaluator(tasks, memory, engine="jit", ops=all_ops)
    engines._COMPILED = cache = CompiledCache(size=CACHE_SIZE)
    kernel = jit._binding(memory)[0]
    seeds = iter(range(1, 10**9))

    def step():
        batch = random_programs(BATCH, memory, sizes, demo_ops, seed=next(seeds))
        if evaluate:
            jit.fitness_batch(batch)
        else:
            cache.pointers(kernel, jit.pack(batch, memory))

    # Warm-up: fill the cache and retire a few LLJITs, so the baseline holds steady state.
    for _ in range(3 * CACHE_SIZE // BATCH + 1):
        step()
    cache.compile_seconds, cache.compiled = 0.0, 0
    if trace:
        tracemalloc.start(12)
        snapshot = tracemalloc.take_snapshot()
    start_rss, start = rss_mb(), time.perf_counter()
    done = 0
    while done < programs:
        step()
        done += BATCH
        if done % every == 0 or done >= programs:
            point = {"programs": done, "rss_mb": round(rss_mb(), 1),
                     "growth_mb": round(rss_mb() - start_rss, 1),
                     "seconds": round(time.perf_counter() - start, 1),
                     "compile_ms": round(1e3 * cache.compile_seconds
                                         / max(1, cache.compiled), 2),
                     "cached": len(cache.entries), "load_average": os.getloadavg()[0]}
            if trace:
                now = tracemalloc.take_snapshot()
                point["python_top"] = [str(s) for s in now.compare_to(snapshot, "traceback")[:3]]
                point["python_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 2)
            yield point


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--programs", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=10_000)
    parser.add_argument("--ops", choices=("all", "demo"), default="all")
    parser.add_argument("--no-evaluate", dest="evaluate", action="store_false")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--json", action="store_true", help="one JSON object per checkpoint")
    parser.add_argument("--core", type=int, default=0, help="CPU to pin to")
    args = parser.parse_args(argv)
    if args.every % BATCH:
        parser.error(f"--every must be a multiple of {BATCH}")
    os.sched_setaffinity(0, {args.core})
    if not args.json:
        print(f"tier-2 compiles of random demo-size programs ({args.ops} ops, "
              f"{'compiled and evaluated' if args.evaluate else 'compiled only'}), one core")
    for point in run(args.programs, args.every, args.ops, args.evaluate, args.tracemalloc):
        if args.json:
            print(json.dumps(point), flush=True)
            continue
        print(f"  {point['programs']:>7,} programs  RSS {point['rss_mb']:7.1f} MB  "
              f"growth {point['growth_mb']:+6.1f} MB  {point['seconds']:7.1f} s  "
              f"compile {point['compile_ms']:.2f} ms/program  load {point['load_average']:.2f}",
              flush=True)
        for line in point.get("python_top", []):
            print(f"      {line}")


if __name__ == "__main__":
    sys.exit(main())
