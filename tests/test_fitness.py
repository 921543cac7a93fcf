"""Fitness conversions and task combination, against the original's unit-test values (§6.7)."""

import math

import pytest

from azc.fitness import accuracy_fitness, combine_fitnesses, flip_and_squash, rms_fitness


def test_flip_and_squash_maps_zero_error_to_one():
    assert flip_and_squash(0.0) == 1.0


def test_flip_and_squash_is_one_minus_two_over_pi_atan():
    for x in (1e-4, 0.1, 1.0, 5.7301812, 1e6):
        assert flip_and_squash(x) == pytest.approx(1.0 - 2.0 / math.pi * math.atan(x), abs=1e-15)


@pytest.mark.parametrize("x", [math.nan, math.inf, -math.inf])
def test_flip_and_squash_gives_zero_for_nan_and_inf(x):
    assert flip_and_squash(x) == 0.0


def test_rms_and_accuracy_fitness_divide_by_the_stored_count():
    assert rms_fitness(4.0 * 10, 10) == flip_and_squash(2.0)
    assert accuracy_fitness(3, 10) == pytest.approx(0.7)


def test_combine_mean():
    assert combine_fitnesses([0.4, 0.2, 0.6, 0.8], "mean") == pytest.approx(0.5)


def test_combine_median_of_odd_count():
    assert combine_fitnesses([0.9, 0.12, 0.13, 0.1, 0.11], "median") == 0.12


def test_combine_median_of_even_count_is_the_upper_median():
    assert combine_fitnesses([0.4, 0.2, 0.6, 0.8], "median") == 0.6


def test_combine_rejects_unknown_modes_and_empty_lists():
    with pytest.raises(ValueError):
        combine_fitnesses([0.5], "max")
    with pytest.raises(ValueError):
        combine_fitnesses([], "mean")
