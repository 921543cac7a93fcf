"""The FEC's LRU cache as a native table: 64-bit keys to doubles, about 60 bytes an entry.

Behaves exactly as azc.fec.LRUCache, the original's cache (reference §12): least recently used
eviction, a hit moves the entry to the most recent end and counts it (1 on insert), and an
entry is deleted right after the hit that brings its count to `forget_every` (0: never).
LRUCache keeps its 100,000 entries as scattered Python objects, about 300 bytes each: 30 MB
a process, which island processes on one chip fight over in its shared L3 cache. Here the
table is two arrays, 6 MB in all:

    buckets  open addressing with linear probing, at least twice the capacity (load at most
             1/2); a bucket is 0 (empty) or the high 32 bits of the key's mixed hash over its
             slot + 1, so most probes never touch an entry; deletion shifts later buckets
             back instead of leaving tombstones
    entries  one 40-byte slot per entry: key, value, ticket, hits, and the LRU list's links
             to the next older and newer slots (a freed slot's newer link is the free list)

Evolution asks a batch of keys at a time, in one native call (`find`): a key not in the
table is inserted pending, with a ticket (its row in the batch), and later keys of the batch
that hit it are told that row; `fill` then stores the fitness of each new row, if its entry is
still there and still that row's. The two calls do what a per-key loop over LRUCache does
with shared cells filled after the batch's evaluation (tests/test_lru.py holds that loop).
"""

import ctypes
from functools import cache

import numpy as np

from azc import jit
from azc.fec import CACHE_SIZE, FORGET_EVERY

ENTRY = np.dtype([("key", "<u8"), ("value", "<f8"), ("ticket", "<i8"), ("hits", "<i8"),
                  ("older", "<i4"), ("newer", "<i4")])  # == %E below
# Header fields (i64 each): where the arrays are, the LRU list's ends, sizes and settings.
BUCKETS, ENTRIES, NEWEST, OLDEST, COUNT, FREE, USED, CAPACITY, FORGET, SHIFT, MASK = range(11)
MIX = 0x9E3779B97F4A7C15  # Fibonacci hashing: a bucket is the top bits of key * MIX

_IR = f"""
%E = type {{ i64, double, i64, i64, i32, i32 }}  ; key, value, ticket, hits, older, newer

define internal ptr @entries(ptr %t) alwaysinline {{
  %p = getelementptr inbounds i64, ptr %t, i64 {ENTRIES}
  %e = load ptr, ptr %p
  ret ptr %e
}}

define internal ptr @header(ptr %t, i64 %k) alwaysinline {{
  %p = getelementptr inbounds i64, ptr %t, i64 %k
  ret ptr %p
}}

define internal i64 @get(ptr %t, i64 %k) alwaysinline {{
  %p = getelementptr inbounds i64, ptr %t, i64 %k
  %v = load i64, ptr %p
  ret i64 %v
}}

; The bucket holding `key`, or -1 minus the empty bucket where it would go.
define internal i64 @locate(ptr %t, i64 %key) {{
entry:
  %b = load ptr, ptr %t
  %e = call ptr @entries(ptr %t)
  %shift = call i64 @get(ptr %t, i64 {SHIFT})
  %mask = call i64 @get(ptr %t, i64 {MASK})
  %h = mul i64 %key, {MIX - (1 << 64)}
  %home = lshr i64 %h, %shift
  %tag = lshr i64 %h, 32
  br label %probe
probe:
  %i = phi i64 [ %home, %entry ], [ %next, %again ]
  %wp = getelementptr inbounds i64, ptr %b, i64 %i
  %w = load i64, ptr %wp
  %empty = icmp eq i64 %w, 0
  br i1 %empty, label %absent, label %check
check:
  %wtag = lshr i64 %w, 32
  %near = icmp eq i64 %wtag, %tag
  br i1 %near, label %compare, label %again
compare:
  %low = and i64 %w, 4294967295
  %slot = sub i64 %low, 1
  %kp = getelementptr inbounds %E, ptr %e, i64 %slot, i32 0
  %k = load i64, ptr %kp
  %same = icmp eq i64 %k, %key
  br i1 %same, label %found, label %again
again:
  %step = add i64 %i, 1
  %next = and i64 %step, %mask
  br label %probe
found:
  ret i64 %i
absent:
  %code = sub i64 -1, %i
  ret i64 %code
}}

define internal i64 @slot(ptr %t, i64 %i) alwaysinline {{
  %b = load ptr, ptr %t
  %wp = getelementptr inbounds i64, ptr %b, i64 %i
  %w = load i64, ptr %wp
  %low = and i64 %w, 4294967295
  %s = sub i64 %low, 1
  ret i64 %s
}}

; Take slot s out of the LRU list.
define internal void @unlink(ptr %t, i64 %s) {{
entry:
  %e = call ptr @entries(ptr %t)
  %op = getelementptr inbounds %E, ptr %e, i64 %s, i32 4
  %o32 = load i32, ptr %op
  %o = sext i32 %o32 to i64
  %np = getelementptr inbounds %E, ptr %e, i64 %s, i32 5
  %n32 = load i32, ptr %np
  %n = sext i32 %n32 to i64
  %has_older = icmp sge i64 %o, 0
  br i1 %has_older, label %older, label %was_oldest
older:
  %onp = getelementptr inbounds %E, ptr %e, i64 %o, i32 5
  store i32 %n32, ptr %onp
  br label %newer_side
was_oldest:
  %oldest = call ptr @header(ptr %t, i64 {OLDEST})
  store i64 %n, ptr %oldest
  br label %newer_side
newer_side:
  %has_newer = icmp sge i64 %n, 0
  br i1 %has_newer, label %newer, label %was_newest
newer:
  %nop = getelementptr inbounds %E, ptr %e, i64 %n, i32 4
  store i32 %o32, ptr %nop
  ret void
was_newest:
  %newest = call ptr @header(ptr %t, i64 {NEWEST})
  store i64 %o, ptr %newest
  ret void
}}

; Put slot s at the newest end of the LRU list.
define internal void @push(ptr %t, i64 %s) {{
entry:
  %e = call ptr @entries(ptr %t)
  %newest = call ptr @header(ptr %t, i64 {NEWEST})
  %n = load i64, ptr %newest
  %n32 = trunc i64 %n to i32
  %s32 = trunc i64 %s to i32
  %op = getelementptr inbounds %E, ptr %e, i64 %s, i32 4
  store i32 %n32, ptr %op
  %np = getelementptr inbounds %E, ptr %e, i64 %s, i32 5
  store i32 -1, ptr %np
  %has = icmp sge i64 %n, 0
  br i1 %has, label %link, label %first
link:
  %nnp = getelementptr inbounds %E, ptr %e, i64 %n, i32 5
  store i32 %s32, ptr %nnp
  br label %done
first:
  %oldest = call ptr @header(ptr %t, i64 {OLDEST})
  store i64 %s, ptr %oldest
  br label %done
done:
  store i64 %s, ptr %newest
  ret void
}}

define internal void @touch(ptr %t, i64 %s) alwaysinline {{
  call void @unlink(ptr %t, i64 %s)
  call void @push(ptr %t, i64 %s)
  ret void
}}

; Delete the entry in bucket i: free its slot, then shift back the buckets after it that
; may move (those whose home is not in the cyclic range (hole, j]) so no probe breaks.
define internal void @erase(ptr %t, i64 %i) {{
entry:
  %s = call i64 @slot(ptr %t, i64 %i)
  call void @unlink(ptr %t, i64 %s)
  %e = call ptr @entries(ptr %t)
  %free = call ptr @header(ptr %t, i64 {FREE})
  %f = load i64, ptr %free
  %f32 = trunc i64 %f to i32
  %np = getelementptr inbounds %E, ptr %e, i64 %s, i32 5
  store i32 %f32, ptr %np
  store i64 %s, ptr %free
  %count = call ptr @header(ptr %t, i64 {COUNT})
  %c = load i64, ptr %count
  %c1 = sub i64 %c, 1
  store i64 %c1, ptr %count
  %b = load ptr, ptr %t
  %shift = call i64 @get(ptr %t, i64 {SHIFT})
  %mask = call i64 @get(ptr %t, i64 {MASK})
  br label %scan
scan:
  %hole = phi i64 [ %i, %entry ], [ %hole, %stay ], [ %j, %move ]
  %at = phi i64 [ %i, %entry ], [ %j, %stay ], [ %j, %move ]
  %step = add i64 %at, 1
  %j = and i64 %step, %mask
  %wp = getelementptr inbounds i64, ptr %b, i64 %j
  %w = load i64, ptr %wp
  %end = icmp eq i64 %w, 0
  br i1 %end, label %done, label %test
test:
  %home = lshr i64 %w, %shift
  %from_home = sub i64 %j, %home
  %dh = and i64 %from_home, %mask
  %from_hole = sub i64 %j, %hole
  %dd = and i64 %from_hole, %mask
  %movable = icmp uge i64 %dh, %dd
  br i1 %movable, label %move, label %stay
move:
  %hp = getelementptr inbounds i64, ptr %b, i64 %hole
  store i64 %w, ptr %hp
  br label %scan
stay:
  br label %scan
done:
  %last = getelementptr inbounds i64, ptr %b, i64 %hole
  store i64 0, ptr %last
  ret void
}}

; A slot for a new entry: a freed one, else the next never used.
define internal i64 @alloc(ptr %t) {{
entry:
  %free = call ptr @header(ptr %t, i64 {FREE})
  %f = load i64, ptr %free
  %has = icmp sge i64 %f, 0
  br i1 %has, label %reuse, label %fresh
reuse:
  %e = call ptr @entries(ptr %t)
  %np = getelementptr inbounds %E, ptr %e, i64 %f, i32 5
  %n32 = load i32, ptr %np
  %n = sext i32 %n32 to i64
  store i64 %n, ptr %free
  ret i64 %f
fresh:
  %used = call ptr @header(ptr %t, i64 {USED})
  %u = load i64, ptr %used
  %u1 = add i64 %u, 1
  store i64 %u1, ptr %used
  ret i64 %u
}}

; Insert `key` (absent) as the newest entry, evicting the oldest first if full; its slot.
; Evicting first ends as the original's insert-then-evict: the new entry is never the oldest.
define internal i64 @insert(ptr %t, i64 %key) {{
entry:
  %count = call ptr @header(ptr %t, i64 {COUNT})
  %c = load i64, ptr %count
  %capacity = call i64 @get(ptr %t, i64 {CAPACITY})
  %full = icmp sge i64 %c, %capacity
  br i1 %full, label %evict, label %place
evict:
  %o = call i64 @get(ptr %t, i64 {OLDEST})
  %e0 = call ptr @entries(ptr %t)
  %okp = getelementptr inbounds %E, ptr %e0, i64 %o, i32 0
  %okey = load i64, ptr %okp
  %ob = call i64 @locate(ptr %t, i64 %okey)
  call void @erase(ptr %t, i64 %ob)
  br label %place
place:
  %code = call i64 @locate(ptr %t, i64 %key)
  %i = sub i64 -1, %code
  %s = call i64 @alloc(ptr %t)
  %h = mul i64 %key, {MIX - (1 << 64)}
  %tag = and i64 %h, -4294967296
  %s1 = add i64 %s, 1
  %w = or i64 %tag, %s1
  %b = load ptr, ptr %t
  %wp = getelementptr inbounds i64, ptr %b, i64 %i
  store i64 %w, ptr %wp
  %e = call ptr @entries(ptr %t)
  %kp = getelementptr inbounds %E, ptr %e, i64 %s, i32 0
  store i64 %key, ptr %kp
  call void @push(ptr %t, i64 %s)
  %c2 = load i64, ptr %count
  %c3 = add i64 %c2, 1
  store i64 %c3, ptr %count
  ret i64 %s
}}

; Count a hit on slot s (bucket i): forget it if its count reaches forget_every, else make it
; the newest.
define internal void @hit(ptr %t, i64 %i, i64 %s) {{
entry:
  %e = call ptr @entries(ptr %t)
  %hp = getelementptr inbounds %E, ptr %e, i64 %s, i32 3
  %h = load i64, ptr %hp
  %h1 = add i64 %h, 1
  store i64 %h1, ptr %hp
  %forget = call i64 @get(ptr %t, i64 {FORGET})
  %on = icmp ne i64 %forget, 0
  %reached = icmp sge i64 %h1, %forget
  %drop = and i1 %on, %reached
  br i1 %drop, label %forget_it, label %keep
forget_it:
  call void @erase(ptr %t, i64 %i)
  ret void
keep:
  call void @touch(ptr %t, i64 %s)
  ret void
}}

define i64 @lru_locate(ptr %t, i64 %key) {{
  %i = call i64 @locate(ptr %t, i64 %key)
  ret i64 %i
}}

; LRUCache.get: 1 and the value in *out if found (a hit), else 0.
define i64 @lru_get(ptr %t, i64 %key, ptr %out) {{
entry:
  %i = call i64 @locate(ptr %t, i64 %key)
  %found = icmp sge i64 %i, 0
  br i1 %found, label %known, label %absent
absent:
  ret i64 0
known:
  %s = call i64 @slot(ptr %t, i64 %i)
  %e = call ptr @entries(ptr %t)
  %vp = getelementptr inbounds %E, ptr %e, i64 %s, i32 1
  %v = load double, ptr %vp
  store double %v, ptr %out
  call void @hit(ptr %t, i64 %i, i64 %s)
  ret i64 1
}}

; LRUCache.put with a hit count: store as the newest entry (inserting if absent).
define void @lru_put(ptr %t, i64 %key, double %value, i64 %hits) {{
entry:
  %i = call i64 @locate(ptr %t, i64 %key)
  %found = icmp sge i64 %i, 0
  br i1 %found, label %known, label %absent
known:
  %s0 = call i64 @slot(ptr %t, i64 %i)
  call void @touch(ptr %t, i64 %s0)
  br label %store
absent:
  %s1 = call i64 @insert(ptr %t, i64 %key)
  br label %store
store:
  %s = phi i64 [ %s0, %known ], [ %s1, %absent ]
  %e = call ptr @entries(ptr %t)
  %vp = getelementptr inbounds %E, ptr %e, i64 %s, i32 1
  store double %value, ptr %vp
  %tp = getelementptr inbounds %E, ptr %e, i64 %s, i32 2
  store i64 -1, ptr %tp
  %hp = getelementptr inbounds %E, ptr %e, i64 %s, i32 3
  store i64 %hits, ptr %hp
  ret void
}}

; A batch of keys in order, each a get and, if absent, a put of a pending entry (ticket:
; base + its row). source[r] = -1 with values[r] the cached value, or the row whose
; evaluation gives it: r itself if new. The number of hits.
define i64 @lru_find(ptr %t, ptr %keys, i64 %n, i64 %base, ptr %values, ptr %source) {{
entry:
  %e = call ptr @entries(ptr %t)
  br label %head
head:
  %r = phi i64 [ 0, %entry ], [ %r1, %next ]
  %hits = phi i64 [ 0, %entry ], [ %hits1, %next ]
  %more = icmp slt i64 %r, %n
  br i1 %more, label %body, label %done
body:
  %kp = getelementptr inbounds i64, ptr %keys, i64 %r
  %key = load i64, ptr %kp
  %srcp = getelementptr inbounds i64, ptr %source, i64 %r
  %row = add i64 %base, %r
  %i = call i64 @locate(ptr %t, i64 %key)
  %found = icmp sge i64 %i, 0
  br i1 %found, label %known, label %absent
known:
  %s = call i64 @slot(ptr %t, i64 %i)
  %tp = getelementptr inbounds %E, ptr %e, i64 %s, i32 2
  %ticket = load i64, ptr %tp
  %pending = icmp sge i64 %ticket, 0
  %earlier = icmp slt i64 %ticket, %base
  %stale = and i1 %pending, %earlier
  br i1 %stale, label %renew, label %counted
renew:  ; NOTE: left pending by a batch that was never filled (its evaluation failed): absent
  store i64 %row, ptr %tp
  %rhp = getelementptr inbounds %E, ptr %e, i64 %s, i32 3
  store i64 1, ptr %rhp
  call void @touch(ptr %t, i64 %s)
  store i64 %r, ptr %srcp
  br label %next
counted:
  br i1 %pending, label %shared, label %cached
shared:
  %from = sub i64 %ticket, %base
  store i64 %from, ptr %srcp
  br label %hit
cached:
  %vp = getelementptr inbounds %E, ptr %e, i64 %s, i32 1
  %v = load double, ptr %vp
  %outp = getelementptr inbounds double, ptr %values, i64 %r
  store double %v, ptr %outp
  store i64 -1, ptr %srcp
  br label %hit
hit:
  call void @hit(ptr %t, i64 %i, i64 %s)
  %counted_hits = add i64 %hits, 1
  br label %next
absent:
  %s2 = call i64 @insert(ptr %t, i64 %key)
  %ntp = getelementptr inbounds %E, ptr %e, i64 %s2, i32 2
  store i64 %row, ptr %ntp
  %nhp = getelementptr inbounds %E, ptr %e, i64 %s2, i32 3
  store i64 1, ptr %nhp
  store i64 %r, ptr %srcp
  br label %next
next:
  %hits1 = phi i64 [ %hits, %renew ], [ %counted_hits, %hit ], [ %hits, %absent ]
  %r1 = add i64 %r, 1
  br label %head
done:
  ret i64 %hits
}}

; After lru_find with the same keys and base: store fitness[j] in the entry of row rows[j] if
; it is still there and still that row's (a pending entry can be forgotten or evicted, and its
; key pended again by a later row, within one batch).
define void @lru_fill(ptr %t, ptr %keys, ptr %rows, i64 %m, i64 %base, ptr %fitness) {{
entry:
  %e = call ptr @entries(ptr %t)
  br label %head
head:
  %j = phi i64 [ 0, %entry ], [ %j1, %next ]
  %more = icmp slt i64 %j, %m
  br i1 %more, label %body, label %done
body:
  %rp = getelementptr inbounds i64, ptr %rows, i64 %j
  %row = load i64, ptr %rp
  %kp = getelementptr inbounds i64, ptr %keys, i64 %row
  %key = load i64, ptr %kp
  %i = call i64 @locate(ptr %t, i64 %key)
  %found = icmp sge i64 %i, 0
  br i1 %found, label %known, label %next
known:
  %s = call i64 @slot(ptr %t, i64 %i)
  %tp = getelementptr inbounds %E, ptr %e, i64 %s, i32 2
  %ticket = load i64, ptr %tp
  %wanted = add i64 %base, %row
  %mine = icmp eq i64 %ticket, %wanted
  br i1 %mine, label %store, label %next
store:
  %fp = getelementptr inbounds double, ptr %fitness, i64 %j
  %f = load double, ptr %fp
  %vp = getelementptr inbounds %E, ptr %e, i64 %s, i32 1
  store double %f, ptr %vp
  store i64 -1, ptr %tp
  br label %next
next:
  %j1 = add i64 %j, 1
  br label %head
done:
  ret void
}}

; The slots from the oldest entry to the newest into out; their number.
define i64 @lru_order(ptr %t, ptr %out) {{
entry:
  %e = call ptr @entries(ptr %t)
  %first = call i64 @get(ptr %t, i64 {OLDEST})
  br label %head
head:
  %s = phi i64 [ %first, %entry ], [ %n, %body ]
  %k = phi i64 [ 0, %entry ], [ %k1, %body ]
  %more = icmp sge i64 %s, 0
  br i1 %more, label %body, label %done
body:
  %op = getelementptr inbounds i64, ptr %out, i64 %k
  store i64 %s, ptr %op
  %k1 = add i64 %k, 1
  %np = getelementptr inbounds %E, ptr %e, i64 %s, i32 5
  %n32 = load i32, ptr %np
  %n = sext i32 %n32 to i64
  br label %head
done:
  ret i64 %k
}}
"""

_I64, _PTR = ctypes.c_int64, ctypes.c_void_p
_SIGNATURES = {
    "lru_locate": ctypes.CFUNCTYPE(_I64, _PTR, ctypes.c_uint64),
    "lru_get": ctypes.CFUNCTYPE(_I64, _PTR, ctypes.c_uint64, _PTR),
    "lru_put": ctypes.CFUNCTYPE(None, _PTR, ctypes.c_uint64, ctypes.c_double, _I64),
    "lru_find": ctypes.CFUNCTYPE(_I64, _PTR, _PTR, _I64, _I64, _PTR, _PTR),
    "lru_fill": ctypes.CFUNCTYPE(None, _PTR, _PTR, _PTR, _I64, _I64, _PTR),
    "lru_order": ctypes.CFUNCTYPE(_I64, _PTR, _PTR),
}


@cache
def _functions() -> dict:
    """The table's native functions, compiled once per process (the dict keeps them alive)."""
    triple, layout = jit.host_triple_and_layout()
    text = f'target triple = "{triple}"\ntarget datalayout = "{layout}"\n' + _IR
    library = jit.compile_ir(text, list(_SIGNATURES))
    functions = {name: signature(library[name]) for name, signature in _SIGNATURES.items()}
    functions["library"] = library
    return functions


class LRUTable:
    """azc.fec.LRUCache of 64-bit keys and float values, native (see the module docstring)."""

    def __init__(self, capacity: int = CACHE_SIZE, forget_every: int = FORGET_EVERY):
        if capacity < 1:
            raise ValueError("an LRU cache needs room for at least one entry")
        self.capacity = capacity
        self.forget_every = forget_every
        bits = max(1, (2 * capacity - 1).bit_length())
        if bits > 32:
            raise ValueError(f"an LRU table holds at most {2**31:,} entries")
        self._buckets = np.zeros(1 << bits, dtype=np.int64)
        self._entries = np.zeros(capacity, dtype=ENTRY)
        self._header = np.array([self._buckets.ctypes.data, self._entries.ctypes.data, -1, -1,
                                 0, -1, 0, capacity, forget_every, 64 - bits, (1 << bits) - 1],
                                dtype=np.int64)
        self._t = self._header.ctypes.data
        self._f = _functions()
        self._rows = 0  # tickets handed out so far: the next batch's base
        self._base = 0

    def get(self, key: int) -> float | None:
        """The value stored for `key`, or None (a hit: counted, and maybe forgotten)."""
        out = ctypes.c_double()
        return out.value if self._f["lru_get"](self._t, key, ctypes.byref(out)) else None

    def put(self, key: int, value: float, hits: int = 1):
        """Store `value` as the most recent entry, evicting the least recent one if full."""
        self._f["lru_put"](self._t, key, value, hits)

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Look up a batch of keys in order, inserting each absent one pending (see the module
        docstring): (values, source, hits), with source[r] = -1 where values[r] is the cached
        value, else the row of the batch whose fitness it takes (r itself if new)."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        values = np.zeros(len(keys))
        source = np.empty(len(keys), dtype=np.int64)
        self._base = self._rows
        self._rows += len(keys)
        hits = self._f["lru_find"](self._t, keys.ctypes.data, len(keys), self._base,
                                   values.ctypes.data, source.ctypes.data)
        return values, source, hits

    def fill(self, keys: np.ndarray, rows: np.ndarray, fitness: np.ndarray):
        """Store the fitness of the new `rows` of the last `find(keys)`, where still pending."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        fitness = np.ascontiguousarray(fitness, dtype=np.float64)
        assert len(rows) == len(fitness) and (rows < len(keys)).all(), "rows of the last batch"
        self._f["lru_fill"](self._t, keys.ctypes.data, rows.ctypes.data, len(rows), self._base,
                            fitness.ctypes.data)

    def entries(self) -> np.ndarray:
        """The entries (key, value, ticket, hits, ...) from least to most recently used."""
        order = np.empty(self.capacity, dtype=np.int64)
        count = self._f["lru_order"](self._t, order.ctypes.data)
        return self._entries[order[:count]]

    def keys(self) -> list[int]:
        """Keys from least to most recently used."""
        return self.entries()["key"].tolist()

    def __contains__(self, key) -> bool:
        return self._f["lru_locate"](self._t, key) >= 0

    def __len__(self) -> int:
        return int(self._header[COUNT])
