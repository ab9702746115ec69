"""Normalization: lamina.ops against lamina.reference for batch norm (shape families (N, C),
(N, C, L), (N, C, H, W) and channels_last through axis=-1; odd sizes, C = 1, m = 2, batch 33;
weight and bias None; fused ReLU; training and inference; running statistics) and layer norm
(one and several normalized dims), in float32 and float64; 1 and 2 threads bitwise on every kernel
path; the reference against central finite differences and torch; bad input.
"""
import numpy as np
import pytest

import lamina
from lamina import _native, ops, reference
from conftest import REFERENCE_TOLERANCES, norm_atol

DTYPES = [np.float32, np.float64]


def assert_equal(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    bad = ~((got == want) | (np.isnan(got) & np.isnan(want)))
    if bad.any():
        i = tuple(int(k) for k in np.argwhere(bad)[0])
        pytest.fail(f"{what}: shape {got.shape}, {int(bad.sum())} differ; first at {i}: got {got[i]!r}, "
                    f"expected {want[i]!r}")


def assert_close(got, want, atol, what):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    bad = ~np.isclose(got, want, rtol=0.0, atol=atol, equal_nan=True)
    if bad.any():
        i = tuple(int(k) for k in np.argwhere(bad)[0])
        pytest.fail(f"{what}: shape {got.shape}, {int(bad.sum())} differ; first at {i}: got {got[i]!r}, "
                    f"expected {want[i]!r} (atol {atol:.3g})")


def channels(x, axis):
    """x as (outer, C, inner) float64, with C the channel axis."""
    a = axis % x.ndim
    return np.asarray(x, np.float64).reshape(int(np.prod(x.shape[:a])), x.shape[a], -1)


# (shape, axis): (N, C), (N, C, L), (N, C, H, W), channels_last (N, L, C) and (N, H, W, C); odd
# sizes, C = 1, m = 2 (the fewest values training takes), batch 33, long and short runs.
BN_CASES = [
    ((8, 5), 1),
    ((2, 1), 1),
    ((33, 3), 1),
    ((4, 3, 7), 1),
    ((33, 2, 1), 1),
    ((1, 2, 2), 1),
    ((2, 3, 5, 6), 1),
    ((3, 1, 9, 11), 1),
    ((2, 16, 17, 19), 1),
    ((4, 7, 3), -1),
    ((2, 5, 6, 3), -1),
    ((33, 3, 4, 17), -1),
    ((2, 4, 4, 1), -1),
    ((3, 5, 7, 2), 2),
]


def bn_inputs(rng, shape, axis, dtype, affine=True, offset=3.0):
    """x (mean `offset`, scale 2: the shifted sums must not lose the variance), weight, bias."""
    c = shape[axis]
    x = (rng.standard_normal(shape) * 2.0 + offset).astype(dtype)
    w = rng.standard_normal(c).astype(dtype) if affine else None
    b = rng.standard_normal(c).astype(dtype) if affine else None
    return x, w, b


def forward_magnitude(x, mean, invstd, w, b, axis):
    """The largest term of fma(x, scale, shift): |x scale| + |shift| + |mean scale| (the mean's rounding)."""
    g = np.ones_like(invstd) if w is None else np.asarray(w, np.float64)
    scale = np.abs(g * invstd)
    beta = 0.0 if b is None else np.abs(np.asarray(b, np.float64)).max()
    return np.abs(channels(x, axis)).max() * scale.max() + beta + 2 * (np.abs(mean) * scale).max()


def backward_magnitudes(dy, x, mean, invstd, w, axis, mask=None):
    """(dx's largest term, sum |g|, sum |g xhat|, values per channel)."""
    g = channels(dy, axis)
    if mask is not None:
        g = np.where(channels(mask, axis) > 0, g, 0.0)
    xhat = (channels(x, axis) - mean[None, :, None]) * invstd[None, :, None]
    gamma = np.ones_like(invstd) if w is None else np.asarray(w, np.float64)
    k = np.abs(gamma * invstd)
    m = g.shape[0] * g.shape[2]
    sum_g = np.abs(g).sum(axis=(0, 2))
    sum_gx = np.abs(g * xhat).sum(axis=(0, 2))
    dx = (k[None, :, None] * (np.abs(g) + (sum_g / m)[None, :, None] + np.abs(xhat) * (sum_gx / m)[None, :, None]))
    return dx.max() if dx.size else 0.0, sum_g.max(initial=0.0), sum_gx.max(initial=0.0), m


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape, axis", BN_CASES, ids=str)
def test_batch_norm_training_equals_the_reference(shape, axis, affine, activation, dtype):
    rng = np.random.default_rng(sum(shape) * 10 + axis)
    x, w, b = bn_inputs(rng, shape, axis, dtype, affine)
    c = shape[axis]
    running = (rng.standard_normal(c).astype(dtype), (rng.random(c) + 0.5).astype(dtype))
    rm, rv = running[0].copy(), running[1].copy()
    rm64, rv64 = running[0].astype(np.float64), running[1].astype(np.float64)
    y, mean, invstd = ops.batch_norm(x, w, b, rm, rv, axis=axis, activation=activation, momentum=0.3)
    ry, rmean, rinvstd = reference.batch_norm(x, w, b, rm64, rv64, axis=axis, activation=activation, momentum=0.3)
    for name, a in (("y", y), ("mean", mean), ("invstd", invstd)):
        assert a.dtype == dtype, f"{name} has dtype {a.dtype}"
    eps = float(np.finfo(dtype).eps)
    assert_close(mean, rmean, norm_atol(dtype, np.abs(rmean).max() + 1 / rinvstd.min()), f"mean {shape}")
    assert_close(invstd, rinvstd, norm_atol(dtype, rinvstd.max()), f"invstd {shape}")
    assert_close(rm, rm64, norm_atol(dtype, np.abs(rm64).max() + 1), f"running_mean {shape}")
    assert_close(rv, rv64, norm_atol(dtype, np.abs(rv64).max()), f"running_var {shape}")
    assert_close(y, ry, norm_atol(dtype, forward_magnitude(x, rmean, rinvstd, w, b, axis)), f"y {shape} {activation}")
    assert eps  # (dtype's eps is in norm_atol)

    dy = rng.standard_normal(shape).astype(dtype)
    mask = y if activation == "relu" else None
    dx, dw, db = ops.batch_norm_backward(dy, x, mean, invstd, w, axis=axis, relu_output=mask)
    # The reference from the same (rounded) statistics and mask, so only the backward is compared.
    rdx, rdw, rdb = reference.batch_norm_backward(dy, x, mean, invstd, w, axis=axis, relu_output=mask)
    mag_dx, sum_g, sum_gx, m = backward_magnitudes(dy, x, mean.astype(np.float64), invstd.astype(np.float64), w,
                                                   axis, mask)
    assert_close(dx, rdx, norm_atol(dtype, mag_dx, m), f"dx {shape} {activation}")
    assert_close(dw, rdw, norm_atol(dtype, sum_gx, m), f"dweight {shape} {activation}")
    assert_close(db, rdb, norm_atol(dtype, sum_g, m), f"dbias {shape} {activation}")
    assert dx.dtype == dw.dtype == db.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("shape, axis", BN_CASES + [((1, 3), 1), ((1, 4, 1, 1), 1)], ids=str)
def test_batch_norm_inference_equals_the_reference(shape, axis, activation, dtype):
    rng = np.random.default_rng(sum(shape) * 10 + axis + 1)
    x, w, b = bn_inputs(rng, shape, axis, dtype)
    c = shape[axis]
    rm, rv = (rng.standard_normal(c) * 2).astype(dtype), (rng.random(c) * 3 + 0.1).astype(dtype)
    before = rm.copy(), rv.copy()
    y, mean, invstd = ops.batch_norm(x, w, b, rm, rv, training=False, axis=axis, activation=activation)
    ry, rmean, rinvstd = reference.batch_norm(x, w, b, rm, rv, training=False, axis=axis, activation=activation)
    assert_equal(rm, before[0], "running_mean is not written in inference")
    assert_equal(rv, before[1], "running_var is not written in inference")
    assert_equal(mean, rm, "inference mean is the running mean")
    assert_close(invstd, rinvstd, norm_atol(dtype, rinvstd.max()), "invstd")
    assert_close(y, ry, norm_atol(dtype, forward_magnitude(x, rmean, rinvstd, w, b, axis)), f"y {shape}")
    dy = rng.standard_normal(shape).astype(dtype)
    mask = y if activation == "relu" else None
    dx, dw, db = ops.batch_norm_backward(dy, x, mean, invstd, w, training=False, axis=axis, relu_output=mask)
    rdx, rdw, rdb = reference.batch_norm_backward(dy, x, mean, invstd, w, training=False, axis=axis,
                                                  relu_output=mask)
    mag_dx, sum_g, sum_gx, m = backward_magnitudes(dy, x, mean.astype(np.float64), invstd.astype(np.float64), w,
                                                   axis, mask)
    assert_close(dx, rdx, norm_atol(dtype, mag_dx), f"dx {shape}")
    assert_close(dw, rdw, norm_atol(dtype, sum_gx, m), f"dweight {shape}")
    assert_close(db, rdb, norm_atol(dtype, sum_g, m), f"dbias {shape}")


# (shape, normalized_shape)
LN_CASES = [
    ((4, 10), 10),
    ((1, 1), 1),
    ((3, 2), (2,)),
    ((33, 7), 7),
    ((3, 4, 10), (4, 10)),
    ((2, 3, 5, 16), 16),
    ((5, 17, 33), (17, 33)),
    ((2, 3, 4), (2, 3, 4)),
    ((64, 100), 100),
]


def ln_inputs(rng, shape, normalized_shape, dtype, affine=True):
    dims = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
    x = (rng.standard_normal(shape) * 2.0 - 5.0).astype(dtype)
    w = rng.standard_normal(dims).astype(dtype) if affine else None
    b = rng.standard_normal(dims).astype(dtype) if affine else None
    return x, w, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape, normalized_shape", LN_CASES, ids=str)
def test_layer_norm_equals_the_reference(shape, normalized_shape, affine, dtype):
    rng = np.random.default_rng(sum(shape))
    x, w, b = ln_inputs(rng, shape, normalized_shape, dtype, affine)
    y, mean, invstd = ops.layer_norm(x, normalized_shape, w, b)
    ry, rmean, rinvstd = reference.layer_norm(x, normalized_shape, w, b)
    assert y.dtype == mean.dtype == invstd.dtype == dtype
    gamma = 1.0 if w is None else np.abs(w).max()
    beta = 0.0 if b is None else np.abs(b).max()
    assert_close(mean, rmean, norm_atol(dtype, np.abs(rmean).max() + 1 / rinvstd.min()), f"mean {shape}")
    assert_close(invstd, rinvstd, norm_atol(dtype, rinvstd.max()), f"invstd {shape}")
    mag = (np.abs(x).max() + np.abs(rmean).max()) * rinvstd.max() * gamma + beta
    assert_close(y, ry, norm_atol(dtype, mag), f"y {shape}")

    dy = rng.standard_normal(shape).astype(dtype)
    dx, dw, db = ops.layer_norm_backward(dy, x, mean, invstd, normalized_shape, w)
    rdx, rdw, rdb = reference.layer_norm_backward(dy, x, mean, invstd, normalized_shape, w)
    n = int(np.prod(rdw.shape))
    rows = x.size // n
    d = dy.reshape(rows, n).astype(np.float64)
    g = np.abs(d * (1.0 if w is None else w.reshape(n)))
    xhat = np.abs((x.reshape(rows, n) - mean.reshape(rows, 1)) * invstd.reshape(rows, 1))
    inv = invstd.reshape(rows, 1).astype(np.float64)
    mag_dx = (inv * (g + g.mean(axis=1, keepdims=True) + xhat * (g * xhat).mean(axis=1, keepdims=True))).max()
    assert_close(dx, rdx, norm_atol(dtype, mag_dx, n), f"dx {shape}")
    assert_close(dw, rdw, norm_atol(dtype, np.abs(d * xhat).sum(axis=0).max(), rows), f"dweight {shape}")
    assert_close(db, rdb, norm_atol(dtype, np.abs(d).sum(axis=0).max(), rows), f"dbias {shape}")
    assert dw.shape == db.shape == rdw.shape and dx.dtype == dw.dtype == db.dtype == dtype


# ---- threads and kernel paths: bitwise equal --------------------------------------------------


def _all_ops(x, axis, ln_dims):
    rng = np.random.default_rng(5)
    dtype = x.dtype
    c = x.shape[axis]
    w, b = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    rm, rv = np.zeros(c, dtype), np.ones(c, dtype)
    out = {}
    y, mean, invstd = ops.batch_norm(x, w, b, rm, rv, axis=axis, activation="relu")
    out.update(bn_y=y, bn_mean=mean, bn_invstd=invstd, running_mean=rm, running_var=rv)
    dy = rng.standard_normal(x.shape).astype(dtype)
    out["bn_dx"], out["bn_dw"], out["bn_db"] = ops.batch_norm_backward(dy, x, mean, invstd, w, axis=axis,
                                                                       relu_output=y)
    out["bn_dx_inference"] = ops.batch_norm_backward(dy, x, mean, invstd, w, training=False, axis=axis)[0]
    dims = x.shape[x.ndim - ln_dims:]
    gw, gb = rng.standard_normal(dims).astype(dtype), rng.standard_normal(dims).astype(dtype)
    y, mean, invstd = ops.layer_norm(x, dims, gw, gb)
    out.update(ln_y=y, ln_mean=mean, ln_invstd=invstd)
    out["ln_dx"], out["ln_dw"], out["ln_db"] = ops.layer_norm_backward(dy, x, mean, invstd, dims, gw)
    return out


@pytest.mark.parametrize("shape, axis, ln_dims", [((8, 24, 30, 29), 1, 1), ((16, 20, 21, 48), -1, 2),
                                                  ((4000, 37), 1, 1), ((3, 70, 40, 41), 1, 3)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_one_and_two_threads_and_every_kernel_path_agree_bitwise(isa, dtype, shape, axis, ln_dims):
    x = (np.random.default_rng(3).standard_normal(shape) + 1.0).astype(dtype)
    before = lamina.get_num_threads()
    try:
        lamina.set_num_threads(1)
        one = _all_ops(x, axis, ln_dims)
        lamina.set_num_threads(2)
        two = _all_ops(x, axis, ln_dims)
        # Every ISA builds the same loops without contraction: the generic path gives the same bits.
        _native.set_isa("generic")
        generic = _all_ops(x, axis, ln_dims)
    finally:
        lamina.set_num_threads(before)
        _native.set_isa(isa)
    for name in one:
        assert_equal(two[name], one[name], f"{name} {shape} on {isa}: 2 threads vs 1")
        assert_equal(generic[name], one[name], f"{name} {shape} on {isa} vs generic")


# ---- bad input: a clear exception, nothing written ----------------------------------------------


def _bad_calls():
    x = np.ones((4, 3, 5), np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    ro = np.ones(3, np.float32)
    ro.flags.writeable = False
    mean, invstd = np.zeros(3, np.float32), np.ones(3, np.float32)
    return [
        (ValueError, "eps must be > 0", lambda: ops.batch_norm(x, eps=0.0)),
        (ValueError, "eps", lambda: ops.layer_norm(x, 5, eps=-1.0)),
        (ValueError, r"momentum", lambda: ops.batch_norm(x, None, None, rm, rv, momentum=1.5)),
        (ValueError, r"momentum", lambda: ops.batch_norm(x, None, None, rm, rv, momentum=-0.1)),
        (ValueError, "more than one value per channel", lambda: ops.batch_norm(np.ones((1, 3)))),
        (ValueError, "more than one value per channel", lambda: ops.batch_norm(np.ones((1, 3, 1, 1)))),
        (ValueError, "needs running_mean", lambda: ops.batch_norm(x, training=False)),
        (ValueError, "go together", lambda: ops.batch_norm(x, None, None, rm, None)),
        (ValueError, r"weight has shape \(4,\)", lambda: ops.batch_norm(x, np.ones(4, np.float32))),
        (ValueError, "not a channel axis", lambda: ops.batch_norm(x, axis=0)),
        (ValueError, "not a channel axis", lambda: ops.batch_norm(x, axis=3)),
        (ValueError, "batch axis and a channel axis", lambda: ops.batch_norm(np.ones(5))),
        (TypeError, "dtype float64 but must be float32", lambda: ops.batch_norm(x, None, None, rm.astype(np.float64),
                                                                                 rv)),
        (TypeError, "must be a NumPy array", lambda: ops.batch_norm(x, None, None, [0.0] * 3, rv)),
        (ValueError, "read-only", lambda: ops.batch_norm(x, None, None, ro, rv)),
        (ValueError, "C-contiguous", lambda: ops.batch_norm(x, None, None, np.zeros(6, np.float32)[::2], rv)),
        (ValueError, "activation must be None or 'relu'", lambda: ops.batch_norm(x, activation="tanh")),
        (ValueError, "dy has shape", lambda: ops.batch_norm_backward(np.ones((4, 3), np.float32), x, mean, invstd)),
        (ValueError, r"mean has shape", lambda: ops.batch_norm_backward(x, x, np.zeros(4, np.float32), invstd)),
        (ValueError, "relu_output has shape", lambda: ops.batch_norm_backward(x, x, mean, invstd,
                                                                             relu_output=np.ones(3, np.float32))),
        (ValueError, "does not match the trailing dims", lambda: ops.layer_norm(x, 4)),
        (ValueError, "does not match the trailing dims", lambda: ops.layer_norm(x, (2, 3, 4, 5))),
        (ValueError, "normalized_shape must be a positive integer", lambda: ops.layer_norm(x, 0)),
        (ValueError, "weight has shape", lambda: ops.layer_norm(x, 5, np.ones(4, np.float32))),
        (ValueError, "mean has shape", lambda: ops.layer_norm_backward(x, x, np.zeros(4, np.float32), np.ones((4, 3), np.float32), 5)),
        (TypeError, "integer or floating-point", lambda: ops.layer_norm(x.astype(bool), 5)),
        (TypeError, "integer or floating-point", lambda: ops.batch_norm(x.astype(complex))),
        (TypeError, "weight has dtype float64 but x has dtype float32",
         lambda: ops.batch_norm(x, np.ones(3, np.float64))),
    ]


@pytest.mark.parametrize("i", range(len(_bad_calls())))
def test_bad_input_raises_a_clear_error_and_writes_nothing(i):
    error, match, call = _bad_calls()[i]
    with pytest.raises(error, match=match):
        call()


# ---- running statistics ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("unbiased", [True, False])
@pytest.mark.parametrize("momentum", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("shape, axis", [((6, 4, 5), 1), ((6, 5, 4), -1), ((2, 3), 1)], ids=str)
def test_running_statistics_are_updated_in_place(shape, axis, momentum, unbiased, dtype):
    rng = np.random.default_rng(len(shape) + int(10 * momentum))
    x, _, _ = bn_inputs(rng, shape, axis, dtype)
    c = shape[axis]
    rm, rv = rng.standard_normal(c).astype(dtype), (rng.random(c) + 0.5).astype(dtype)
    start = rm.copy(), rv.copy()
    ids = id(rm), id(rv)
    _, mean, _ = ops.batch_norm(x, None, None, rm, rv, momentum=momentum, unbiased=unbiased, axis=axis)
    assert (id(rm), id(rv)) == ids and rm.dtype == rv.dtype == dtype
    v = channels(x, axis)
    m = v.shape[0] * v.shape[2]
    var = v.var(axis=(0, 2)) * (m / (m - 1) if unbiased else 1.0)
    want_mean = start[0] * (1 - momentum) + v.mean(axis=(0, 2)) * momentum
    want_var = start[1] * (1 - momentum) + var * momentum
    if momentum == 0.0:
        assert_equal(rm, start[0], "momentum 0 keeps running_mean")
        assert_equal(rv, start[1], "momentum 0 keeps running_var")
    assert_close(rm, want_mean, norm_atol(dtype, np.abs(want_mean).max() + np.abs(v).max()), "running_mean")
    assert_close(rv, want_var, norm_atol(dtype, np.abs(want_var).max() * 2), "running_var")


@pytest.mark.parametrize("dtype", DTYPES)
def test_momentum_one_over_k_gives_the_cumulative_average(dtype):
    # PyTorch's momentum=None: after batch k the factor is 1/k, so the running mean is the plain
    # average of the batch means (and the running variance of the unbiased batch variances).
    rng = np.random.default_rng(21)
    batches = [(rng.standard_normal((5, 3, 4)) * (k + 1) + k).astype(dtype) for k in range(4)]
    rm, rv = np.zeros(3, dtype), np.ones(3, dtype)
    for k, x in enumerate(batches, start=1):
        ops.batch_norm(x, None, None, rm, rv, momentum=1.0 / k)
    means = [channels(x, 1).mean(axis=(0, 2)) for x in batches]
    variances = [channels(x, 1).var(axis=(0, 2), ddof=1) for x in batches]
    assert_close(rm, np.mean(means, axis=0), norm_atol(dtype, 8 * 4), "cumulative running_mean")
    assert_close(rv, np.mean(variances, axis=0), norm_atol(dtype, 8 * 16 * 4), "cumulative running_var")


def test_inference_accepts_read_only_running_statistics_and_integer_input():
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    rm.flags.writeable = rv.flags.writeable = False
    x = np.arange(24).reshape(2, 3, 4)  # integers: cast to float32
    y, mean, invstd = ops.batch_norm(x, None, None, rm, rv, training=False)
    assert y.dtype == np.float32
    assert_close(y, x / np.sqrt(1 + 1e-5), norm_atol(np.float32, 24), "inference with mean 0, var 1")
    y, mean, invstd = ops.layer_norm(x, 4)
    assert y.dtype == mean.dtype == np.float32 and mean.shape == (2, 3)


# ---- NaN and Inf: propagated per channel (row), never a crash -----------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("shape, axis", [((4, 3, 9), 1), ((4, 9, 3), -1)], ids=str)
def test_a_nan_or_inf_spoils_its_own_channel_and_row_only(shape, axis, value, dtype):
    rng = np.random.default_rng(22)
    x = rng.standard_normal(shape).astype(dtype)
    if axis == 1:
        x[1, 1, 4] = value  # channel 1, row (1, 1)
    else:
        x[1, 4, 1] = value  # channel 1, row (1, 4)
    rm, rv = np.zeros(3, dtype), np.ones(3, dtype)
    with np.errstate(invalid="ignore"):
        y, mean, invstd = ops.batch_norm(x, None, None, rm, rv, axis=axis)
        v = channels(y, axis)
        assert np.isfinite(v[:, [0, 2]]).all() and not np.isfinite(v[:, 1]).all()
        assert np.isfinite(rm[[0, 2]]).all() and not np.isfinite(rm[1]) and not np.isfinite(rv[1])
        dx, dw, db = ops.batch_norm_backward(np.ones(shape, dtype), x, mean, invstd, axis=axis)
        assert np.isfinite(channels(dx, axis)[:, [0, 2]]).all() and np.isfinite(dw[[0, 2]]).all()
        yl, ml, il = ops.layer_norm(x, shape[-1])
        rows, finite = yl.reshape(-1, shape[-1]), np.isfinite(x.reshape(-1, shape[-1])).all(axis=1)
        assert np.isfinite(rows[finite]).all() and not np.isfinite(rows[~finite]).any()
        ops.layer_norm_backward(np.ones(shape, dtype), x, ml, il, shape[-1])


# ---- the reference against central finite differences and torch -------------------------------


def _fd_check(f, backward, x, rng, what):
    """backward(dy) against central differences of sum(f(x) * dy), for each input in x (a tuple)."""
    tol = REFERENCE_TOLERANCES
    dy = rng.standard_normal(f(*x).shape)
    grads = backward(dy)
    for k, (arr, got) in enumerate(zip(x, grads)):
        num = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            plus, minus = [a.copy() for a in x], [a.copy() for a in x]
            plus[k][i] += tol.fd_h
            minus[k][i] -= tol.fd_h
            num[i] = ((f(*plus) * dy).sum() - (f(*minus) * dy).sum()) / (2 * tol.fd_h)
        bad = ~np.isclose(got, num, rtol=tol.fd_rtol, atol=tol.fd_atol)
        assert not bad.any(), (f"{what}, input {k}: first bad at {tuple(np.argwhere(bad)[0])}: analytic "
                               f"{got[bad][0]!r}, numeric {num[bad][0]!r}")


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape, axis", [((3, 2, 4), 1), ((4, 3), 1), ((2, 3, 2, 3), -1)], ids=str)
def test_reference_batch_norm_backward_is_the_derivative(shape, axis, training):
    rng = np.random.default_rng(23)
    c = shape[axis]
    x, w, b = rng.standard_normal(shape), rng.standard_normal(c), rng.standard_normal(c)
    rm, rv = rng.standard_normal(c), rng.random(c) + 0.5

    def f(x, w, b):
        return reference.batch_norm(x, w, b, rm.copy(), rv.copy(), training=training, axis=axis)[0]

    _, mean, invstd = reference.batch_norm(x, w, b, rm.copy(), rv.copy(), training=training, axis=axis)
    _fd_check(f, lambda dy: reference.batch_norm_backward(dy, x, mean, invstd, w, training=training, axis=axis),
              (x, w, b), rng, f"batch_norm {shape} training={training}")


def test_reference_batch_norm_relu_backward_is_the_derivative_away_from_zero():
    rng = np.random.default_rng(24)
    x, w, b = rng.standard_normal((5, 3, 2)), rng.standard_normal(3), rng.standard_normal(3)
    y, mean, invstd = reference.batch_norm(x, w, b, activation="relu")
    assert np.abs(reference.batch_norm(x, w, b)[0]).min() > 1e-4  # no output within a step of the kink

    def f(x, w, b):
        return reference.batch_norm(x, w, b, activation="relu")[0]

    _fd_check(f, lambda dy: reference.batch_norm_backward(dy, x, mean, invstd, w, relu_output=y), (x, w, b), rng,
              "batch_norm + relu")


@pytest.mark.parametrize("shape, dims", [((3, 5), (5,)), ((2, 2, 3), (2, 3))], ids=str)
def test_reference_layer_norm_backward_is_the_derivative(shape, dims):
    rng = np.random.default_rng(25)
    x, w, b = rng.standard_normal(shape), rng.standard_normal(dims), rng.standard_normal(dims)
    _, mean, invstd = reference.layer_norm(x, dims, w, b)
    _fd_check(lambda x, w, b: reference.layer_norm(x, dims, w, b)[0],
              lambda dy: reference.layer_norm_backward(dy, x, mean, invstd, dims, w), (x, w, b), rng,
              f"layer_norm {shape}")


TORCH_TOL = dict(rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3), (3, 4, 5), (2, 3, 4, 5)], ids=str)
def test_reference_batch_norm_equals_torch(shape, training):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(26)
    c = shape[1]
    x, w, b = rng.standard_normal(shape) + 3, rng.standard_normal(c), rng.standard_normal(c)
    rm, rv = rng.standard_normal(c), rng.random(c) + 0.5
    tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    trm, trv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    ty = torch.relu(torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, training=training, momentum=0.2))
    dy = rng.standard_normal(shape)
    ty.backward(torch.from_numpy(dy))
    my_rm, my_rv = rm.copy(), rv.copy()
    y, mean, invstd = reference.batch_norm(x, w, b, my_rm, my_rv, training=training, momentum=0.2,
                                           activation="relu")
    np.testing.assert_allclose(y, ty.detach().numpy(), **TORCH_TOL)
    np.testing.assert_allclose(my_rm, trm.numpy(), **TORCH_TOL)
    np.testing.assert_allclose(my_rv, trv.numpy(), **TORCH_TOL)
    dx, dw, db = reference.batch_norm_backward(dy, x, mean, invstd, w, training=training, relu_output=y)
    for got, want in ((dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        np.testing.assert_allclose(got, want.numpy(), **TORCH_TOL)


def test_native_float32_matches_torch_float32():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(27)
    x = (rng.standard_normal((8, 16, 10, 10)) * 3 + 1).astype(np.float32)
    w, b = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    rm, rv = np.zeros(16, np.float32), np.ones(16, np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.nn.functional.batch_norm(tx, torch.zeros(16), torch.ones(16), torch.from_numpy(w),
                                        torch.from_numpy(b), training=True)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    ty.backward(torch.from_numpy(dy))
    y, mean, invstd = ops.batch_norm(x, w, b, rm, rv)
    dx, _, _ = ops.batch_norm_backward(dy, x, mean, invstd, w)
    assert_close(y, ty.detach().numpy(), 1e-5, "batch_norm vs torch float32")
    assert_close(dx, tx.grad.numpy(), 1e-5 * np.abs(dx).max(), "batch_norm dx vs torch float32")
    xl = rng.standard_normal((4, 7, 96)).astype(np.float32)
    txl = torch.from_numpy(xl).requires_grad_()
    tyl = torch.nn.functional.layer_norm(txl, (96,), torch.from_numpy(np.ones(96, np.float32)), None)
    tyl.backward(torch.from_numpy(np.ones_like(xl) + xl))
    yl, ml, il = ops.layer_norm(xl, 96, np.ones(96, np.float32))
    assert_close(yl, tyl.detach().numpy(), 1e-5, "layer_norm vs torch float32")
    assert_close(ops.layer_norm_backward(np.ones_like(xl) + xl, xl, ml, il, 96)[0], txl.grad.numpy(), 1e-5,
                 "layer_norm dx vs torch float32")


@pytest.mark.parametrize("shape, dims", [((4, 6), (6,)), ((2, 3, 4, 5), (4, 5))], ids=str)
def test_reference_layer_norm_equals_torch(shape, dims):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(28)
    x, w, b = rng.standard_normal(shape) - 4, rng.standard_normal(dims), rng.standard_normal(dims)
    tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    ty = torch.nn.functional.layer_norm(tx, dims, tw, tb)
    dy = rng.standard_normal(shape)
    ty.backward(torch.from_numpy(dy))
    y, mean, invstd = reference.layer_norm(x, dims, w, b)
    np.testing.assert_allclose(y, ty.detach().numpy(), **TORCH_TOL)
    for got, want in zip(reference.layer_norm_backward(dy, x, mean, invstd, dims, w), (tx.grad, tw.grad, tb.grad)):
        np.testing.assert_allclose(got, want.numpy(), **TORCH_TOL)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("shape, axis", [((4, 6, 9, 7), 1), ((4, 9, 7, 20), -1), ((33, 5), 1)], ids=str)
def test_training_forward_equals_inference_with_the_batch_statistics_bitwise(isa, shape, axis, activation, dtype):
    # The training forward runs statistics, affine and apply channel by channel in one call; with
    # momentum 1 and biased variance the running arrays receive exactly the batch statistics, and an
    # inference call with them (affine and apply over all channels) must give the same bits: what a
    # GEMM epilogue applying fma(z, scale, shift) relies on.
    rng = np.random.default_rng(29)
    x, w, b = bn_inputs(rng, shape, axis, dtype)
    c = shape[axis]
    rm, rv = np.zeros(c, dtype), np.ones(c, dtype)
    y, mean, invstd = ops.batch_norm(x, w, b, rm, rv, momentum=1.0, unbiased=False, axis=axis,
                                     activation=activation)
    assert_equal(rm, mean, "running_mean with momentum 1")
    y2, mean2, invstd2 = ops.batch_norm(x, w, b, rm, rv, training=False, axis=axis, activation=activation)
    assert_equal(y2, y, f"inference with the batch statistics vs training {shape} on {isa}")
    assert_equal(invstd2, invstd, "invstd")
