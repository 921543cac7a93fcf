"""Functional equivalence checking: the LRU reference values (reference §6.7) and fingerprints."""

from types import SimpleNamespace

import numpy as np
import pytest

from azc.fec import (
    FORGET_EVERY,
    LRUCache,
    batch_fingerprints,
    combined_fingerprint,
    fingerprint,
    reference_errors,
    reference_fingerprint,
)
from azc.generator import linear_program
from azc.hashing import structural_hash
from azc.parse import parse
from azc.tasks import RMS, Task


def test_lru_evicts_the_least_recently_inserted():
    cache = LRUCache(5)
    for key in (5, 2, 4, 1, 3, 6, 7):
        cache.put(key, float(key))
    assert 5 not in cache and 2 not in cache
    assert cache.keys() == [4, 1, 3, 6, 7]


def test_lru_lookups_make_entries_recent():
    cache = LRUCache(5)
    for key in (5, 2, 4, 1, 3):
        cache.put(key, float(key))
    assert cache.get(5) == 5.0 and cache.get(4) == 4.0
    cache.put(6, 6.0)
    cache.put(7, 7.0)
    assert 1 not in cache and 2 not in cache
    assert sorted(cache.keys()) == [3, 4, 5, 6, 7]


def test_lru_forgets_an_entry_when_its_hit_count_reaches_forget_every():
    cache = LRUCache(10, forget_every=FORGET_EVERY)
    cache.put("k", 0.5)
    for _ in range(FORGET_EVERY - 1):  # the insert counts as the first
        assert cache.get("k") == 0.5
    assert "k" not in cache
    assert cache.get("k") is None

    never = LRUCache(10, forget_every=0)
    never.put("k", 0.5)
    assert all(never.get("k") == 0.5 for _ in range(1000))


def test_fingerprint_hashes_errors_task_and_budget_exactly():
    train, valid = np.arange(10.0), np.arange(10.0) / 3
    key = fingerprint(train, valid, 0, 100)
    assert fingerprint(list(train), list(valid), 0, 100) == key  # lists or arrays alike
    assert fingerprint(train, valid, 1, 100) != key
    assert fingerprint(train, valid, 0, 0) != key
    assert fingerprint(np.nextafter(train, 1), valid, 0, 100) != key
    assert fingerprint(train[:9], np.append(train[9:], valid), 0, 100) != key  # lengths count
    assert fingerprint(-0.0 * train, valid, 0, 100) == fingerprint(0.0 * train, valid, 0, 100)
    assert combined_fingerprint([key, 1]) != combined_fingerprint([1, key])
    assert key == 10360208866627943110  # stable across runs and machines


def increment_task(n_train: int, n_valid: int) -> Task:
    train = np.arange(float(n_train))
    valid = np.arange(float(n_valid))
    return Task("increment", np.tile(train[:, None], 4), train, np.tile(valid[:, None], 4),
                valid, RMS)


def test_reference_errors_of_a_no_op_program_are_the_labels():
    train, valid = reference_errors(parse("def setup():\n    pass\n"), increment_task(11, 9), 0)
    assert list(train) == list(range(10)) and list(valid) == list(range(9))


def program(vector_ops: str):
    return parse("def setup():\n    pass\ndef predict():\n    v1 = abs(v0)\n"
                 f"{vector_ops}    s1 = mean(v1)\ndef learn():\n    pass\n")


def test_fingerprints_agree_on_programs_that_compute_alike():
    tasks = [increment_task(20, 10), increment_task(30, 12)]
    once, twice = program(""), program("    v1 = abs(v1)\n")
    assert structural_hash(once) != structural_hash(twice)
    assert reference_fingerprint(once, tasks, 20) == reference_fingerprint(twice, tasks, 20)
    assert reference_fingerprint(once, tasks, 20) != reference_fingerprint(once, tasks, 10)
    other = program("    v1 = v1 + v1\n")
    assert reference_fingerprint(other, tasks, 20) != reference_fingerprint(once, tasks, 20)


def padded(runs):
    """Reference errors per (program, task) in the native engine's NaN-padded layout."""
    P, T = len(runs), len(runs[0])
    recorded = SimpleNamespace(train_errors=np.full((P, T, 30), np.nan),
                               valid_errors=np.full((P, T, 30), np.nan),
                               train_counts=np.zeros((P, T), np.int64),
                               valid_counts=np.zeros((P, T), np.int64))
    for p, row in enumerate(runs):
        for t, (train, valid) in enumerate(row):
            recorded.train_errors[p, t, :len(train)] = train
            recorded.valid_errors[p, t, :len(valid)] = valid
            recorded.train_counts[p, t], recorded.valid_counts[p, t] = len(train), len(valid)
    return recorded


def test_batch_fingerprints_read_padded_arrays_like_the_reference():
    tasks = [increment_task(20, 10), increment_task(30, 12)]
    programs = [program(""), program("    v1 = v1 + v1\n"), linear_program()]
    runs = [[reference_errors(p, task, t) for t, task in enumerate(tasks)] for p in programs]
    keys = batch_fingerprints(padded(runs), [20, 20, 0])
    assert keys[0] == reference_fingerprint(programs[0], tasks, 20)
    assert keys[1] == reference_fingerprint(programs[1], tasks, 20)
    assert keys[2] == reference_fingerprint(programs[2], tasks, 0)


def test_native_engine_fingerprints_hash_like_the_reference_ones():
    engine = pytest.importorskip("azc.engine")
    from azc.fec import FEC_SEED
    from azc.generator import neural_net_program
    from azc.tasks import TaskSpec, make_tasks

    tasks = make_tasks(TaskSpec("linear", 4, 10, 10, num_tasks=3))
    evaluator = engine.make_evaluator(tasks, None, engine="interp", num_train=10, num_valid=10,
                                      seed=FEC_SEED)
    programs = [linear_program(), neural_net_program()]  # the second draws random numbers
    keys = batch_fingerprints(evaluator.fingerprints(programs), 10)
    assert keys == [reference_fingerprint(p, tasks, 10) for p in programs]
