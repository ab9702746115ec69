"""lamina.ops.conv2d and conv2d_backward (implicit GEMM) against lamina.reference across the shape
families (1x1 to 7x7 kernels, strides 1-3, dilation 1-2, groups 1, 2 and depthwise, odd and even
sizes, batch 1 and 33, asymmetric padding), both layouts, float32 and float64; every ISA and
packing mode; 1 and 2 threads bitwise; the in-place gradient conventions; bad input."""
import numpy as np
import pytest

import lamina
from lamina import _native, ops
from lamina import reference as ref

from conftest import conv_atol

# (N, C, H, W, Cout, kh, kw, stride, padding (t, b, l, r), dilation, groups)
CASES = [
    (2, 3, 6, 7, 4, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),     # 1x1
    (1, 4, 8, 8, 8, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),     # 3x3 same, even
    (2, 5, 9, 7, 7, 3, 3, (2, 2), (0, 1, 1, 0), (1, 1), 1),     # stride 2, asymmetric padding
    (2, 4, 11, 10, 6, 5, 5, (3, 2), (2, 2, 1, 3), (1, 1), 2),   # 5x5, stride 3, groups 2
    (1, 3, 13, 12, 5, 7, 7, (1, 3), (3, 3, 3, 3), (1, 1), 1),   # 7x7
    (2, 6, 9, 9, 6, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2), 6),     # depthwise, dilation 2
    (1, 4, 10, 9, 8, 3, 3, (2, 1), (1, 0, 2, 1), (2, 1), 4),    # depthwise, multiplier 2
    (33, 2, 5, 6, 3, 3, 2, (1, 2), (1, 1, 0, 1), (1, 2), 1),    # batch 33
    (3, 7, 5, 5, 13, 2, 2, (1, 1), (0, 0, 0, 0), (1, 1), 1),    # prime channel counts, even kernel
    (2, 40, 6, 6, 35, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),   # deeper than an MR/NR tile
    (3, 1, 10, 9, 6, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1), 1),    # one input channel (a first layer)
]
LAYOUTS = ["channels_first", "channels_last"]
DTYPES = [np.float32, np.float64]


def make(case, layout, dtype, seed=0):
    N, C, H, W, Co, kh, kw, stride, padding, dilation, groups = case
    rng = np.random.default_rng(seed)
    x_shape = (N, C, H, W) if layout == "channels_first" else (N, H, W, C)
    w_shape = (Co, C // groups, kh, kw) if layout == "channels_first" else (kh, kw, C // groups, Co)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(Co).astype(dtype)
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, layout=layout)
    return x, w, b, geometry


def depths(case):
    """Terms per output of forward, dx and dW."""
    N, C, H, W, Co, kh, kw, stride, padding, dilation, groups = case
    return kh * kw * C // groups, kh * kw * Co // groups


def assert_close(actual, expected, atol, what):
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    err = np.abs(actual.astype(np.float64) - expected) - atol
    if (err > 0).any() or not np.isfinite(actual).all():
        i = np.unravel_index(np.argmax(err), err.shape)
        raise AssertionError(f"{what}: at {i} got {actual[i]!r}, expected {expected[i]!r} "
                             f"(atol {np.broadcast_to(atol, err.shape)[i]:.3g})")


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_and_backward_match_the_reference(case, layout, dtype):
    x, w, b, geo = make(case, layout, dtype)
    k_fwd, k_dx = depths(case)
    mag = ref.conv2d(np.abs(x), np.abs(w), np.abs(b), **geo)
    for act in (None, "relu", "gelu"):
        y = ops.conv2d(x, w, b, activation=act, **geo)
        assert y.dtype == dtype
        expected = ref.conv2d(x, w, b, activation=act, **geo)
        assert_close(y, expected, conv_atol(dtype, k_fwd + 1, mag), f"conv2d {case} {layout} {act}")
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    dx, dW, db = ops.conv2d_backward(dy, x, w, **geo)
    rdx, rdW, rdb = ref.conv2d_backward(dy, x, w, **geo)
    mdx, mdW, mdb = ref.conv2d_backward(np.abs(dy), np.abs(x), np.abs(w), **geo)
    reduction = dy.size // b.size
    assert_close(dx, rdx, conv_atol(dtype, k_dx, mdx), f"dx {case} {layout}")
    assert_close(dW, rdW, conv_atol(dtype, reduction, mdW), f"dW {case} {layout}")
    assert_close(db, rdb, conv_atol(dtype, reduction, mdb), f"db {case} {layout}")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_activation_is_fused(layout):
    x, w, b, geo = make(CASES[2], layout, np.float64)
    mag = ref.conv2d(np.abs(x), np.abs(w), np.abs(b), **geo)
    for act in ("sigmoid", "tanh", "leaky_relu", "gelu_tanh", "linear"):
        y = ops.conv2d(x, w, b, activation=act, negative_slope=0.2, **geo)
        expected = ref.conv2d(x, w, b, activation=act, negative_slope=0.2, **geo)
        assert_close(y, expected, conv_atol(np.float64, 46, mag), f"activation {act}")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_isa_and_packing_mode(isa, packing, layout, dtype):
    for case in (CASES[1], CASES[3], CASES[9]):
        x, w, b, geo = make(case, layout, dtype)
        k_fwd, k_dx = depths(case)
        mag = ref.conv2d(np.abs(x), np.abs(w), np.abs(b), **geo)
        y = ops.conv2d(x, w, b, activation="relu", **geo)
        assert_close(y, ref.conv2d(x, w, b, activation="relu", **geo), conv_atol(dtype, k_fwd + 1, mag),
                     f"{isa} {packing} {case}")
        dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
        got = ops.conv2d_backward(dy, x, w, **geo)
        want = ref.conv2d_backward(dy, x, w, **geo)
        mags = ref.conv2d_backward(np.abs(dy), np.abs(x), np.abs(w), **geo)
        for name, a, e, m, k in zip(("dx", "dW", "db"), got, want, mags, (k_dx, dy.size, dy.size)):
            assert_close(a, e, conv_atol(dtype, k, m), f"{name} {isa} {packing} {case}")


# Big enough for both threads to take part: the image loop (batch >= threads) and the product's own
# split (batch 1), forward and backward.
THREAD_CASES = [
    (4, 16, 16, 16, 16, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (1, 32, 20, 18, 48, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (3, 16, 15, 15, 24, 3, 3, (2, 2), (1, 0, 1, 0), (1, 1), 2),
]


@pytest.mark.parametrize("case", THREAD_CASES, ids=["images", "one-image", "strided-groups"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_one_and_two_threads_are_bitwise_equal(case, layout, dtype):
    x, w, b, geo = make(case, layout, dtype)
    before = lamina.get_num_threads()
    results = []
    try:
        for t in (1, 2):
            lamina.set_num_threads(t)
            y = ops.conv2d(x, w, b, activation="tanh", **geo)
            dy = np.cos(y).astype(dtype)
            results.append((y, *ops.conv2d_backward(dy, x, w, **geo)))
    finally:
        lamina.set_num_threads(before)
    for name, a, b2 in zip(("y", "dx", "dW", "db"), *results):
        diff = np.argwhere(a != b2)
        assert len(diff) == 0, f"{name} differs between 1 and 2 threads at {tuple(diff[0])}"


def test_gradients_accumulate_in_place_and_can_be_skipped():
    x, w, b, geo = make(CASES[3], "channels_first", np.float64)
    dy = np.ones(ops.conv2d(x, w, b, **geo).shape)
    dx0, dW0, db0 = ops.conv2d_backward(dy, x, w, **geo)
    dW, db = np.full_like(w, 2.0), np.full_like(b, -1.0)
    dx, dW_out, db_out = ops.conv2d_backward(dy, x, w, dW=dW, db=db, **geo)
    assert dW_out is dW and db_out is db
    np.testing.assert_allclose(dW, dW0 + 2.0, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(db, db0 - 1.0, rtol=1e-13, atol=1e-13)
    dx, dW2, db2 = ops.conv2d_backward(dy, x, w, db=False, need_dx=False, **geo)
    assert dx is None and db2 is None
    np.testing.assert_array_equal(dW2, dW0)


def test_integer_input_is_cast_and_no_bias():
    x = np.arange(2 * 3 * 5 * 5).reshape(2, 3, 5, 5) % 7
    w = np.random.default_rng(0).standard_normal((4, 3, 3, 3))
    y = ops.conv2d(x, w)
    assert y.dtype == np.float64 and y.shape == (2, 4, 3, 3)
    np.testing.assert_allclose(y, ref.conv2d(x, w), rtol=1e-12, atol=1e-12)


def test_kernel_as_large_as_the_padded_input_gives_one_pixel():
    x, w, b, geo = make((2, 3, 3, 4, 2, 5, 6, (2, 2), (1, 1, 1, 1), (1, 1), 1), "channels_last", np.float64)
    y = ops.conv2d(x, w, b, **geo)
    assert y.shape == (2, 1, 1, 2)
    np.testing.assert_allclose(y, ref.conv2d(x, w, b, **geo), rtol=1e-12, atol=1e-12)


def test_empty_batch():
    x, w, b, geo = make((0, 3, 5, 5, 4, 3, 3, (1, 1), (0, 0, 0, 0), (1, 1), 1), "channels_first", np.float32)
    assert ops.conv2d(x, w, b, **geo).shape == (0, 4, 3, 3)
    dx, dW, db = ops.conv2d_backward(np.zeros((0, 4, 3, 3), np.float32), x, w, **geo)
    assert dx.shape == x.shape and not dW.any() and not db.any()


GOOD = dict(stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1, layout="channels_first")


@pytest.mark.parametrize("change, error, match", [
    (dict(stride=(0, 1)), ValueError, "stride"),
    (dict(dilation=(1, -1)), ValueError, "dilation"),
    (dict(groups=0), ValueError, "groups"),
    (dict(groups=2), ValueError, "divisible by groups"),
    (dict(padding=(0, -1, 0, 0)), ValueError, "padding"),
    (dict(padding=(0, 0)), ValueError, "padding"),
    (dict(layout="NCHW"), ValueError, "layout"),
    (dict(x_shape=(2, 3, 2, 5)), ValueError, "kernel larger than the padded input"),
    (dict(x_shape=(2, 3, 5)), ValueError, "4-D"),
    (dict(x_shape=(2, 4, 5, 5)), ValueError, "input channels per group"),
    (dict(dtype=np.complex128), TypeError, "dtype"),
    (dict(activation="softmax"), ValueError, "activation"),
    (dict(bias_shape=(5,)), ValueError, "bias"),
])
def test_bad_input_is_a_clear_error_and_writes_nothing(change, error, match):
    change = dict(change)
    x = np.ones(change.pop("x_shape", (2, 3, 5, 5)), dtype=change.pop("dtype", np.float32))
    w = np.ones((3, 3, 3, 3), np.float32)
    b = np.ones(change.pop("bias_shape", (3,)), np.float32)
    act = change.pop("activation", None)
    geo = {**GOOD, **change}
    with pytest.raises(error, match=match):
        ops.conv2d(x, w, b, activation=act, **geo)
    with pytest.raises(error, match=match):
        ref.conv2d(x, w, b, activation=act, **geo)
    if act is None and b.shape == (3,):
        dW = np.full_like(w, 7.0)
        with pytest.raises(error, match=match):
            ops.conv2d_backward(np.ones((2, 3, 3, 3), np.float32), x, w, dW=dW, **geo)
        assert (dW == 7.0).all()


def test_backward_checks_dy_and_the_gradients_before_writing():
    x, w = np.ones((2, 3, 5, 5), np.float32), np.ones((4, 3, 3, 3), np.float32)
    dW, db = np.full_like(w, 7.0), np.full(4, 7.0, np.float32)
    with pytest.raises(ValueError, match="dy has shape"):
        ops.conv2d_backward(np.ones((2, 4, 3, 4), np.float32), x, w, dW=dW, db=db, **GOOD)
    with pytest.raises(ValueError, match="dW"):
        ops.conv2d_backward(np.ones((2, 4, 3, 3), np.float32), x, w, dW=np.zeros((4, 3, 3, 2), np.float32), **GOOD)
    with pytest.raises(TypeError, match="db"):
        ops.conv2d_backward(np.ones((2, 4, 3, 3), np.float32), x, w, db=np.zeros(4, np.float64), **GOOD)
    frozen = np.zeros_like(w)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        ops.conv2d_backward(np.ones((2, 4, 3, 3), np.float32), x, w, dW=frozen, **GOOD)
    assert (dW == 7.0).all() and (db == 7.0).all()


def test_the_binding_checks_geometry_on_its_own():
    x, w = np.ones((1, 2, 4, 4), np.float32), np.ones((2, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="kernel larger"):
        _native.conv2d(x, w, None, 1, 1, 0, 0, 0, 0, 2, 2, 1, "channels_first", None)
    with pytest.raises(ValueError, match="stride"):
        _native.conv2d(x, w, None, 0, 1, 0, 0, 0, 0, 1, 1, 1, "channels_first", None)
    with pytest.raises(ValueError, match="channels"):
        _native.conv2d(x, w, None, 1, 1, 0, 0, 0, 0, 1, 1, 1, "channels_last", None)


# A 1x1 convolution is a plain product, and the engine's virtual operands pack exactly the panels
# its strided operands would: over the register-tile and cache-block edges (m and n around MR and
# NR, k around KC), the implicit GEMM gives bitwise what lamina.ops.matmul gives.
EDGE_M = [1, 5, 6, 7, 13, 97]         # pixels (channels_last) or output channels (channels_first)
EDGE_N = [1, 7, 8, 15, 16, 17, 33]    # output channels (channels_last) or pixels (channels_first)
EDGE_K = [1, 255, 256, 257, 513, 1027]


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_1x1_convolution_is_bitwise_the_product_over_tile_edges(isa, packing, dtype):
    rng = np.random.default_rng(7)
    for m, n, k in [(m, n, 3) for m in EDGE_M for n in EDGE_N] + [(13, 17, k) for k in EDGE_K] + [(7, 33, 513)]:
        # channels_last: y (1, m, 1, n) = x (m, k) @ w (k, n); A is the gathered operand
        x = rng.standard_normal((1, m, 1, k)).astype(dtype)
        w = rng.standard_normal((1, 1, k, n)).astype(dtype)
        geo = dict(GOOD, layout="channels_last")
        y = ops.conv2d(x, w, **geo)
        np.testing.assert_array_equal(y.reshape(m, n), ops.matmul(x.reshape(m, k), w.reshape(k, n)),
                                      err_msg=f"channels_last m={m} n={n} k={k}")
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx, dW, _ = ops.conv2d_backward(dy, x, w, **geo)
        np.testing.assert_array_equal(dW.reshape(k, n), ops.matmul(x.reshape(m, k).T, dy.reshape(m, n)),
                                      err_msg=f"channels_last dW m={m} n={n} k={k}")
        # channels_first: y (1, m, 1, n) = w (m, k) @ x (k, n); B is the gathered operand
        x = rng.standard_normal((1, k, 1, n)).astype(dtype)
        w = rng.standard_normal((m, k, 1, 1)).astype(dtype)
        y = ops.conv2d(x, w, **GOOD)
        np.testing.assert_array_equal(y.reshape(m, n), ops.matmul(w.reshape(m, k), x.reshape(k, n)),
                                      err_msg=f"channels_first m={m} n={n} k={k}")
