"""Functional equivalence checking (reference §12): a program's fingerprint and the LRU cache.

Run the program briefly with a fixed seed, recording its errors on 10 training and 10
validation examples per task, and hash those errors with the task index and the train budget:
programs that differ in text but compute alike share a fingerprint. It is a heuristic (equal
errors early need not mean equal fitness later), so, as in the original, a cached fitness is
forgotten after `forget_every` hits and is then evaluated afresh.

This module holds the definitions: `fingerprint` from recorded errors (the reference
executor's, `reference_errors`, or a native engine's, `batch_fingerprints`) and `LRUCache`, the
original's cache. Evolution runs the same scheme faster: azc.evolve.Scorer asks its exact cache
(by structural hash) first, then azc.evolve.FunctionalCache, whose keys hash the engine's
recorded errors in one pass (azc.pack_batch.hash_rows) and whose cache is azc.lru.LRUTable,
tested against LRUCache. Errors are hashed bit for bit after mapping -0.0 to 0.0, as the
original's std::hash<double> does; no rounding.
"""

from collections import OrderedDict
from collections.abc import Iterable
from hashlib import blake2b

import numpy as np

from azc.ir import Program
from azc.tasks import Task

FEC_SEED = 235732282  # the original reseeds its FEC random engine with this before every run
NUM_TRAIN = NUM_VALID = 10
CACHE_SIZE = 100_000
FORGET_EVERY = 100

_HEADER = b"azc-fec-v1"


def _errors_bytes(errors) -> bytes:
    values = np.asarray(errors, dtype=np.float64).reshape(-1) + 0.0  # -0.0 becomes 0.0
    return len(values).to_bytes(4, "little") + values.astype("<f8").tobytes()


def fingerprint(train_errors, valid_errors, task_index: int, train_budget: int) -> int:
    """The 64-bit functional hash of one (program, task): recorded errors, task, budget.

    Pass exactly the errors recorded, truncated at an early stop as the executor leaves them.
    """
    h = blake2b(_HEADER, digest_size=8)
    h.update(_errors_bytes(train_errors))
    h.update(_errors_bytes(valid_errors))
    h.update(int(task_index).to_bytes(8, "little", signed=True))
    h.update(int(train_budget).to_bytes(8, "little", signed=True))
    return int.from_bytes(h.digest(), "little")


def combined_fingerprint(fingerprints: Iterable[int]) -> int:
    """One key for a program over all its tasks, from the per-task fingerprints in order."""
    h = blake2b(_HEADER + b"-tasks", digest_size=8)
    for value in fingerprints:
        h.update(int(value).to_bytes(8, "little"))
    return int.from_bytes(h.digest(), "little")


def reference_errors(program: Program, task: Task, task_index: int, *, memory=None,
                     num_train: int = NUM_TRAIN, num_valid: int = NUM_VALID,
                     max_abs_error: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """The (train, valid) errors of the fingerprinting run, from the NumPy reference executor."""
    from azc.reference import run_task  # NOTE: late import: native engines feed this module too

    run = run_task(program, task, memory=memory, num_train=num_train, num_valid=num_valid,
                   max_abs_error=max_abs_error, seed=FEC_SEED, task_index=task_index,
                   record=True)
    return np.array(run.train_errors, dtype=np.float64), np.array(run.valid_errors,
                                                                  dtype=np.float64)


def reference_fingerprint(program: Program, tasks: list[Task], train_budget: int,
                          **options) -> int:
    """The program's functional hash over all tasks, using the reference executor."""
    return combined_fingerprint(
        fingerprint(*reference_errors(program, task, index, **options), index, train_budget)
        for index, task in enumerate(tasks))


def batch_fingerprints(recorded, train_budgets) -> list[int]:
    """One functional hash per program from a batch of recorded errors.

    `recorded` has train_errors/valid_errors arrays (programs, tasks, capacity), valid past the
    train_counts/valid_counts arrays (programs, tasks), as the native engine's Fingerprints;
    `train_budgets` is one budget for all programs or one per program.
    """
    programs, tasks = recorded.train_counts.shape
    budgets = np.broadcast_to(np.asarray(train_budgets, dtype=np.int64), (programs,))
    keys = []
    for p in range(programs):
        keys.append(combined_fingerprint(
            fingerprint(recorded.train_errors[p, t, :recorded.train_counts[p, t]],
                        recorded.valid_errors[p, t, :recorded.valid_counts[p, t]],
                        t, budgets[p])
            for t in range(tasks)))
    return keys


class LRUCache:
    """The original's FEC cache: least recently used eviction, forgetting after many hits.

    A hit moves the entry to the front and counts it (an entry starts at 1 on insert); when the
    count reaches `forget_every` (0: never) the entry is deleted right after being returned.
    NOTE: evolution's FEC uses azc.lru.LRUTable, the same cache natively; this one is its
    model in the tests.
    """

    def __init__(self, capacity: int = CACHE_SIZE, forget_every: int = FORGET_EVERY):
        if capacity < 1:
            raise ValueError("an LRU cache needs room for at least one entry")
        self.capacity = capacity
        self.forget_every = forget_every
        self._entries: OrderedDict = OrderedDict()  # key -> [value, hits]; most recent last

    def get(self, key):
        """The value stored for `key`, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        entry[1] += 1
        if self.forget_every and entry[1] >= self.forget_every:
            del self._entries[key]
        else:
            self._entries.move_to_end(key)
        return entry[0]

    def put(self, key, value):
        """Store `value` as the most recent entry, evicting the least recent one if full."""
        self._entries[key] = [value, 1]
        self._entries.move_to_end(key)
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def keys(self) -> list:
        """Keys from least to most recently used."""
        return list(self._entries)

    def __contains__(self, key):
        return key in self._entries

    def __len__(self):
        return len(self._entries)
