"""Every native op in lamina.ops against lamina.reference (NumPy, float64).

GEMM shapes come in families aimed at the engine's tile and block edges (read from the active
blocking table): m and n in {1, MR-1, MR, MR+1, 2MR, a prime}, k in {1, KC-1, KC, KC+1, 2KC+3},
plus zero sizes, multi-block M and N, transposed and strided operands; each on every kernel path
the CPU has, with operands packed and read in place, float32 and float64, 1 and 2 threads.
"""

import numpy as np
import pytest

import lamina
from lamina import _native, ops, reference
from conftest import elementwise_tol, gemm_atol

DTYPES = [np.float32, np.float64]


def rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def assert_gemm_close(got, want, magnitude, k, dtype, what):
    """|got - want| <= gemm_atol elementwise; on failure, name the worst index and its values."""
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype} != {np.dtype(dtype)}"
    err = np.abs(got.astype(np.float64) - want)
    bound = gemm_atol(dtype, k, magnitude)
    bad = ~(err <= bound)
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, err - bound, -np.inf)), err.shape)
        raise AssertionError(f"{what}: at {i} got {got[i]!r}, reference {want[i]!r}, error {err[i]:.3g} > {bound[i]:.3g}")


def assert_elementwise_close(got, want, dtype, what):
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype}"
    np.testing.assert_allclose(got, want, err_msg=what, equal_nan=True, **elementwise_tol(dtype))


def family(name, tile):
    return {"1": 1, "T-1": tile - 1, "T": tile, "T+1": tile + 1, "2T": 2 * tile, "2T+1": 2 * tile + 1,
            "T/2": tile // 2, "T/2+1": tile // 2 + 1, "prime": 37}[name]


# ---------------------------------------------------------------------------------------------
# GEMM over the shape families


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k_name", ["1", "KC-1", "KC", "KC+1", "2KC+3"])
# T/2 columns: the widest one-vector tile; 2T+1 rows: a 12-row narrow tile and a 1-row edge.
@pytest.mark.parametrize("n_name", ["1", "T/2", "T/2+1", "T-1", "T", "T+1", "2T", "prime"])
@pytest.mark.parametrize("m_name", ["1", "T-1", "T", "T+1", "2T", "2T+1", "prime"])
def test_gemm_shape_families(isa, packing, threads, dtype, m_name, n_name, k_name):
    blk = _native.blocking(dtype)
    m, n = family(m_name, blk["MR"]), family(n_name, blk["NR"])
    kc = blk["KC"]
    k = {"1": 1, "KC-1": kc - 1, "KC": kc, "KC+1": kc + 1, "2KC+3": 2 * kc + 3}[k_name]
    rng = np.random.default_rng(hash((m, n, k)) % 2**32)
    a, b, bias = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype), rand(rng, (n,), dtype)
    got = ops.gemm(a, b, bias=bias, activation="relu")
    want = reference.gemm(a, b, bias=bias, activation="relu")
    magnitude = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)) + np.abs(bias)
    assert_gemm_close(got, want, magnitude, k, dtype, f"gemm {isa} {packing} m={m} n={n} k={k}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,k", [(0, 5, 3), (4, 0, 3), (4, 5, 0), (0, 0, 0)])
def test_gemm_zero_sizes(isa, dtype, m, n, k):
    rng = np.random.default_rng(1)
    a, b, bias = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype), rand(rng, (n,), dtype)
    c = rand(rng, (m, n), dtype)
    want = reference.gemm(a, b, c.copy(), beta=0.5, bias=bias, activation="tanh")
    got = ops.gemm(a, b, c, beta=0.5, bias=bias, activation="tanh")
    assert got is c
    assert_elementwise_close(got, want, dtype, f"gemm zero-size m={m} n={n} k={k}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_several_blocks_in_m_and_n(isa, packing, threads, dtype):
    """M spans several MC blocks and N several NC blocks, with ragged last blocks."""
    blk = _native.blocking(dtype)
    rng = np.random.default_rng(2)
    for m, n, k in [(2 * blk["MC"] + 7, 19, 33), (9, blk["NC"] + 21, 5)]:
        a, b = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
        magnitude = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
        assert_gemm_close(ops.matmul(a, b), reference.matmul(a, b), magnitude, k, dtype, f"matmul {m}x{n}x{k}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "fortran"])
def test_gemm_transposes_and_strides(isa, packing, threads, dtype, trans_a, trans_b, layout):
    rng = np.random.default_rng(3)
    m, n, k = 23, 41, 300
    a_shape = (k, m) if trans_a else (m, k)
    b_shape = (n, k) if trans_b else (k, n)
    a, b = rand(rng, a_shape, dtype), rand(rng, b_shape, dtype)
    if layout == "strided":  # every other row and every third column of a larger array
        big_a = rand(rng, (2 * a_shape[0], 3 * a_shape[1]), dtype)
        big_b = rand(rng, (2 * b_shape[0], 3 * b_shape[1]), dtype)
        a, b = big_a[::2, ::3], big_b[::2, ::3]
    elif layout == "fortran":
        a, b = np.asfortranarray(a), np.asfortranarray(b)
    got = ops.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
    want = reference.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
    opa = np.abs(a.T if trans_a else a).astype(np.float64)
    opb = np.abs(b.T if trans_b else b).astype(np.float64)
    assert_gemm_close(got, want, opa @ opb, k, dtype, f"gemm {layout} trans_a={trans_a} trans_b={trans_b}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (1.0, 1.0), (-0.5, 2.0), (0.0, 1.0)])
@pytest.mark.parametrize("with_bias", [False, True])
def test_gemm_epilogues(isa, packing, dtype, activation, alpha, beta, with_bias):
    """alpha, beta (accumulation into C), bias and each activation, on full and edge tiles."""
    rng = np.random.default_rng(4)
    m, n, k = 13, 35, 500  # several full tiles and a ragged edge in both directions, 2 K blocks
    a, b = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
    bias = rand(rng, (n,), dtype) if with_bias else None
    c0 = rand(rng, (m, n), dtype)
    want = reference.gemm(a, b, c0.copy(), alpha=alpha, beta=beta, bias=bias, activation=activation)
    got = ops.gemm(a, b, c0.copy(), alpha=alpha, beta=beta, bias=bias, activation=activation)
    magnitude = abs(alpha) * (np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)))
    magnitude += abs(beta) * np.abs(c0) + (np.abs(bias) if with_bias else 0.0)
    assert_gemm_close(got, want, magnitude, k, dtype, f"gemm epilogue act={activation} alpha={alpha} beta={beta}")


def test_gemm_beta_zero_does_not_read_c(isa):
    a, b = np.ones((7, 3), np.float32), np.ones((3, 17), np.float32)
    c = np.full((7, 17), np.nan, np.float32)
    ops.gemm(a, b, c, beta=0.0)
    assert np.all(c == 3.0), "beta=0 must overwrite C without reading its NaNs"


def test_gemm_nan_propagates_through_relu(isa):
    a = np.ones((7, 3), np.float32)
    a[2, 1] = np.nan
    y = ops.gemm(a, np.ones((3, 17), np.float32), activation="relu")
    assert np.isnan(y[2]).all() and not np.isnan(np.delete(y, 2, axis=0)).any()


# ---------------------------------------------------------------------------------------------
# Dense layer kernels


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("batch,n_in,n_out", [(1, 1, 1), (5, 17, 15), (64, 784, 30), (33, 8, 6), (0, 4, 3)])
def test_linear_forward(isa, threads, dtype, activation, batch, n_in, n_out):
    rng = np.random.default_rng(5)
    x, W, b = rand(rng, (batch, n_in), dtype), rand(rng, (n_out, n_in), dtype), rand(rng, (n_out,), dtype)
    got = ops.linear(x, W, b, activation=activation)
    want = reference.linear(x, W, b, activation=activation)
    magnitude = np.abs(x.astype(np.float64)) @ np.abs(W.T.astype(np.float64)) + np.abs(b)
    assert_gemm_close(got, want, magnitude, n_in, dtype, f"linear {batch}x{n_in}->{n_out} act={activation}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,n_in,n_out", [(1, 1, 1), (5, 17, 15), (64, 784, 30), (0, 4, 3), (300, 41, 7)])
def test_linear_backward_accumulates(isa, threads, dtype, batch, n_in, n_out):
    rng = np.random.default_rng(6)
    x, W, dy = rand(rng, (batch, n_in), dtype), rand(rng, (n_out, n_in), dtype), rand(rng, (batch, n_out), dtype)
    dW0, db0 = rand(rng, (n_out, n_in), dtype), rand(rng, (n_out,), dtype)
    dW, db = dW0.copy(), db0.copy()
    dx, dW_out, db_out = ops.linear_backward(dy, x, W, dW, db)
    assert dW_out is dW and db_out is db, "given gradient arrays must be updated in place"
    rdx, rdW, rdb = reference.linear_backward(dy, x, W, dW0.copy(), db0.copy())
    ax, aW, ady = (np.abs(v.astype(np.float64)) for v in (x, W, dy))
    assert_gemm_close(dx, rdx, ady @ aW, n_out, dtype, "dx")
    assert_gemm_close(dW, rdW, ady.T @ ax + np.abs(dW0), batch, dtype, "dW")
    assert_gemm_close(db, rdb, ady.sum(0) + np.abs(db0), batch, dtype, "db")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_out", list(range(1, 18)) + [33])
def test_bias_gradient_sums_each_column_in_row_order(isa, threads, dtype, n_out):
    # Narrow dy keeps up to 8 column sums in registers (one code path per width), wider dy runs
    # row-wise: every width must add db0 + dy[0] + dy[1] + ... in that order, bitwise.
    rng = np.random.default_rng(n_out)
    batch = 37
    x, W, dy = rand(rng, (batch, 3), dtype), rand(rng, (n_out, 3), dtype), rand(rng, (batch, n_out), dtype)
    db0 = rand(rng, (n_out,), dtype)
    db = db0.copy()
    ops.linear_backward(dy, x, W, np.zeros_like(W), db, need_dx=False)
    want = db0.copy()
    for row in dy:
        want = want + row  # elementwise in dtype: one rounding per addition, rows in order
    np.testing.assert_array_equal(db, want)


def test_linear_backward_options():
    rng = np.random.default_rng(7)
    x, W, dy = rand(rng, (4, 3), np.float32), rand(rng, (2, 3), np.float32), rand(rng, (4, 2), np.float32)
    dx, dW, db = ops.linear_backward(dy, x, W, db=False, need_dx=False)
    assert dx is None and db is None and dW.shape == (2, 3)


# ---------------------------------------------------------------------------------------------
# Bitwise determinism across thread counts (threads split M and N, never K)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_packing_never_changes_a_bit(isa, dtype, trans_a, trans_b):
    """Packed or read in place, every element of C is the same sum in the same order."""
    blk = _native.blocking(dtype)
    rng = np.random.default_rng(9)
    before = _native.packing()
    for m, n, k in [(1, 1, 1), (blk["MR"] + 1, blk["NR"] - 1, 7), (37, 2 * blk["NR"] + 3, blk["KC"] + 5),
                    (64, 30, 784), (30, 784, 64), (32, blk["NR"] // 2, 8), (2 * blk["MR"] + 1, blk["NR"] // 2 + 1, 5)]:
        a = rand(rng, (k, m) if trans_a else (m, k), dtype)
        b = rand(rng, (n, k) if trans_b else (k, n), dtype)
        bias = rand(rng, (n,), dtype)
        results = {}
        try:
            for mode in ("packed", "in_place", "auto"):
                _native.set_packing(mode)
                results[mode] = ops.gemm(a, b, trans_a=trans_a, trans_b=trans_b, bias=bias, activation="relu")
        finally:
            _native.set_packing(before)
        for mode in ("in_place", "auto"):
            assert np.array_equal(results["packed"], results[mode]), f"{mode} differs from packed at {m}x{n}x{k}"


def test_packing_mode_names():
    before = _native.packing()
    assert before in ("auto", "packed", "in_place")
    with pytest.raises(ValueError, match="packing mode 'sometimes' is unknown"):
        _native.set_packing("sometimes")
    assert _native.packing() == before


@pytest.mark.parametrize("dtype", DTYPES)
def test_bitwise_identical_for_1_and_2_threads(isa, dtype):
    if _native.build_info()["openmp"] is False:
        pytest.skip("built without OpenMP: only one thread exists")
    rng = np.random.default_rng(8)
    x, W, b = rand(rng, (257, 700), dtype), rand(rng, (301, 700), dtype), rand(rng, (301,), dtype)
    dy = rand(rng, (257, 301), dtype)
    logits, labels = rand(rng, (4099, 13), dtype), rng.integers(0, 13, 4099)
    results = {}
    before = lamina.get_num_threads()
    try:
        for t in (1, 2):
            lamina.set_num_threads(t)
            assert lamina.get_num_threads() == t, "OpenMP limits this process to fewer threads"
            y = ops.linear(x, W, b, activation="relu")
            grads = ops.linear_backward(dy, x, W)
            sq = ops.gemm(x, x, trans_b=True)
            loss, dz = ops.cross_entropy(logits, labels)
            results[t] = (y, *grads, sq, np.float64(loss), dz, ops.softmax(logits), ops.tanh(x))
    finally:
        lamina.set_num_threads(before)
    for i, (r1, r2) in enumerate(zip(results[1], results[2])):
        assert np.array_equal(r1, r2), f"result {i} differs between 1 and 2 threads"


# ---------------------------------------------------------------------------------------------
# Activations


# Softmax rows of up to 8 values run code unrolled per width: (33, 2), (32, 4), (17, 8), (5, 9).
ACTIVATION_SHAPES = [(1, 1), (3, 7), (64, 30), (0, 5), (1000, 33), (33, 2), (32, 4), (17, 8), (5, 9)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("shape", ACTIVATION_SHAPES)
def test_activation_forward_backward(isa, threads, dtype, name, shape):
    rng = np.random.default_rng(9)
    x, dy = rand(rng, shape, dtype) * 3, rand(rng, shape, dtype)
    y = getattr(ops, name)(x)
    assert_elementwise_close(y, getattr(reference, name)(x), dtype, f"{name} forward {shape}")
    dx = getattr(ops, name + "_backward")(dy, y)
    want = getattr(reference, name + "_backward")(dy, y)  # same saved output: tests the backward alone
    assert_elementwise_close(dx, want, dtype, f"{name} backward {shape}")


def test_softmax_exponentials_across_the_float_range(isa):
    # Rows (0, x): the second output is e^x / (1 + e^x), so every exponential the per-ISA loop
    # computes is checked to a few ulp, from x = 0 down to where e^x leaves the normal floats.
    x = -np.linspace(0.0, 87.3, 200_003, dtype=np.float32)
    z = np.stack([np.zeros_like(x), x], axis=1)
    y = ops.softmax(z)
    want = np.exp(x.astype(np.float64)) / (1.0 + np.exp(x.astype(np.float64)))
    np.testing.assert_allclose(y[:, 1], want, rtol=4 * np.finfo(np.float32).eps, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_and_cross_entropy_stable_at_1e4(isa, dtype):
    z = np.array([[1e4, -1e4, 0.0, 1e4 - 1], [-1e4, -1e4 + 2, -1e4, -1e4]], dtype=dtype)
    y = ops.softmax(z)
    assert np.isfinite(y).all()
    assert_elementwise_close(y, reference.softmax(z), dtype, "softmax at 1e4")
    loss, dz = ops.cross_entropy(z, np.array([1, 0]))
    rloss, rdz = reference.cross_entropy(z, np.array([1, 0]))
    assert np.isfinite(loss) and np.isfinite(dz).all()
    assert loss == pytest.approx(rloss, rel=1e-6)
    assert_elementwise_close(dz, rdz, dtype, "cross-entropy gradient at 1e4")


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_activation_nan_propagates(name):
    x = np.array([[np.nan, 1.0, -np.inf, np.inf]], np.float32)
    y = getattr(ops, name)(x)
    want = getattr(reference, name)(x)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    np.testing.assert_allclose(y[~np.isnan(y)], want[~np.isnan(want)])


# ---------------------------------------------------------------------------------------------
# Losses


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,classes", [(1, 1), (1, 4), (32, 10), (1000, 3), (32, 4), (7, 8), (9, 9)])
def test_cross_entropy(isa, threads, dtype, batch, classes):
    rng = np.random.default_rng(10)
    z, labels = rand(rng, (batch, classes), dtype) * 4, rng.integers(0, classes, batch)
    loss, dz = ops.cross_entropy(z, labels)
    rloss, rdz = reference.cross_entropy(z, labels)
    assert loss == pytest.approx(rloss, rel=1e-5 if dtype == np.float32 else 1e-12, abs=1e-6)
    assert_elementwise_close(dz, rdz, dtype, "cross_entropy dlogits (labels)")
    onehot = np.eye(classes, dtype=dtype)[labels]
    loss2, dz2 = ops.cross_entropy(z, onehot)
    assert loss2 == pytest.approx(rloss, rel=1e-5 if dtype == np.float32 else 1e-12, abs=1e-6)
    assert_elementwise_close(dz2, rdz, dtype, "cross_entropy dlogits (one-hot)")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,classes", [(1, 1), (3, 4), (1000, 3)])
@pytest.mark.parametrize("target_kind", ["labels", "probabilities"])
def test_probability_cross_entropy(isa, threads, dtype, batch, classes, target_kind):
    rng = np.random.default_rng(14)
    p = ops.softmax(rand(rng, (batch, classes), dtype) * 3)
    p[0, 0] = 0.0  # one probability below the clip
    if target_kind == "labels":
        target = rng.integers(0, classes, batch)
    else:
        target = ops.softmax(rand(rng, (batch, classes), dtype))
    loss, dp = ops.probability_cross_entropy(p, target)
    rloss, rdp = reference.probability_cross_entropy(p, target)
    assert loss == pytest.approx(rloss, rel=1e-5 if dtype == np.float32 else 1e-12)
    assert_elementwise_close(dp, rdp, dtype, f"probability_cross_entropy dprobs {target_kind}")
    t = rng.random((batch, classes)).astype(dtype)
    loss, dp = ops.probability_binary_cross_entropy(p, t)
    rloss, rdp = reference.probability_binary_cross_entropy(p, t)
    assert loss == pytest.approx(rloss, rel=1e-5 if dtype == np.float32 else 1e-12)
    assert_elementwise_close(dp, rdp, dtype, "probability_binary_cross_entropy dprobs")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (7, 1), (64, 5)])
def test_binary_cross_entropy_and_mse(threads, dtype, shape):
    rng = np.random.default_rng(11)
    z, t = rand(rng, shape, dtype) * 5, rng.random(shape).astype(dtype)
    for name in ("binary_cross_entropy", "mse"):
        loss, grad = getattr(ops, name)(z, t)
        rloss, rgrad = getattr(reference, name)(z, t)
        assert loss == pytest.approx(rloss, rel=1e-5 if dtype == np.float32 else 1e-12)
        assert_elementwise_close(grad, rgrad, dtype, f"{name} gradient {shape}")


# ---------------------------------------------------------------------------------------------
# Optimizers


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum,weight_decay,nesterov", [(0.0, 0.0, False), (0.9, 0.0, False), (0.9, 1e-2, True)])
def test_sgd_step_matches_reference(threads, dtype, momentum, weight_decay, nesterov):
    rng = np.random.default_rng(12)
    p, v = rand(rng, (70000,), dtype), np.zeros(70000, dtype)
    rp, rv = p.copy(), v.copy()
    for _ in range(3):
        g = rand(rng, (70000,), dtype)
        kw = dict(lr=0.1, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        ops.sgd_step(p, g, v if momentum else None, **kw)
        reference.sgd_step(rp, g, rv if momentum else None, **kw)
    assert_elementwise_close(p, rp.astype(np.float64), dtype, "sgd param")
    assert_elementwise_close(v, rv.astype(np.float64), dtype, "sgd velocity")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_step_matches_reference(threads, dtype, weight_decay):
    rng = np.random.default_rng(13)
    p = rand(rng, (5, 7), dtype)
    m, v = np.zeros_like(p), np.zeros_like(p)
    rp, rm, rv = p.copy(), m.copy(), v.copy()
    for step in range(1, 5):
        g = rand(rng, p.shape, dtype)
        ops.adam_step(p, g, m, v, step=step, lr=0.01, weight_decay=weight_decay)
        reference.adam_step(rp, g, rm, rv, step=step, lr=0.01, weight_decay=weight_decay)
    for got, want, what in ((p, rp, "param"), (m, rm, "m"), (v, rv, "v")):
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12, err_msg=what)


# ---------------------------------------------------------------------------------------------
# Bad input: the native ops reject exactly what the reference rejects, with the same exception.

_f = np.ones((3, 4), np.float32)


def _readonly(shape, dtype=np.float64):
    arr = np.zeros(shape, dtype)
    arr.flags.writeable = False
    return arr


BAD_CALLS = {
    "linear wrong in_features": lambda m: m.linear(np.ones((2, 5), np.float32), _f),
    "linear 1-D x": lambda m: m.linear(np.ones(4, np.float32), _f),
    "linear complex x": lambda m: m.linear(np.ones((2, 4), np.complex64), _f),
    "linear bool x": lambda m: m.linear(np.ones((2, 4), bool), _f),
    "linear object x": lambda m: m.linear(np.array([[None] * 4]), _f),
    "linear string x": lambda m: m.linear(np.array([["a"] * 4]), _f),
    "linear bad bias": lambda m: m.linear(np.ones((2, 4), np.float32), _f, np.ones(4, np.float32)),
    "linear bad activation": lambda m: m.linear(np.ones((2, 4), np.float32), _f, activation="gelu"),
    "gemm inner mismatch": lambda m: m.gemm(_f, _f),
    "gemm read-only c": lambda m: m.gemm(_f, _f.T, _readonly((3, 3), np.float32)),
    "gemm c wrong shape": lambda m: m.gemm(_f, _f.T, np.ones((3, 4), np.float32)),
    "gemm c is a list": lambda m: m.gemm(_f, _f.T, [[0.0] * 3] * 3),
    "backward dy shape": lambda m: m.linear_backward(np.ones((2, 2), np.float32), np.ones((2, 4), np.float32), _f),
    "backward read-only dW": lambda m: m.linear_backward(np.ones((2, 3), np.float32), np.ones((2, 4), np.float32), _f,
                                                         dW=_readonly((3, 4), np.float32)),
    "softmax 1-D": lambda m: m.softmax(np.ones(3, np.float32)),
    "relu_backward shape": lambda m: m.relu_backward(np.ones(3, np.float32), np.ones(4, np.float32)),
    "cross_entropy label too big": lambda m: m.cross_entropy(_f, np.array([0, 1, 4])),
    "cross_entropy negative label": lambda m: m.cross_entropy(_f, np.array([0, -1, 2])),
    "cross_entropy float labels": lambda m: m.cross_entropy(_f, np.array([0.0, 1.0, 2.0])),
    "cross_entropy label count": lambda m: m.cross_entropy(_f, np.array([0, 1])),
    "cross_entropy empty": lambda m: m.cross_entropy(np.ones((0, 4), np.float32), np.array([], np.int64)),
    "cross_entropy bad probabilities": lambda m: m.cross_entropy(_f, np.full((3, 4), 2.0, np.float32)),
    "bce target shape": lambda m: m.binary_cross_entropy(_f, np.ones((4, 3), np.float32)),
    "mse target shape": lambda m: m.mse(_f, np.ones(3, np.float32)),
    "probability_cross_entropy label too big": lambda m: m.probability_cross_entropy(_f / 4, np.array([0, 1, 4])),
    "probability_cross_entropy empty": lambda m: m.probability_cross_entropy(np.ones((0, 4)), np.array([], np.int64)),
    "probability_binary_cross_entropy target above 1": lambda m: m.probability_binary_cross_entropy(
        _f / 4, np.full((3, 4), 1.5, np.float32)),
    "sgd integer param": lambda m: m.sgd_step(np.ones(3, np.int64), np.ones(3), lr=0.1),
    "sgd list param": lambda m: m.sgd_step([1.0, 2.0], np.ones(2), lr=0.1),
    "sgd momentum without velocity": lambda m: m.sgd_step(np.ones(3), np.ones(3), lr=0.1, momentum=0.9),
    "sgd negative lr": lambda m: m.sgd_step(np.ones(3), np.ones(3), lr=-0.1),
    "sgd grad shape": lambda m: m.sgd_step(np.ones(3), np.ones(4), lr=0.1),
    "adam step 0": lambda m: m.adam_step(np.ones(3), np.ones(3), np.zeros(3), np.zeros(3), step=0),
    "adam beta 1": lambda m: m.adam_step(np.ones(3), np.ones(3), np.zeros(3), np.zeros(3), step=1, beta1=1.0),
    "adam read-only m": lambda m: m.adam_step(np.ones(3), np.ones(3), _readonly(3), np.zeros(3), step=1),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_input_same_exception_as_reference(case):
    call = BAD_CALLS[case]
    with pytest.raises((TypeError, ValueError)) as ref_err:
        call(reference)
    with pytest.raises(ref_err.type) as native_err:
        call(ops)
    assert str(native_err.value), f"{case}: empty error message"


def test_native_inplace_outputs_must_match_dtype():
    W = np.ones((3, 4), np.float32)
    with pytest.raises(TypeError, match="dW"):
        ops.linear_backward(np.ones((2, 3), np.float32), np.ones((2, 4), np.float32), W, dW=np.zeros((3, 4)))
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.sgd_step(np.ones(3, np.float16), np.ones(3, np.float16), lr=0.1)


def test_native_mixed_precision_is_an_error_not_a_silent_cast():
    with pytest.raises(TypeError, match="dtype"):
        ops.linear(np.ones((2, 4), np.float64), np.ones((3, 4), np.float32))


def test_gemm_output_overlapping_input_is_rejected():
    buf = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="shares memory"):
        ops.gemm(buf, buf, buf)


def test_set_num_threads_rejects_nonpositive():
    with pytest.raises(ValueError, match="threads"):
        lamina.set_num_threads(0)


def test_integer_inputs_are_cast_to_the_weight_dtype():
    W = np.ones((3, 4), np.float64)
    y = ops.linear(np.arange(8).reshape(2, 4), W)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, reference.linear(np.arange(8).reshape(2, 4), W))


def test_build_info_reports_the_build():
    info = lamina.build_info()
    for key in ("version", "compiler", "openmp", "isa", "num_threads"):
        assert key in info, key
    assert info["isa"] in ("avx512", "avx2", "generic")
    assert info["version"] == lamina.__version__


def test_build_info_names_the_cpu_and_why_its_kernel_path_was_chosen():
    import os
    import platform

    info = lamina.build_info()
    if platform.machine() in ("x86_64", "AMD64"):
        assert info["cpu_vendor"] in ("GenuineIntel", "AuthenticAMD") or info["cpu_vendor"].isprintable()
        assert info["cpu_family"] > 0 and info["cpu_model"] >= 0 and info["cpu"].strip()
    zen4 = info["cpu_vendor"] == "AuthenticAMD" and info["cpu_family"] == 0x19 and info["cpu_avx512"]
    if os.environ.get("LAMINA_ISA"):
        assert info["isa_choice"] == "forced by LAMINA_ISA" or info["isa"] != os.environ["LAMINA_ISA"]
    elif zen4:
        assert info["isa"] == "avx2" and "Zen 4" in info["isa_choice"]
    else:
        widest = "avx512" if info["cpu_avx512"] else "avx2" if info["cpu_avx2_fma"] else "generic"
        assert info["isa"] == widest and info["isa_choice"] == "the widest the CPU supports"


def test_lamina_isa_environment_variable_forces_the_portable_path():
    import os
    import subprocess
    import sys

    code = "import lamina; print(lamina.build_info()['isa'])"
    env = {**os.environ, "LAMINA_ISA": "generic"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "generic"


def _import_lamina_with(isa):
    import os
    import subprocess
    import sys

    code = "import lamina; print(lamina.build_info()['isa'])"
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, "LAMINA_ISA": isa},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("isa", ["bogus", "avx", "avx-512", "generic2"])
def test_lamina_isa_refuses_an_unknown_name_at_import_and_lists_the_known_ones(isa):
    out = _import_lamina_with(isa)
    assert out.returncode != 0, out.stdout
    assert f"LAMINA_ISA={isa!r} is not a kernel path" in out.stderr, out.stderr
    assert "avx512, avx2, generic" in out.stderr, out.stderr


@pytest.mark.parametrize("isa", ["avx512", "AVX2", "Generic"])
def test_lamina_isa_takes_any_case_and_warns_when_the_cpu_lacks_the_path(isa):
    supported = lamina.build_info()["isa_supported"]
    out = _import_lamina_with(isa)
    assert out.returncode == 0, out.stderr
    if isa.lower() in supported:
        assert out.stdout.strip() == isa.lower() and out.stderr == ""
    else:  # the CPU lacks it: a RuntimeWarning, and the best path it has
        assert "RuntimeWarning" in out.stderr and "cannot run" in out.stderr, out.stderr
        assert out.stdout.strip() in supported


def test_lamina_isa_check_names_the_path_in_use_when_the_cpu_lacks_the_one_asked_for():
    from lamina._checks import check_isa_request

    assert check_isa_request(None, ["avx2", "generic"], "avx2") is None
    assert check_isa_request("", ["avx2", "generic"], "avx2") is None
    assert check_isa_request("AVX2", ["avx2", "generic"], "avx2") is None
    message = check_isa_request("avx512", ["avx2", "generic"], "avx2")
    assert message.startswith("LAMINA_ISA='avx512' asks for a kernel path this CPU")
    assert "it can run avx2, generic, and lamina uses avx2" in message
    with pytest.raises(ValueError, match="use one of avx512, avx2, generic"):
        check_isa_request("sse", ["avx2", "generic"], "avx2")


def test_build_info_lists_the_kernel_paths_the_cpu_could_run_widest_first():
    info = lamina.build_info()
    assert info["isa_supported"][-1] == "generic" and info["isa"] in info["isa_supported"]
    order = ["avx512", "avx2", "generic"]
    assert info["isa_supported"] == [isa for isa in order if isa in info["isa_supported"]]
    assert ("avx512" in info["isa_supported"]) == info["cpu_avx512"]
    assert ("avx2" in info["isa_supported"]) == info["cpu_avx2_fma"]


def test_set_num_threads_takes_whole_numbers_only():
    with pytest.raises(TypeError):
        lamina.set_num_threads(1.5)


@pytest.mark.parametrize("name", reference.__all__)
def test_ops_mirror_the_reference_name_for_name(name):
    import inspect

    def parameters(fn):  # names, kinds and defaults; the annotations may differ (ops has them first)
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    assert parameters(getattr(ops, name)) == parameters(getattr(reference, name)), name
