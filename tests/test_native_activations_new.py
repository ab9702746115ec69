"""The activations added with the step plan (leaky_relu, gelu, gelu_tanh, log_softmax) and the NLL
loss, called on lamina._native directly and held against float64 NumPy formulas written here.

Forward against the formula; backward against the formula's derivative and, in float64, against
central finite differences of the native forward; the fused GEMM epilogue bitwise against the
product followed by the standalone activation; 1 and 2 threads bitwise; every ISA the CPU has.
"""
import math

import numpy as np
import pytest

from conftest import REFERENCE_TOLERANCES, elementwise_tol

import lamina
from lamina import _native

SIZES = [0, 1, 7, 8, 9, 33, 1000]
DTYPES = [np.float32, np.float64]
ELEMENTWISE = ["leaky_relu", "gelu", "gelu_tanh"]
SLOPE = 0.01
_erf = np.vectorize(math.erf, otypes=[np.float64])
_C = math.sqrt(2.0 / math.pi)


# ---- float64 formulas (the spec) -------------------------------------------------------------

def forward64(kind, x, slope=SLOPE):
    x = np.asarray(x, np.float64)
    if kind == "leaky_relu":
        return np.where(x > 0, x, slope * x)
    if kind == "gelu":
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
    if kind == "gelu_tanh":
        return 0.5 * x * (1.0 + np.tanh(_C * (x + 0.044715 * x ** 3)))
    if kind == "log_softmax":
        shifted = x - x.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    raise AssertionError(kind)


def backward64(kind, dy, x, slope=SLOPE):
    """dx from the upstream gradient dy and the activation's input x."""
    dy, x = np.asarray(dy, np.float64), np.asarray(x, np.float64)
    if kind == "leaky_relu":
        return np.where(x > 0, dy, slope * dy)
    if kind == "gelu":
        cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        return dy * (cdf + x * pdf)
    if kind == "gelu_tanh":
        t = np.tanh(_C * (x + 0.044715 * x ** 3))
        return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _C * (1 + 3 * 0.044715 * x * x))
    if kind == "log_softmax":
        y = forward64(kind, x)
        return dy - np.exp(y) * dy.sum(axis=1, keepdims=True)
    raise AssertionError(kind)


# ---- helpers -----------------------------------------------------------------------------------

def assert_within(got, want, bound, what):
    """|got - want| <= bound elementwise (bound broadcasts); names the first offending index."""
    got64, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got64.shape == want.shape, f"{what}: shape {got64.shape}, expected {want.shape}"
    bad = ~(np.abs(got64 - want) <= bound)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        b = np.broadcast_to(bound, want.shape)[idx]
        pytest.fail(f"{what}: shape {want.shape}, {int(bad.sum())} of {bad.size} outside the bound; first at "
                    f"{idx}: got {got64[idx]!r}, expected {want[idx]!r}, bound {b!r}")


def assert_bitwise(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, f"{what}: {a.shape} {a.dtype} vs {b.shape} {b.dtype}"
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    if not same.all():
        idx = tuple(int(i) for i in np.argwhere(~same)[0])
        pytest.fail(f"{what}: shape {a.shape}, {int((~same).sum())} elements differ; first at {idx}: "
                    f"{a[idx]!r} != {b[idx]!r}")


def inputs(n, dtype, seed=0, away_from_zero=False):
    """n values spread over [-6, 6] (where GELU's two tails and its middle all matter), plus exact
    zeros and the ends when there is room for them."""
    rng = np.random.default_rng(seed + n)
    x = rng.uniform(-6.0, 6.0, n)
    if n >= 9:
        x[:5] = [0.0, -0.0, 6.0, -6.0, 1e-3]
    if away_from_zero:  # for finite differences: keep the kink of leaky_relu out of reach of h
        x = np.where(np.abs(x) < 1e-2, x + 0.5, x)
    return x.astype(dtype)


def rows_inputs(rows, cols, dtype, seed=0):
    rng = np.random.default_rng(seed + 7 * rows + cols)
    return (rng.standard_normal((rows, cols)) * 3).astype(dtype)


# Elementwise results: libm's erfc/exp/tanh within a few ulps, then a few roundings; the bound is
# elementwise_tol's 8 eps relative + 8 eps absolute (absolute covers the tails, where GELU is tiny
# and its relative error grows with the argument of erfc). The float64 formulas above lose relative
# accuracy the same way in GELU's left tail (1 + erf), which the absolute part covers too.
def elementwise_bound(dtype, want):
    tol = elementwise_tol(dtype)
    return tol["atol"] + tol["rtol"] * np.abs(want)


def derivative_terms(kind, x):
    """The size of the terms a derivative is summed from, which bounds its absolute rounding error
    where they cancel: GELU-tanh's 0.5 (1 + t) and 0.5 x (1 - t^2) du/dx nearly cancel in the left
    tail, and 1 - t^2 with t = tanh(u) near -1 carries an absolute error of an ulp of 1, so the
    result is known only to eps * |x| du/dx there (in the formula above as much as in the kernel)."""
    x = np.abs(np.asarray(x, np.float64))
    if kind == "gelu_tanh":
        return 1.0 + x * _C * (1 + 3 * 0.044715 * x * x)
    if kind == "gelu":
        return 1.0 + x
    return np.ones_like(x)


# ---- elementwise kinds -------------------------------------------------------------------------

@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ELEMENTWISE)
def test_elementwise_forward_and_backward_match_the_formula(kind, dtype, n, threads, isa):
    x = inputs(n, dtype)
    y = _native.activation(x, kind)
    assert y.dtype == dtype and y.shape == x.shape, f"{kind}: output {y.shape} {y.dtype}"
    want = forward64(kind, x)
    assert_within(y, want, elementwise_bound(dtype, want), f"{kind} forward {dtype.__name__} n={n}")
    dy = inputs(n, dtype, seed=1) / 3
    dx = _native.activation_backward(dy, x, kind)
    want_dx = backward64(kind, dy, x)
    bound = elementwise_bound(dtype, want_dx) + 8 * np.finfo(dtype).eps * np.abs(dy) * derivative_terms(kind, x)
    assert_within(dx, want_dx, bound, f"{kind} backward {dtype.__name__} n={n}")


@pytest.mark.parametrize("slope", [0.0, 0.2, -0.5, 1.5])
@pytest.mark.parametrize("dtype", DTYPES)
def test_leaky_relu_honours_its_slope_exactly(slope, dtype):
    x = inputs(33, dtype)
    y = _native.activation(x, "leaky_relu", negative_slope=slope)
    s = dtype(slope)
    assert_bitwise(y, np.where(x > 0, x, s * x).astype(dtype), f"leaky_relu slope {slope}")
    dy = inputs(33, dtype, seed=3)
    dx = _native.activation_backward(dy, x, "leaky_relu", negative_slope=slope)
    assert_bitwise(dx, np.where(x > 0, dy, s * dy).astype(dtype), f"leaky_relu backward slope {slope}")


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 1, 3, 2), ()])
@pytest.mark.parametrize("kind", ELEMENTWISE)
def test_elementwise_kinds_take_any_rank(kind, shape):
    x = np.random.default_rng(2).standard_normal(shape)
    y = _native.activation(x, kind)
    assert y.shape == shape, f"{kind}: shape {y.shape}, expected {shape}"
    assert_within(y, forward64(kind, x), elementwise_bound(np.float64, forward64(kind, x)), f"{kind} {shape}")
    dx = _native.activation_backward(np.ones(shape), x, kind)
    assert dx.shape == shape


@pytest.mark.parametrize("kind", ELEMENTWISE + ["log_softmax"])
def test_backward_matches_central_differences_in_float64(kind):
    h, rtol, atol = REFERENCE_TOLERANCES.fd_h, REFERENCE_TOLERANCES.fd_rtol, REFERENCE_TOLERANCES.fd_atol
    if kind == "log_softmax":
        x = rows_inputs(5, 7, np.float64)
        dy = rows_inputs(5, 7, np.float64, seed=4)
        y = _native.activation(x, kind)
        dx = _native.activation_backward(dy, y, kind)
        fd = np.empty_like(x)
        for idx in np.ndindex(*x.shape):  # d/dx_idx of sum(dy * log_softmax(x))
            e = np.zeros_like(x)
            e[idx] = h
            fd[idx] = (np.sum(dy * _native.activation(x + e, kind)) - np.sum(dy * _native.activation(x - e, kind))) / (2 * h)
    else:
        x = inputs(33, np.float64, away_from_zero=True)
        dy = inputs(33, np.float64, seed=5)
        dx = _native.activation_backward(dy, x, kind)
        fd = dy * (_native.activation(x + h, kind) - _native.activation(x - h, kind)) / (2 * h)
    assert_within(dx, fd, atol + rtol * np.abs(fd), f"{kind} backward vs central differences")


# ---- log_softmax ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cols", [1, 4, 9, 33])
@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_forward_and_backward_match_the_formula(dtype, rows, cols, threads, isa):
    x = rows_inputs(rows, cols, dtype)
    y = _native.activation(x, "log_softmax")
    want = forward64("log_softmax", x)
    eps = np.finfo(dtype).eps
    # x - max and the log of a sum of cols exponentials (each within an ulp or two): a few eps of
    # |y| = |x - max| + log-sum, plus cols eps for the sum.
    assert_within(y, want, (8 + cols) * eps * (1 + np.abs(want)), f"log_softmax forward {dtype.__name__} {x.shape}")
    dy = rows_inputs(rows, cols, dtype, seed=6)
    dx = _native.activation_backward(dy, y, "log_softmax")
    want_dx = backward64("log_softmax", dy, x)
    # dy - e^y * sum(dy): the sum of cols terms carries ~cols eps of sum|dy|, and e^y that of y.
    scale = np.abs(dy) + np.exp(want) * np.abs(dy).sum(axis=1, keepdims=True) if rows else 0.0
    assert_within(dx, want_dx, (8 + 2 * cols) * eps * scale + eps, f"log_softmax backward {dtype.__name__} {x.shape}")


def test_log_softmax_rows_are_stable_at_large_magnitudes():
    x = np.array([[1000.0, 0.0, -1000.0], [-1e30, -1e30, -1e30]], np.float32)
    y = _native.activation(x, "log_softmax")
    assert np.isfinite(y).all(), f"log_softmax of large logits gave {y}"
    assert_within(y, forward64("log_softmax", x.astype(np.float64)), 1e-3 * np.abs(forward64("log_softmax", x)) + 1e-6,
                  "log_softmax at large magnitudes")


def test_log_softmax_needs_2d_input():
    with pytest.raises(ValueError, match="2-D"):
        _native.activation(np.zeros(5), "log_softmax")
    with pytest.raises(ValueError, match="2-D"):
        _native.activation_backward(np.zeros(5), np.zeros(5), "log_softmax")


# ---- threads: split only independent outputs ---------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ELEMENTWISE + ["log_softmax"])
def test_one_and_two_threads_agree_bitwise_on_sizes_that_split(kind, dtype):
    # Large enough that parallel_for uses two threads (the sizes above stay on one).
    x = rows_inputs(4000, 33, dtype) if kind == "log_softmax" else inputs(200_000, dtype)
    dy = rows_inputs(4000, 33, dtype, seed=8) if kind == "log_softmax" else inputs(200_000, dtype, seed=8)
    before = lamina.get_num_threads()
    results = []
    try:
        for t in (1, 2):
            lamina.set_num_threads(t)
            y = _native.activation(x, kind)
            saved = y if kind == "log_softmax" else x
            results.append((y, _native.activation_backward(dy, saved, kind)))
    finally:
        lamina.set_num_threads(before)
    assert_bitwise(results[0][0], results[1][0], f"{kind} forward, 1 vs 2 threads")
    assert_bitwise(results[0][1], results[1][1], f"{kind} backward, 1 vs 2 threads")


# ---- fused epilogue ------------------------------------------------------------------------------

ALL_ELEMENTWISE = ["relu", "sigmoid", "tanh"] + ELEMENTWISE


@pytest.mark.parametrize("mkn", [(1, 1, 1), (7, 19, 5), (6, 16, 8), (13, 33, 40), (64, 70, 130), (5, 3, 0)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ALL_ELEMENTWISE)
def test_fused_linear_equals_linear_then_activation_bitwise(kind, dtype, mkn, isa, packing, threads):
    m, n, k = mkn
    rng = np.random.default_rng(m * 100 + n)
    x = rng.standard_normal((m, k)).astype(dtype)
    W = rng.standard_normal((n, k)).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    slope = 0.3 if kind == "leaky_relu" else SLOPE
    fused = _native.linear(x, W, b, kind, negative_slope=slope)
    separate = _native.activation(_native.linear(x, W, b, None), kind, negative_slope=slope)
    assert_bitwise(fused, separate, f"linear+{kind} {dtype.__name__} (m, n, k)={mkn} isa={isa}")
    # The same through gemm's epilogue, with beta and bias.
    c0 = rng.standard_normal((m, n)).astype(dtype)
    c_fused, c_plain = c0.copy(), c0.copy()
    _native.gemm(c_fused, x, W.T, b, 0.5, 2.0, kind, slope)
    _native.gemm(c_plain, x, W.T, b, 0.5, 2.0, None)
    assert_bitwise(c_fused, _native.activation(c_plain, kind, negative_slope=slope),
                   f"gemm+{kind} {dtype.__name__} (m, n, k)={mkn}")


def test_old_positional_calls_still_work():
    x = np.linspace(-2, 2, 9)
    y = _native.activation(x, "relu")
    assert_bitwise(_native.activation_backward(np.ones(9), y, "relu"), (x > 0).astype(np.float64), "relu backward")
    assert_bitwise(_native.activation_backward(dy=np.ones(9), saved=y, kind="relu"), (x > 0).astype(np.float64),
                   "relu backward by keyword")
    assert _native.linear(x.reshape(3, 3), np.eye(3), None, None).shape == (3, 3)


@pytest.mark.parametrize("call", [
    lambda: _native.activation(np.ones(3), "leaky_relu", negative_slope=float("nan")),
    lambda: _native.linear(np.ones((2, 3)), np.ones((4, 3)), None, "leaky_relu", negative_slope=float("inf")),
    lambda: _native.activation(np.ones(3), "swish"),
    lambda: _native.linear(np.ones((2, 3)), np.ones((4, 3)), None, "log_softmax"),
    lambda: _native.activation_backward(np.ones(3), np.ones(4), "gelu"),
])
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_integer_input_is_a_type_error():
    with pytest.raises(TypeError, match="float32 or float64"):
        _native.activation(np.ones(3, np.int64), "gelu")


# ---- nll -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("rows", [1, 7, 8, 33, 1000])
@pytest.mark.parametrize("dtype", DTYPES)
def test_nll_matches_the_formula(dtype, rows, threads):
    cols = 5
    rng = np.random.default_rng(rows)
    logp = forward64("log_softmax", rng.standard_normal((rows, cols))).astype(dtype)
    labels = rng.integers(0, cols, rows)
    loss, grad = _native.nll(logp, labels)
    want = -np.mean(logp.astype(np.float64)[np.arange(rows), labels])
    # Summed in double in row order: a few ulps of double per term.
    assert abs(loss - want) <= 4 * rows * np.finfo(np.float64).eps * max(1.0, abs(want)), \
        f"nll loss rows={rows}: {loss!r} vs {want!r}"
    want_grad = np.zeros((rows, cols), dtype)
    want_grad[np.arange(rows), labels] = -dtype(1.0 / rows)
    assert_bitwise(grad, want_grad, f"nll gradient {dtype.__name__} rows={rows}")


def test_nll_after_log_softmax_equals_cross_entropy_closely():
    rng = np.random.default_rng(0)
    z, labels = rng.standard_normal((16, 6)), rng.integers(0, 6, 16)
    loss_nll, _ = _native.nll(_native.activation(z, "log_softmax"), labels)
    loss_ce, _ = _native.cross_entropy(z, labels)
    assert abs(loss_nll - loss_ce) <= 1e-14, f"nll(log_softmax) {loss_nll!r} vs cross_entropy {loss_ce!r}"


@pytest.mark.parametrize("labels, exc, fragment", [
    (np.array([0, 5, 1]), ValueError, r"labels\[1\] = 5 is out of range for 5 classes"),
    (np.array([0, -1, 1]), ValueError, r"labels\[1\] = -1"),
    (np.array([0, 1]), ValueError, "labels"),
    (np.array([0.0, 1.0, 2.0]), TypeError, "int64"),
    (np.array([0, 1, 2], np.int32), TypeError, "int64"),
])
def test_nll_rejects_bad_labels(labels, exc, fragment):
    with pytest.raises(exc, match=fragment):
        _native.nll(np.zeros((3, 5)), labels)
