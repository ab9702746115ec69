"""Property-based tests (hypothesis): random shapes (0 and 1 included), memory layouts, dtypes, kernel
paths and thread counts. Every native op equals lamina.reference within the tolerances of conftest.py;
forward and backward keep shapes; Sequential equals its layers applied by hand, bitwise.

Array values come from a drawn seed rather than from hypothesis itself: the properties are about
shapes and layouts, and NumPy's generator is much faster than drawing element by element.
"""
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402

import lamina as lm  # noqa: E402
from lamina import _native, ops, reference  # noqa: E402
from conftest import elementwise_tol, gemm_atol  # noqa: E402

DTYPES = st.sampled_from([np.float32, np.float64])
SEEDS = st.integers(0, 2**32 - 1)
LAYOUTS = st.sampled_from(["C", "F", "strided", "reversed"])
THREADS = st.sampled_from([1, 2])
ISAS = st.sampled_from([isa for isa, key in (("avx512", "cpu_avx512"), ("avx2", "cpu_avx2_fma"), ("generic", None))
                        if key is None or _native.build_info()[key]])


def small(max_value=40):
    """Sizes with 0, 1 and the micro-kernel edges (MR = 6, NR = 8 or 16) among the likely ones."""
    return st.one_of(st.sampled_from([0, 1, 5, 6, 7, 8, 15, 16, 17]), st.integers(0, max_value))


def positive(max_value=40):
    return st.one_of(st.sampled_from([1, 5, 6, 7, 8, 16, 17]), st.integers(1, max_value))


def values(seed, shape, dtype, scale=1.0):
    return np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale, dtype=dtype)


def laid_out(arr, layout):
    """The same values in another memory layout: Fortran order, a strided view into a larger
    buffer, or a view with negative strides."""
    if arr.ndim == 0:
        return arr  # one element has one layout (and np.asfortranarray would make it (1,))
    if layout == "F":
        return np.asfortranarray(arr)
    if layout == "strided":
        big = np.zeros(tuple(2 * s + 1 for s in arr.shape), arr.dtype)
        view = big[tuple(slice(1, None, 2) for _ in arr.shape)]
        view[...] = arr
        return view
    if layout == "reversed":
        flipped = tuple(slice(None, None, -1) for _ in arr.shape)
        return arr[flipped].copy()[flipped]
    return arr


class settings_of:
    """Set lamina's thread count and kernel path for the body of a `with`, then restore them."""

    def __init__(self, threads, isa="keep"):
        self.threads, self.isa = threads, isa

    def __enter__(self):
        self.before = lm.get_num_threads(), _native.isa()
        lm.set_num_threads(self.threads)
        if self.isa != "keep":
            _native.set_isa(self.isa)

    def __exit__(self, *exc):
        lm.set_num_threads(self.before[0])
        _native.set_isa(self.before[1])


def assert_within(got, want, bound, what):
    """|got - want| <= bound elementwise (NaN nowhere); the message names the worst element."""
    got = np.asarray(got)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, reference {want.shape}"
    err = np.abs(got.astype(np.float64) - want)
    bad = ~(err <= bound)
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, err - bound, np.inf)), err.shape)
        raise AssertionError(f"{what}: shape {got.shape}, at {i} got {got[i]!r}, reference {want[i]!r}, "
                             f"error {err[i]:.3g} > allowed {np.broadcast_to(bound, err.shape)[i]:.3g}")


def elementwise_bound(dtype, want):
    tol = elementwise_tol(dtype)
    return tol["atol"] + tol["rtol"] * np.abs(want)


# ---------------------------------------------------------------------------------------------
# GEMM and dense


@given(m=small(), n=small(), k=small(), dtype=DTYPES, seed=SEEDS, trans_a=st.booleans(), trans_b=st.booleans(),
       layout_a=LAYOUTS, layout_b=LAYOUTS, alpha=st.sampled_from([1.0, -0.5, 2.0]), with_c=st.booleans(),
       beta=st.sampled_from([0.0, 1.0, -2.0]), with_bias=st.booleans(),
       activation=st.sampled_from([None, "relu", "sigmoid", "tanh"]), threads=THREADS, isa=ISAS)
def test_gemm_equals_the_reference(m, n, k, dtype, seed, trans_a, trans_b, layout_a, layout_b, alpha, with_c, beta,
                                   with_bias, activation, threads, isa):
    a = values(seed, (k, m) if trans_a else (m, k), dtype)
    b = values(seed + 1, (n, k) if trans_b else (k, n), dtype)
    c = values(seed + 2, (m, n), dtype) if with_c else None
    bias = values(seed + 3, (n,), dtype) if with_bias else None
    kw = dict(trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta, bias=bias, activation=activation)
    want = reference.gemm(a, b, None if c is None else c.copy(), **kw)
    c_native = None if c is None else c.copy()
    with settings_of(threads, isa):
        got = ops.gemm(laid_out(a, layout_a), laid_out(b, layout_b), c_native, **kw)
    if c is not None:
        assert got is c_native, "gemm must return the c it was given"
    # |alpha| |op(A)| |op(B)| + |beta C| + |bias| bounds every term of the sum; the activations are
    # 1-Lipschitz, and add their own rounding on top.
    opa = np.abs(a.T if trans_a else a).astype(np.float64)
    opb = np.abs(b.T if trans_b else b).astype(np.float64)
    magnitude = abs(alpha) * (opa @ opb)
    if c is not None:
        magnitude = magnitude + abs(beta) * np.abs(c)
    if bias is not None:
        magnitude = magnitude + np.abs(bias)
    bound = gemm_atol(dtype, k, magnitude) + elementwise_bound(dtype, want)
    assert_within(got, want, bound, f"gemm m={m} n={n} k={k} trans=({trans_a}, {trans_b}) {activation}")


@given(m=st.integers(1, 300), n=st.integers(1, 300), k=st.integers(1, 300), dtype=DTYPES, seed=SEEDS, isa=ISAS)
def test_gemm_is_bitwise_identical_for_1_and_2_threads(m, n, k, dtype, seed, isa):
    a, b = values(seed, (m, k), dtype), values(seed + 1, (n, k), dtype)
    with settings_of(1, isa):
        one = ops.linear(a, b, activation="relu")
    with settings_of(2, isa):
        two = ops.linear(a, b, activation="relu")
    np.testing.assert_array_equal(one, two, err_msg=f"1 vs 2 threads, m={m} n={n} k={k}")


@given(batch=small(), n_in=small(), n_out=small(), dtype=DTYPES, seed=SEEDS, with_bias=st.booleans(),
       activation=st.sampled_from([None, "relu", "sigmoid", "tanh"]), layout=LAYOUTS, accumulate=st.booleans(),
       need_dx=st.booleans(), threads=THREADS)
def test_linear_and_its_backward_equal_the_reference(batch, n_in, n_out, dtype, seed, with_bias, activation, layout,
                                                     accumulate, need_dx, threads):
    x, W = values(seed, (batch, n_in), dtype), values(seed + 1, (n_out, n_in), dtype)
    b = values(seed + 2, (n_out,), dtype) if with_bias else None
    dy = values(seed + 3, (batch, n_out), dtype)
    dW0 = values(seed + 4, (n_out, n_in), dtype) if accumulate else None
    db0 = values(seed + 5, (n_out,), dtype) if accumulate else None
    with settings_of(threads):
        y = ops.linear(laid_out(x, layout), laid_out(W, layout), b, activation)
        dx, dW, db = ops.linear_backward(laid_out(dy, layout), laid_out(x, layout), W,
                                         None if dW0 is None else dW0.copy(), None if db0 is None else db0.copy(),
                                         need_dx=need_dx)
    want = reference.linear(x, W, b, activation)
    mag = np.abs(x).astype(np.float64) @ np.abs(W).T + (0 if b is None else np.abs(b))
    assert_within(y, want, gemm_atol(dtype, n_in, mag) + elementwise_bound(dtype, want), "linear")
    rdx, rdW, rdb = reference.linear_backward(dy, x, W, None if dW0 is None else dW0.copy(),
                                              None if db0 is None else db0.copy(), need_dx=need_dx)
    ady, ax, aW = (np.abs(v).astype(np.float64) for v in (dy, x, W))
    if need_dx:
        assert_within(dx, rdx, gemm_atol(dtype, n_out, ady @ aW), "linear_backward dx")
    else:
        assert dx is None
    base = 0 if dW0 is None else np.abs(dW0)
    assert_within(dW, rdW, gemm_atol(dtype, batch, ady.T @ ax + base), "linear_backward dW")
    base = 0 if db0 is None else np.abs(db0)
    assert_within(db, rdb, gemm_atol(dtype, batch, ady.sum(axis=0) + base), "linear_backward db")


# ---------------------------------------------------------------------------------------------
# Activations


@given(shape=st.lists(small(12), min_size=0, max_size=3).map(tuple), dtype=DTYPES, seed=SEEDS,
       name=st.sampled_from(["relu", "sigmoid", "tanh"]), layout=LAYOUTS, scale=st.sampled_from([1.0, 10.0, 100.0]),
       threads=THREADS)
def test_elementwise_activations_equal_the_reference(shape, dtype, seed, name, layout, scale, threads):
    x, dy = values(seed, shape, dtype, scale), values(seed + 1, shape, dtype)
    with settings_of(threads):
        y = getattr(ops, name)(laid_out(x, layout))
        dx = getattr(ops, name + "_backward")(laid_out(dy, layout), laid_out(y, layout))
    want = getattr(reference, name)(x)
    assert_within(y, want, elementwise_bound(dtype, want), f"{name} {shape}")
    # The backward from the native forward's own y: it tests the backward alone.
    want = getattr(reference, name + "_backward")(dy, y)
    assert_within(dx, want, elementwise_bound(dtype, want), f"{name}_backward {shape}")


@given(rows=small(), cols=small(), dtype=DTYPES, seed=SEEDS, layout=LAYOUTS,
       scale=st.sampled_from([1.0, 30.0, 1e4]), threads=THREADS)
def test_softmax_and_its_backward_equal_the_reference(rows, cols, dtype, seed, layout, scale, threads):
    x, dy = values(seed, (rows, cols), dtype, scale), values(seed + 1, (rows, cols), dtype)
    with settings_of(threads):
        y = ops.softmax(laid_out(x, layout))
        dx = ops.softmax_backward(laid_out(dy, layout), y)
    assert np.isfinite(y).all(), "softmax of finite inputs must be finite"
    want = reference.softmax(x)
    # Each row is normalised by a sum of `cols` terms: a dot product's error, relative to y.
    assert_within(y, want, gemm_atol(dtype, cols, np.abs(want)) + elementwise_bound(dtype, want), "softmax")
    want = reference.softmax_backward(dy, y)
    ay = np.abs(y).astype(np.float64)
    dot = (np.abs(dy) * ay).sum(axis=1, keepdims=True)
    mag = ay * (np.abs(dy) + dot)
    assert_within(dx, want, gemm_atol(dtype, cols, mag) + elementwise_bound(dtype, want), "softmax_backward")


# ---------------------------------------------------------------------------------------------
# Losses: the loss is accumulated in double, the gradient written in the input dtype


@given(batch=positive(), classes=positive(), dtype=DTYPES, seed=SEEDS, one_hot=st.booleans(), layout=LAYOUTS,
       scale=st.sampled_from([1.0, 30.0, 1e4]), threads=THREADS)
def test_cross_entropy_equals_the_reference(batch, classes, dtype, seed, one_hot, layout, scale, threads):
    z = values(seed, (batch, classes), dtype, scale)
    labels = np.random.default_rng(seed + 1).integers(0, classes, batch)
    target = np.eye(classes, dtype=dtype)[labels] if one_hot else labels
    with settings_of(threads):
        loss, dz = ops.cross_entropy(laid_out(z, layout), target)
    want_loss, want_dz = reference.cross_entropy(z, target)
    assert np.isfinite(loss) and np.isfinite(dz).all(), (loss, dz)
    # Each row's log-sum-exp sums `classes` exponentials rounded in the input dtype, around a max
    # of size |z|.
    allowed = gemm_atol(dtype, classes, 1.0 + np.abs(z).max())
    assert abs(loss - want_loss) <= allowed, f"loss {loss!r}, reference {want_loss!r}, allowed {allowed:.3g}"
    assert_within(dz, want_dz, gemm_atol(dtype, classes, np.abs(want_dz) + 1.0 / batch), "cross_entropy dlogits")


@given(shape=st.lists(positive(12), min_size=1, max_size=2).map(tuple), dtype=DTYPES, seed=SEEDS,
       scale=st.sampled_from([1.0, 30.0, 1e4]), threads=THREADS)
def test_bce_and_mse_equal_the_reference(shape, dtype, seed, scale, threads):
    z = values(seed, shape, dtype, scale)
    t = np.random.default_rng(seed + 1).random(shape).astype(dtype)
    n = z.size
    for name in ("binary_cross_entropy", "mse"):
        with settings_of(threads):
            loss, grad = getattr(ops, name)(z, t)
        want_loss, want_grad = getattr(reference, name)(z, t)
        terms = (np.abs(z) + 1.0) if name == "binary_cross_entropy" else (z.astype(np.float64) - t) ** 2
        allowed = gemm_atol(np.float64, n, terms.mean()) + 8 * np.finfo(dtype).eps * terms.mean()
        assert abs(loss - want_loss) <= allowed, f"{name} {shape}: {loss!r} vs {want_loss!r} (allowed {allowed:.3g})"
        assert_within(grad, want_grad, elementwise_bound(dtype, want_grad), f"{name} gradient {shape}")


# ---------------------------------------------------------------------------------------------
# Optimizer steps: a handful of roundings per element, so the elementwise tolerance scaled by
# the size of every term of the update


@given(size=small(200), dtype=DTYPES, seed=SEEDS, lr=st.floats(0, 1), momentum=st.sampled_from([0.0, 0.5, 0.9]),
       weight_decay=st.sampled_from([0.0, 1e-2]), nesterov=st.booleans(), steps=st.integers(1, 3), threads=THREADS)
def test_sgd_steps_equal_the_reference(size, dtype, seed, lr, momentum, weight_decay, nesterov, steps, threads):
    nesterov = nesterov and momentum > 0
    p = values(seed, (size,), dtype)
    v = np.zeros_like(p) if momentum else None
    rp, rv = p.copy(), None if v is None else v.copy()
    for s in range(steps):
        g = values(seed + 1 + s, (size,), dtype)
        kw = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        with settings_of(threads):
            ops.sgd_step(p, g, v, **kw)
        reference.sgd_step(rp, g, rv, **kw)
    mag = np.abs(rp) + steps * lr * (1 + (0 if rv is None else 2 * np.abs(rv)) + 2)
    assert_within(p, rp.astype(np.float64), elementwise_bound(dtype, mag), "sgd param")
    if v is not None:
        assert_within(v, rv.astype(np.float64), elementwise_bound(dtype, steps * (np.abs(rv) + 3)), "sgd velocity")


@given(size=small(200), dtype=DTYPES, seed=SEEDS, lr=st.floats(0, 0.1), beta1=st.sampled_from([0.0, 0.5, 0.9]),
       beta2=st.sampled_from([0.9, 0.999]), eps=st.sampled_from([1e-8, 1e-3]), weight_decay=st.sampled_from([0.0, 1e-2]),
       first_step=st.sampled_from([1, 2, 1000]), threads=THREADS)
def test_adam_steps_equal_the_reference(size, dtype, seed, lr, beta1, beta2, eps, weight_decay, first_step, threads):
    p = values(seed, (size,), dtype)
    m = np.abs(values(seed + 1, (size,), dtype)) * 0.1
    v = m * m + np.abs(values(seed + 2, (size,), dtype)) * 0.01
    rp, rm, rv = p.copy(), m.copy(), v.copy()
    for step in range(first_step, first_step + 2):
        g = values(seed + step, (size,), dtype)
        kw = dict(step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay)
        with settings_of(threads):
            ops.adam_step(p, g, m, v, **kw)
        reference.adam_step(rp, g, rm, rv, **kw)
    # The update lr * mhat / (sqrt(vhat) + eps) is O(lr / (1 - beta1^step)) per step; about ten roundings.
    update = 2 * lr / (1 - beta1**first_step)
    eps_t = np.finfo(dtype).eps
    assert_within(p, rp.astype(np.float64), 16 * eps_t * (np.abs(rp) + update) + eps_t, "adam param")
    assert_within(m, rm.astype(np.float64), elementwise_bound(dtype, 4 * (np.abs(rm) + 1)), "adam m")
    assert_within(v, rv.astype(np.float64), elementwise_bound(dtype, 4 * (np.abs(rv) + 1)), "adam v")


# ---------------------------------------------------------------------------------------------
# Layers and Sequential: shapes round-trip, and a Sequential is exactly its layers applied by hand


def layer_specs():
    linear = st.tuples(st.just("Linear"), positive(12), st.booleans())
    dense = st.tuples(st.just("Dense"), positive(12), st.sampled_from([None, "relu", "sigmoid", "tanh", "softmax"]))
    act = st.tuples(st.sampled_from(["ReLU", "Sigmoid", "Tanh", "Softmax"]), st.just(0), st.just(None))
    return st.lists(st.one_of(linear, dense, act), min_size=1, max_size=5)


def build(specs, n_in, dtype, seed):
    lm.manual_seed(seed)
    layers = []
    for kind, size, option in specs:
        if kind == "Linear":
            layers.append(lm.Linear(n_in, size, bias=option, dtype=dtype))
            n_in = size
        elif kind == "Dense":
            layers.append(lm.Dense(size, activation=option, input_shape=(n_in,), dtype=dtype))
            n_in = size
        else:
            layers.append(getattr(lm, kind)())
    return layers, n_in


@given(specs=layer_specs(), batch=small(9), n_in=positive(12), dtype=DTYPES, seed=SEEDS, layout=LAYOUTS,
       threads=THREADS)
def test_sequential_is_its_layers_applied_by_hand_and_shapes_round_trip(specs, batch, n_in, dtype, seed, layout,
                                                                        threads):
    seq_layers, n_out = build(specs, n_in, dtype, seed % 1000)
    hand_layers, _ = build(specs, n_in, dtype, seed % 1000)
    model = lm.Sequential(*seq_layers)
    x = values(seed, (batch, n_in), dtype)
    dy = values(seed + 1, (batch, n_out), dtype)
    with settings_of(threads):
        y = model(laid_out(x, layout))
        dx = model.backward(laid_out(dy, layout))
        h = x
        for layer in hand_layers:
            h = layer(h)
        g = dy
        for layer in reversed(hand_layers):
            g = layer.backward(g)
    assert y.shape == (batch, n_out) and y.dtype == dtype, (y.shape, y.dtype)
    assert dx.shape == (batch, n_in) and dx.dtype == dtype, (dx.shape, dx.dtype)
    np.testing.assert_array_equal(y, h, err_msg="Sequential forward vs layers by hand")
    np.testing.assert_array_equal(dx, g, err_msg="Sequential backward vs layers by hand")
    hand_params = [p for layer in hand_layers for p in layer.parameters()]
    assert len(model.parameters()) == len(hand_params)
    for (name, p), q in zip(model.named_parameters(), hand_params):
        assert p.grad.shape == p.data.shape and p.grad.dtype == dtype, name
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=f"{name}.grad vs layers by hand")
    assert model.num_parameters() == sum(p.size for p in hand_params)
