"""The native LRU table against azc.fec.LRUCache, the original's cache, as the model: the same
answers, the same key order, the same hit counts, one key at a time or in batches."""

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azc.fec import LRUCache

pytest.importorskip("llvmlite")
from azc.lru import LRUTable  # noqa: E402

# Few distinct keys, so gets hit and the table fills; some with high bits set.
KEYS = st.one_of(st.integers(0, 12), st.sampled_from([2**64 - 1, 2**63, 2**63 + 5, 1 << 40]))
OPS = st.lists(st.tuples(st.sampled_from(["get", "put", "in"]), KEYS, st.floats(-1e9, 1e9)),
               max_size=120)


def model_entries(cache: LRUCache) -> list:
    """[key, value, hits] of the model, least recently used first; a cell's value unwrapped."""
    return [[key, value[0] if isinstance(value, list) else value, hits]
            for key, (value, hits) in cache._entries.items()]


def table_entries(table: LRUTable) -> list:
    entries = table.entries()
    return [list(entry) for entry in zip(entries["key"].tolist(), entries["value"].tolist(),
                                         entries["hits"].tolist(), strict=True)]


def test_lru_reference_values():
    """Reference §6.7: capacity 5, keys 5,2,4,1,3,6,7 evict 5 and 2; looking up 5 and 4
    before 6 and 7 evicts 1 and 2 instead."""
    table = LRUTable(5)
    for key in (5, 2, 4, 1, 3, 6, 7):
        table.put(key, float(key))
    assert 5 not in table and 2 not in table
    assert table.keys() == [4, 1, 3, 6, 7]

    table = LRUTable(5)
    for key in (5, 2, 4, 1, 3):
        table.put(key, float(key))
    assert table.get(5) == 5.0 and table.get(4) == 4.0
    table.put(6, 6.0)
    table.put(7, 7.0)
    assert 1 not in table and 2 not in table
    assert table.keys() == [3, 5, 4, 6, 7]


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 6), st.integers(-1, 4), OPS)
def test_gets_and_puts_match_the_model(capacity, forget_every, ops):
    model, table = LRUCache(capacity, forget_every), LRUTable(capacity, forget_every)
    for op, key, value in ops:
        if op == "get":
            assert table.get(key) == model.get(key)
        elif op == "put":
            model.put(key, value)
            table.put(key, value)
        else:
            assert (key in table) == (key in model)
        assert len(table) == len(model)
    assert table_entries(table) == model_entries(model)


def model_batch(cache: LRUCache, keys: list, evaluate) -> tuple[list, int]:
    """The old per-key loop of batch evolution: shared cells, filled after the evaluation."""
    cells, fresh, hits = [], [], 0
    for i, key in enumerate(keys):
        cell = cache.get(key)
        if cell is None:
            cell = [None]
            cache.put(key, cell)
            fresh.append(i)
        else:
            hits += 1
        cells.append(cell)
    for i, fitness in zip(fresh, evaluate(np.array(fresh, dtype=np.int64)), strict=True):
        cells[i][0] = float(fitness)
    return [cell[0] for cell in cells], hits


def table_batch(table: LRUTable, keys: list, evaluate) -> tuple[list, int]:
    """What azc.evolve.FunctionalCache.score does with the table."""
    keys = np.array(keys, dtype=np.uint64)
    fitness, source, hits = table.find(keys)
    fresh = np.flatnonzero(source == np.arange(len(keys)))
    found = np.asarray(evaluate(fresh), dtype=np.float64)
    table.fill(keys, fresh, found)
    by_row = np.empty(len(keys))
    by_row[fresh] = found
    fitness[source >= 0] = by_row[source[source >= 0]]
    return fitness.tolist(), hits


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 6), st.integers(-1, 4), st.lists(st.lists(KEYS, max_size=30), max_size=8))
def test_batches_match_the_per_key_loop(capacity, forget_every, batches):
    """A key forgotten or evicted while pending and asked again in the same batch is evaluated
    again, and its entry takes the later evaluation: fitness here depends on the row."""
    model, table = LRUCache(capacity, forget_every), LRUTable(capacity, forget_every)
    for b, keys in enumerate(batches):
        def evaluate(rows, b=b):
            return rows * 10.0 + b

        assert table_batch(table, keys, evaluate) == model_batch(model, keys, evaluate)
        assert table_entries(table) == model_entries(model)


@pytest.mark.parametrize("capacity, forget_every", [(100, 3), (1000, 0), (64, 100)])
def test_long_random_runs_match_the_model(capacity, forget_every):
    """Many evictions and forgets: deletion's backward shifts must keep every key findable."""
    rng = random.Random(capacity)
    model, table = LRUCache(capacity, forget_every), LRUTable(capacity, forget_every)
    for _ in range(60):
        keys = [rng.randrange(4 * capacity) for _ in range(rng.randrange(400))]
        keys += [rng.getrandbits(64) for _ in range(20)]
        assert (table_batch(table, keys, lambda rows: rows * 0.5)
                == model_batch(model, keys, lambda rows: rows * 0.5))
    for _ in range(5000):
        key = rng.randrange(4 * capacity)
        found = model.get(key)
        assert table.get(key) == (found[0] if isinstance(found, list) else found)
        model.put(key + 1, 1.0)
        table.put(key + 1, 1.0)
    assert table_entries(table) == model_entries(model)
    assert all(key in table for key in model.keys())


def test_an_abandoned_batch_leaves_no_pending_fitness():
    """A batch whose evaluation failed (no fill) leaves its new keys pending: the next batch
    treats them as absent and evaluates them."""
    table = LRUTable(10)
    table.find(np.array([1, 2], dtype=np.uint64))
    keys = np.array([2, 3, 2], dtype=np.uint64)
    _, source, hits = table.find(keys)
    assert source.tolist() == [0, 1, 0] and hits == 1
    table.fill(keys, np.array([0, 1]), np.array([0.25, 0.5]))
    assert table.get(2) == 0.25 and table.get(3) == 0.5 and table.keys() == [1, 2, 3]


def test_a_full_table_restored_in_order_is_the_same_table():
    table, copy = LRUTable(50, 4), LRUTable(50, 4)
    rng = random.Random(7)
    for _ in range(500):
        key = rng.randrange(80)
        if table.get(key) is None:
            table.put(key, rng.random())
    for key, value, hits in table_entries(table):
        copy.put(key, value, hits)
    assert table_entries(copy) == table_entries(table)


def test_capacity_is_checked():
    with pytest.raises(ValueError, match="at least one entry"):
        LRUTable(0)
