"""Abseil's Gaussian on mt19937: against a one-draw-at-a-time oracle, the original's values
and the normal distribution."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from azc.absl_random import (
    BLOCK,
    DENSITIES,
    EDGES,
    STRIP_AREA,
    STRIPS,
    TAIL_SCALE,
    TAIL_START,
    Mt19937,
    gaussian,
    unit_reals,
)

# --- an oracle: the algorithm as Abseil writes it, one Python int at a time ----------------------


def oracle_real(bits: int, signed: bool) -> float:
    """GenerateRealFromBits without zero, built field by field as an IEEE double."""
    sign = 0
    exponent = 1022
    if signed:
        sign, bits, exponent = bits >> 63, bits & (2**63 - 1), exponent + 1
    leading_zeros = 64 - bits.bit_length()
    bits = (bits << (leading_zeros & 63)) & (2**64 - 1)
    exponent -= leading_zeros
    fields = (sign << 63) | (exponent << 52) | ((bits >> 11) & (2**52 - 1))
    return float(np.array(fields, dtype=np.uint64).view(np.float64))


class OracleEngine:
    def __init__(self, seed):
        self.state = np.random.RandomState(seed)

    def next64(self) -> int:
        high, low = self.state.randint(0, 2**32, size=2, dtype=np.uint32).tolist()
        return (high << 32) | low


def oracle_gaussian(engine: OracleEngine, paths: dict) -> float:
    while True:
        bits = engine.next64()
        i = bits & 127
        j = oracle_real(bits, signed=True)
        x = j * EDGES[i]
        if abs(x) < EDGES[i + 1]:
            paths["rectangle"] += 1
            return x
        if i == 0:
            paths["tail"] += 1
            while True:
                t = TAIL_SCALE * math.log(oracle_real(engine.next64(), signed=False))
                y = -math.log(oracle_real(engine.next64(), signed=False))
                if y + y >= t * t:
                    return t - TAIL_START if j < 0 else TAIL_START - t
        v = oracle_real(engine.next64(), signed=False)
        if DENSITIES[i + 1] + v * (DENSITIES[i] - DENSITIES[i + 1]) < math.exp(-0.5 * x * x):
            paths["wedge"] += 1
            return x
        paths["rejected"] += 1


# --- the engine and the uniform reals -----------------------------------------------------------

def test_words_are_std_mt19937_outputs_first_one_high():
    words = Mt19937(5489).peek(2).tolist()
    # std::mt19937's default seed 5489 gives 3499211612 first (the C++ standard's check value).
    assert words[0] >> 32 == 3499211612
    raw = np.random.RandomState(5489)._bit_generator.random_raw(4).tolist()
    assert words == [(raw[0] << 32) | raw[1], (raw[2] << 32) | raw[3]]


def test_peek_looks_ahead_and_advance_consumes():
    engine = Mt19937(7)
    ahead = engine.peek(10).copy()
    engine.advance(3)
    np.testing.assert_array_equal(engine.peek(100)[:7], ahead[3:])


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**64 - 1), st.integers(0, 64), st.booleans())
def test_unit_reals_match_the_field_by_field_construction(bits, shift, signed):
    bits >>= shift  # short words too: they keep fewer than 53 significant bits
    got = unit_reals(np.array([bits], dtype=np.uint64), signed)[0]
    assert got == oracle_real(bits, signed)


def test_unit_reals_truncate_and_never_give_zero():
    top = 2**64 - 1
    assert unit_reals(np.array([top], dtype=np.uint64))[0] == 1 - 2**-53  # not rounded to 1
    assert unit_reals(np.array([0], dtype=np.uint64))[0] == 2**-65
    signed = unit_reals(np.array([2**63 - 1, 2**63, 0, top], dtype=np.uint64), signed=True)
    assert signed.tolist() == [1 - 2**-53, -(2**-64), 2**-64, -(1 - 2**-53)]


def test_tables_have_strips_of_equal_area_under_the_density():
    assert EDGES[1] == TAIL_START and EDGES[STRIPS] == 0.0 and DENSITIES[STRIPS] == 1.0
    assert np.all(np.diff(EDGES) < 0)
    np.testing.assert_allclose(DENSITIES, np.exp(-0.5 * EDGES**2), rtol=1e-12)
    np.testing.assert_allclose(EDGES[0] * DENSITIES[1], STRIP_AREA, rtol=1e-12)
    areas = EDGES[1:STRIPS - 1] * np.diff(DENSITIES[1:STRIPS])
    np.testing.assert_allclose(areas, STRIP_AREA, rtol=1e-12)
    # The strip under X[127] closes the ziggurat at the peak: its area comes out right too.
    assert abs(EDGES[STRIPS - 1] * (1.0 - DENSITIES[STRIPS - 1]) - STRIP_AREA) < 1e-3


# --- the sampler --------------------------------------------------------------------------------

def test_sampler_matches_the_oracle_draw_for_draw_on_every_path():
    paths = dict.fromkeys(("rectangle", "wedge", "rejected", "tail"), 0)
    for seed in (1, 100000, 2**32 - 1):
        oracle = OracleEngine(seed)
        expected = [oracle_gaussian(oracle, paths) for _ in range(40_000)]
        engine = Mt19937(seed)
        # Calls of all sizes, so that draws straddle the sampler's blocks.
        got = np.concatenate([gaussian(engine, n) for n in (1, 2, 997, 3, 38_000, 0, 997)])
        np.testing.assert_array_equal(got, expected)
        assert int(engine.peek(1)[0]) == oracle.next64()  # consumed exactly as many words
    assert min(paths.values()) > 10, paths


def test_sampler_crosses_blocks_as_if_drawn_one_by_one():
    whole = gaussian(Mt19937(3), 3 * BLOCK)
    engine = Mt19937(3)
    pieces = [gaussian(engine, n) for n in (BLOCK - 1, BLOCK + 2, BLOCK - 1)]
    np.testing.assert_array_equal(whole, np.concatenate(pieces))


def test_matrix_gaussian_set_anchor_of_the_original():
    # The original's executor test: MATRIX_GAUSSIAN_SET(0, 0.1) on an engine seeded 100000.
    # The op passes its float32 data as doubles to absl::Gaussian<double>.
    row = np.float64(np.float32(0.1)) * gaussian(Mt19937(100000), 4)
    np.testing.assert_allclose(row, [0.0804269, -0.00150771, 0.178303, 0.0416377], rtol=2e-5)


def normal_cdf(z):
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def test_draws_are_standard_normal():
    draws = gaussian(Mt19937(20240601), 1_000_000)
    n = len(draws)
    assert abs(draws.mean()) < 5 / math.sqrt(n)
    assert abs(draws.var() - 1.0) < 5 * math.sqrt(2 / n)
    assert abs(np.mean(draws**4) - 3.0) < 5 * math.sqrt(96 / n)

    # The share below each cut, deep into both tails (beyond R the tail method takes over).
    for cut in (-4.0, -TAIL_START, -2.0, -1.0, -0.1, 0.0, 0.5, 1.5, TAIL_START, 4.0):
        p = normal_cdf(cut)
        share = np.mean(draws < cut)
        assert abs(share - p) < 5 * math.sqrt(p * (1 - p) / n) + 1e-6, cut
    assert draws.max() > 4.0 and draws.min() < -4.0
