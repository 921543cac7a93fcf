"""The random stream that programs draw from when they run uniform() and gaussian().

Every engine — the NumPy reference and both native tiers — must produce the same numbers for
the same program, so the stream is specified here exactly, small enough to write in LLVM IR:

    state  = (seed + task * 0x632BE59BD9B4E019) mod 2**64       # one stream per (seed, task)
    next() = splitmix64 step: state += 0x9E3779B97F4A7C15, then mix state into a 64-bit z
    u      = ((z >> 12) + 0.5) * 2**-52                          # uniform on the open (0, 1)
    uniform(lo, hi)   = lo + (hi - lo) * u
    gaussian(mu, sd)  = mu + sd * sqrt(-2 log u1) * cos(2 pi u2)  # Box-Muller, one value per pair

NOTE: the original shares one mt19937 between the evolution and the programs it evaluates, so
a program's random ops draw different numbers each time it is evaluated. azc keeps that: search
gives each evaluation of an individual its own seed (`evaluation_seed`), so evolution cannot
select the lucky draws of one seed. An evaluation is still a pure function of the program and
its seed, which batching and parallel islands rely on.
"""

import math

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
TASK_STRIDE = 0x632BE59BD9B4E019
TWO_PI = 2.0 * math.pi


def stream_state(seed: int, task: int) -> int:
    """The initial state of the stream for one task of an evaluation."""
    return (seed + task * TASK_STRIDE) & MASK


def evaluation_seed(base: int, individual: int) -> int:
    """The seed of the `individual`-th evaluation of a search whose evaluator seed is `base`."""
    return splitmix64((base + individual * GOLDEN) & MASK)[1]


def splitmix64(state: int) -> tuple[int, int]:
    """One step: (new state, 64-bit output)."""
    state = (state + GOLDEN) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


class Stream:
    """The stream of one (seed, task); the reference executor's source of randomness."""

    def __init__(self, seed: int = 0, task: int = 0):
        self.state = stream_state(seed, task)

    def unit(self) -> float:
        """Uniform on the open interval (0, 1)."""
        self.state, z = splitmix64(self.state)
        return ((z >> 12) + 0.5) * 2.0**-52

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.unit()

    def gaussian(self, mean: float, sd: float) -> float:
        u1 = self.unit()
        u2 = self.unit()
        return mean + sd * (math.sqrt(-2.0 * math.log(u1)) * math.cos(TWO_PI * u2))
