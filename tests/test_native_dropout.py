"""Dropout's counter-based mask, called on lamina._native directly: the mask against a NumPy uint64
implementation of the generator written here, bit for bit; the forward and backward against the
mask; 1 and 2 threads bitwise; and the checks on p, key and counter.

    bits(i) = mix(key + (counter + i + 1) * 0x9E3779B97F4A7C15)        (uint64, wrapping)
    kept(i) = (bits(i) >> 32) >= floor(p * 2^32);  y = kept ? x / (1 - p) : 0
"""
import math

import numpy as np
import pytest

import lamina
from lamina import _native

GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def mix(z):
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def numpy_mask(n, p, key, counter):
    with np.errstate(over="ignore"):
        i = np.arange(n, dtype=np.uint64)
        bits = mix(np.uint64(key) + (np.uint64(counter) + i + np.uint64(1)) * GOLDEN)
    return (bits >> np.uint64(32)) >= np.uint64(math.floor(p * 2.0 ** 32))


def first_difference(a, b):
    idx = np.argwhere(np.asarray(a) != np.asarray(b))
    return tuple(int(i) for i in idx[0]) if len(idx) else None


KEYS = [(0, 0), (1, 2), (2 ** 64 - 1, 2 ** 64 - 1), (0x0123456789ABCDEF, 2 ** 63), (12345, 2 ** 64 - 5)]


@pytest.mark.parametrize("key, counter", KEYS)
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9, 1 - 2 ** -40])
@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 33, 1000])
def test_mask_equals_the_numpy_generator_bit_for_bit(n, p, key, counter):
    got = _native.dropout_mask(n, p, key, counter)
    want = numpy_mask(n, p, key, counter)
    assert got.dtype == np.bool_ and got.shape == (n,), f"mask shape {got.shape} dtype {got.dtype}"
    where = first_difference(got, want)
    assert where is None, f"n={n} p={p} key={key} counter={counter}: first difference at {where}: " \
                          f"native {got[where]} numpy {want[where]}"


def test_counters_wrap_around_two_to_the_64():
    # counter + i + 1 wraps: the mask at counter 2^64 - 3 continues into counter 0's.
    tail = _native.dropout_mask(6, 0.5, 7, 2 ** 64 - 3)
    head = _native.dropout_mask(4, 0.5, 7, 0)
    assert np.array_equal(tail[3:], head[:3]), f"wrapped mask {tail.astype(int)} vs {head.astype(int)}"


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_keep_fraction_is_one_minus_p(p):
    n = 200_000
    keep = _native.dropout_mask(n, p, 42, 1000)
    fraction = keep.mean()
    # Binomial: 5 standard deviations of the mean of n draws.
    tolerance = 5 * math.sqrt(p * (1 - p) / n)
    assert abs(fraction - (1 - p)) <= tolerance, f"p={p}: kept {fraction:.5f}, expected {1 - p} +- {tolerance:.5f}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1000,), (7, 9), (2, 3, 4, 5), ()])
@pytest.mark.parametrize("p", [0.0, 0.25, 0.5])
def test_forward_scales_kept_elements_and_zeroes_the_rest(p, shape, dtype, threads):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    key, counter = 99, 2 ** 40
    y = _native.dropout(x, p, key, counter)
    keep = numpy_mask(x.size, p, key, counter).reshape(shape)
    scale = dtype(1.0 / (1.0 - p))
    want = np.where(keep, x * scale, dtype(0))
    assert y.dtype == dtype and y.shape == shape, f"y {y.shape} {y.dtype}"
    where = first_difference(y, want)
    assert where is None, f"p={p} {shape} {dtype.__name__}: first difference at {where}: {y[where]} vs {want[where]}"
    dy = rng.standard_normal(shape).astype(dtype)
    dx = _native.dropout_backward(dy, p, key, counter)
    want_dx = np.where(keep, dy * scale, dtype(0))
    where = first_difference(dx, want_dx)
    assert where is None, f"backward p={p} {shape}: first difference at {where}: {dx[where]} vs {want_dx[where]}"


def test_p_zero_keeps_every_element_unchanged():
    x = np.random.default_rng(2).standard_normal(513)
    assert _native.dropout_mask(513, 0.0, 5, 6).all()
    assert np.array_equal(_native.dropout(x, 0.0, 5, 6), x)
    assert np.array_equal(_native.dropout_backward(x, 0.0, 5, 6), x)


def test_backward_is_the_forward_mask_applied_to_the_gradient():
    # d(sum(w * dropout(x))) / dx = dropout_backward(w): the Jacobian is diagonal, so check it exactly.
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(64), rng.standard_normal(64)
    dx = _native.dropout_backward(w, 0.3, 11, 12)
    y = _native.dropout(x, 0.3, 11, 12)
    kept = y != 0
    assert np.array_equal(dx[kept], w[kept] * (1 / 0.7)), "gradient of kept elements"
    assert np.array_equal(dx[~kept], np.zeros((~kept).sum())), "gradient of dropped elements"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_and_two_threads_agree_bitwise(dtype):
    x = np.random.default_rng(4).standard_normal(300_000).astype(dtype)  # large enough to split
    before = lamina.get_num_threads()
    results = []
    try:
        for t in (1, 2):
            lamina.set_num_threads(t)
            results.append((_native.dropout(x, 0.4, 8, 9), _native.dropout_backward(x, 0.4, 8, 9),
                            _native.dropout_mask(x.size, 0.4, 8, 9)))
    finally:
        lamina.set_num_threads(before)
    for name, a, b in zip(("forward", "backward", "mask"), results[0], results[1]):
        where = first_difference(a, b)
        assert where is None, f"{name}: 1 vs 2 threads differ first at {where}: {a[where]} vs {b[where]}"


def test_different_counters_give_different_masks_and_ranges_compose():
    # Drawing 10 then 20 elements from consecutive counters is one draw of 30.
    whole = _native.dropout_mask(30, 0.5, 3, 100)
    assert np.array_equal(np.concatenate([_native.dropout_mask(10, 0.5, 3, 100), _native.dropout_mask(20, 0.5, 3, 110)]),
                          whole)
    assert not np.array_equal(_native.dropout_mask(64, 0.5, 3, 0), _native.dropout_mask(64, 0.5, 4, 0)), \
        "keys 3 and 4 gave the same 64-element mask"


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5, float("nan"), float("inf")])
def test_bad_p_raises_value_error(p):
    x = np.ones(4)
    for call in (lambda: _native.dropout(x, p, 0, 0), lambda: _native.dropout_backward(x, p, 0, 0),
                 lambda: _native.dropout_mask(4, p, 0, 0)):
        with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
            call()


@pytest.mark.parametrize("key, counter, exc", [(-1, 0, ValueError), (0, 2 ** 64, ValueError), (1.5, 0, TypeError),
                                               (0, "3", TypeError), (None, 0, TypeError), (True, 0, TypeError)])
def test_key_and_counter_must_be_uint64_ints(key, counter, exc):
    with pytest.raises(exc, match="key|counter"):
        _native.dropout(np.ones(3), 0.5, key, counter)


def test_numpy_integer_keys_and_counters_draw_like_ints():
    want = _native.dropout_mask(50, 0.5, 2 ** 64 - 1, 12)
    got = _native.dropout_mask(50, 0.5, np.uint64(2 ** 64 - 1), np.int64(12))
    assert np.array_equal(got, want), f"mask from NumPy scalars {got.astype(int)} vs ints {want.astype(int)}"


def test_bad_arrays_and_sizes():
    with pytest.raises(TypeError, match="float32 or float64"):
        _native.dropout(np.ones(3, np.int64), 0.5, 0, 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        _native.dropout(np.ones((4, 4))[:, ::2], 0.5, 0, 0)
    with pytest.raises(ValueError, match="n must be >= 0"):
        _native.dropout_mask(-1, 0.5, 0, 0)
