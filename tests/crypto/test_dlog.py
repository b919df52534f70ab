"""Bounded discrete log (tally decoding)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto._dlog import MAX_BOUND, discrete_log
from crypto._errors import CryptoError, DecodingError
from crypto._group import IDENTITY, G, L, Scalar, small_multiple


def test_small_values_exact() -> None:
    acc = IDENTITY
    for m in range(300):
        assert discrete_log(acc, 300) == m
        acc = acc + G


@pytest.mark.parametrize("bound", [0, 1, 63, 64, 4095, 4096, 4097, 10**6])
def test_identity_is_zero(bound: int) -> None:
    assert discrete_log(IDENTITY, bound) == 0


@given(st.integers(min_value=0, max_value=10_000_000))
@settings(max_examples=25, deadline=None)
def test_tally_up_to_ten_million(m: int) -> None:
    assert discrete_log(Scalar(m) * G, 10_000_000) == m


@pytest.mark.parametrize("bound", [0, 1, 5, 4095, 4096, 4097, 16_777_215, 16_777_216])
def test_bound_is_inclusive_and_strict(bound: int) -> None:
    assert discrete_log(Scalar(bound) * G, bound) == bound
    with pytest.raises(DecodingError):
        discrete_log(Scalar(bound + 1) * G, bound)


def test_value_just_outside_bound_within_same_giant_step_rejected() -> None:
    # bound 100 uses a 64-entry table; 120 = 1·64 + 56 is found by the walk but exceeds the bound.
    with pytest.raises(DecodingError):
        discrete_log(small_multiple(120), 100)


@given(st.integers(min_value=5001, max_value=L - 1))
@settings(max_examples=10, deadline=None)
def test_point_outside_bound_not_found(s: int) -> None:
    with pytest.raises(DecodingError) as info:
        discrete_log(Scalar(s) * G, 5000)
    assert isinstance(info.value, CryptoError)


def test_negative_value_not_found() -> None:
    with pytest.raises(DecodingError):
        discrete_log(-G, 10**6)


@pytest.mark.parametrize("bound", [-1, MAX_BOUND + 1, True, 1.0])
def test_bad_bounds(bound: object) -> None:
    with pytest.raises(ValueError):
        discrete_log(G, bound)  # type: ignore[arg-type]


def test_needs_a_point() -> None:
    with pytest.raises(TypeError):
        discrete_log(G.to_bytes(), 10)  # type: ignore[arg-type]
