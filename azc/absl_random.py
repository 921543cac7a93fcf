"""Abseil's Gaussian sampler on an mt19937 stream: the draws behind the original's tasks.

The original fills task features and teacher weights with absl::Gaussian<double> on a
std::mt19937 (task_util.h, random_generator.h). NumPy's legacy RandomState(seed) is the same
engine with the same seeding, so its raw 32-bit words are the original's; this module turns them
into normal draws the way Abseil does, so that a task seed gives the original's numbers.

absl::gaussian_distribution is a Ziggurat (Marsaglia & Tsang 2000, with Doornik's 2005
refinements) over 128 strips of equal area, X[0] > X[1] = R > ... > X[128] = 0:

    bits = next 64-bit word                      # two mt19937 words, the first one high
    i = bits & 127                               # strip
    x = U(-1, 1)[bits] * X[i]                    # the sign and the fraction from the same bits
    if |x| < X[i+1]: return x                    # inside the strip's rectangle (~97%)
    if i == 0: return the tail beyond R, signed as x    # Marsaglia's tail method
    if P[i+1] + U(0, 1) * (P[i] - P[i+1]) < exp(-x^2 / 2): return x     # in the wedge
    start again with the next word

See absl/random/gaussian_distribution.h, internal/fast_uniform_bits.h and generate_real.h.
"""

import math

import numpy as np

STRIPS = 128
TAIL_START = 3.442619855899  # R: where the tail strip begins
STRIP_AREA = 9.91256303526217e-3  # V: the area of each strip
TAIL_SCALE = 0.29047645161474317  # Abseil's literal for 1 / R (the same double)
LOW_63 = (1 << 63) - 1


def _density(x: float) -> float:
    return math.exp(-0.5 * x * x)


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray]:
    """The strip edges X and the densities P = exp(-X^2/2) at them.

    Each strip has area V: strip 0 is the tail plus a box of height P(R) reaching out to
    X[0] = V / P(R); above it, X[i] solves X[i-1] * (P[i] - P[i-1]) = V. Computed in Python
    floats, whose exp, log and sqrt are the C library's, as Abseil's table generator does.
    """
    edges, densities = [0.0] * (STRIPS + 1), [0.0] * (STRIPS + 1)
    edges[0] = STRIP_AREA / _density(TAIL_START)
    densities[0] = _density(edges[0])
    edges[1], densities[1] = TAIL_START, _density(TAIL_START)
    edges[STRIPS], densities[STRIPS] = 0.0, 1.0
    for i in range(2, STRIPS):
        densities[i] = STRIP_AREA / edges[i - 1] + densities[i - 1]
        edges[i] = math.sqrt(-2.0 * math.log(densities[i]))
    return np.array(edges), np.array(densities)


EDGES, DENSITIES = _ziggurat_tables()


BLOCK = 1 << 16  # words per vectorized step: small enough to stay in cache


class Mt19937:
    """std::mt19937(seed), read as Abseil's FastUniformBits<uint64_t> reads it.

    Every draw the sampler makes is one 64-bit word built from two engine outputs, the first
    in the high half. Words are drawn ahead in blocks; `peek` looks ahead, `advance` consumes.
    """

    def __init__(self, seed: int):
        # NOTE: RandomState seeds MT19937 as std::mt19937's constructor does, and randint over
        # the full uint32 range returns the raw outputs.
        self._engine = np.random.RandomState(seed % 2**32)
        self._words = np.empty(0, dtype=np.uint64)
        self._position = 0

    def peek(self, count: int) -> np.ndarray:
        """The next `count` words, without consuming them."""
        missing = self._position + count - len(self._words)
        if missing > 0:
            pairs = self._engine.randint(0, 2**32, size=2 * missing, dtype=np.uint32)
            # Viewed as little-endian 64-bit words the first output is low: swap the halves.
            pairs = pairs.view("<u8")
            fresh = (pairs << np.uint64(32)) | (pairs >> np.uint64(32))
            self._words = np.concatenate([self._words[self._position:], fresh])
            self._position = 0
        return self._words[self._position:self._position + count]

    def advance(self, count: int):
        self._position += count


def unit_reals(bits: np.ndarray, signed: bool = False) -> np.ndarray:
    """Abseil's GenerateRealFromBits without zero: U(0, 1), or U(-1, 1) if `signed`.

    The word, less its top bit if signed, is scaled by 2^-64 (2^-63 if signed) and truncated,
    not rounded, to 53 significant bits; an all-zero word gives half the smallest step.
    """
    bits = np.asarray(bits, dtype=np.uint64)
    magnitude = bits & np.uint64(LOW_63) if signed else bits

    # Bits to drop so that 53 remain, from the exponent of magnitude >> 11 (converted exactly).
    high = (magnitude >> np.uint64(11)).astype(np.float64)
    drop = (high.view(np.int64) >> 52) - (1023 + 41)
    np.maximum(drop, 0, out=drop)
    drop = drop.view(np.uint64)

    values = ((magnitude >> drop) << drop).astype(np.float64)
    if not magnitude.all():
        values[magnitude == 0] = 0.5
    values *= 2.0**-63 if signed else 2.0**-64
    if signed:  # the word's top bit becomes the sign bit, as Abseil assembles it
        values.view(np.uint64)[...] |= bits & np.uint64(1 << 63)
    return values


def _tail(engine: Mt19937, offset: int, negative: bool) -> tuple[float, int]:
    """A draw beyond R from the words at `offset` onward: (value, words used)."""
    used = 0
    while True:
        u1, u2 = unit_reals(engine.peek(offset + used + 2)[-2:]).tolist()
        tail = TAIL_SCALE * math.log(u1)
        depth = -math.log(u2)
        used += 2
        if depth + depth >= tail * tail:
            return (tail - TAIL_START if negative else TAIL_START - tail), used


def gaussian(engine: Mt19937, count: int) -> np.ndarray:
    """`count` draws of absl::Gaussian<double>(engine, 0, 1), in order.

    The rectangle and wedge tests run on a block of words at once; only the words outside
    their rectangle (about 3 in 100) are walked one by one, to find the words that the wedge
    and tail steps consume.
    """
    draws = []
    remaining = count
    while remaining > 0:
        size = min(remaining + remaining // 16 + 16, BLOCK)
        words = engine.peek(size)
        strips = (words & np.uint64(STRIPS - 1)).astype(np.intp)
        xs = unit_reals(words, signed=True) * EDGES[strips]
        inside = np.abs(xs) < EDGES[strips + 1]

        # A miss in strip i > 0 tests its wedge with the next word (so the block's last word
        # only ever starts a draw in the next block).
        limit = size - 1
        misses = np.flatnonzero(~inside[:limit])
        in_strip = strips[misses]
        v = unit_reals(words[misses + 1])
        upper, lower = DENSITIES[in_strip], DENSITIES[in_strip + 1]
        wedge = lower + v * (upper - lower)
        density = [math.exp(-0.5 * x * x) for x in xs[misses].tolist()]

        # Walk the misses in order: one that starts a draw consumes the words after it, which
        # then start nothing. `frontier` is the first word not consumed yet.
        values, emit = xs, inside.copy()
        emit[limit:] = False
        accepted, consumed, used_after = [], [], {}
        frontier = 0
        for miss, strip, height, top in zip(misses.tolist(), in_strip.tolist(),
                                             wedge.tolist(), density, strict=True):
            if miss < frontier:
                continue
            if strip == 0:
                values[miss], used = _tail(engine, miss + 1, values[miss] < 0)
                accepted.append(miss)
                consumed.extend(range(miss + 1, miss + 1 + used))
            else:
                used = 1
                if height < top:
                    accepted.append(miss)
                consumed.append(miss + 1)
            used_after[miss] = used
            frontier = miss + 1 + used
        emit[[c for c in consumed if c < limit]] = False
        emit[accepted] = True

        starts = np.flatnonzero(emit)
        if len(starts) >= remaining:
            last = int(starts[remaining - 1])
            starts = starts[:remaining]
            frontier = last + 1 + used_after.get(last, 0)
        else:
            frontier = max(frontier, limit)
        draws.append(values[starts])
        remaining -= len(starts)
        engine.advance(frontier)
    return np.concatenate(draws) if draws else np.empty(0)
