"""Pooling: lamina.ops against lamina.reference over the shape families (kernels 1-3 and global,
strides 1-3, dilation 1-2, symmetric and asymmetric padding, ceil_mode, count_include_pad,
divisor_override, adaptive sizes that divide and that do not, odd and even sizes, batch 1 and 33,
both layouts, float32 and float64); 1 and 2 threads bitwise on every kernel path; the reference
against central finite differences and torch.nn.functional; the plan's pooling steps against the
ops bitwise; bad input.
"""
import numpy as np
import pytest

import lamina
from lamina import _native, ops, reference
from conftest import POOL_TORCH_TOL, REFERENCE_TOLERANCES, pool_atol

LAYOUTS = ["channels_first", "channels_last"]
DTYPES = [np.float32, np.float64]


def to_layout(x, layout):
    """An (N, C, H, W) array in `layout`, C-contiguous."""
    return np.ascontiguousarray(x if layout == "channels_first" else x.transpose(0, 2, 3, 1))


def sample(rng, batch, channels, h, w, dtype, layout):
    return to_layout(rng.standard_normal((batch, channels, h, w)), layout).astype(dtype)


def assert_equal(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    bad = ~((got == want) | (np.isnan(got) & np.isnan(want)) if got.dtype.kind == "f" else got == want)
    if bad.any():
        i = tuple(int(k) for k in np.argwhere(bad)[0])
        pytest.fail(f"{what}: shape {got.shape}, {int(bad.sum())} differ; first at {i}: got {got[i]!r}, "
                    f"expected {want[i]!r}")


def assert_close(got, want, atol, what, rtol=0.0):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    bad = ~np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    if bad.any():
        i = tuple(int(k) for k in np.argwhere(bad)[0])
        pytest.fail(f"{what}: shape {got.shape}, {int(bad.sum())} differ; first at {i}: got {got[i]!r}, "
                    f"expected {want[i]!r} (atol {atol:.3g})")


# (kernel, stride, padding, dilation, ceil_mode, H, W); kernel None: the whole plane (global max).
MAX_CASES = [
    ((1, 1), (1, 1), (0, 0, 0, 0), (1, 1), False, 5, 6),
    ((2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False, 6, 8),
    ((2, 2), (2, 2), (0, 0, 0, 0), (1, 1), True, 7, 5),
    ((3, 3), (2, 2), (1, 1, 1, 1), (1, 1), True, 7, 7),
    ((3, 3), (1, 1), (1, 1, 1, 1), (2, 2), False, 8, 7),
    ((3, 2), (3, 1), (0, 1, 1, 0), (1, 2), True, 9, 6),
    ((2, 3), (3, 3), (1, 0, 0, 1), (1, 1), True, 5, 8),
    (None, None, (0, 0, 0, 0), (1, 1), False, 5, 6),
]


def max_args(case):
    kernel, stride, padding, dilation, ceil_mode, h, w = case
    if kernel is None:
        kernel = stride = (h, w)
    return dict(kernel=kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode), h, w


@pytest.mark.parametrize("batch, channels", [(1, 3), (33, 2)])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", MAX_CASES, ids=str)
def test_max_pool2d_equals_the_reference(case, dtype, layout, batch, channels):
    args, h, w = max_args(case)
    rng = np.random.default_rng(h * 100 + w)
    x = sample(rng, batch, channels, h, w, dtype, layout)
    y, idx = ops.max_pool2d(x, layout=layout, **args)
    ry, ridx = reference.max_pool2d(x, layout=layout, **args)
    assert y.dtype == dtype and idx.dtype == np.int64
    assert_equal(y, ry.astype(dtype), f"max_pool2d y {case} {layout}")
    assert_equal(idx, ridx, f"max_pool2d indices {case} {layout}")
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.max_pool2d_backward(dy, idx, x.shape, layout=layout)
    rdx = reference.max_pool2d_backward(dy, ridx, x.shape, layout=layout)
    k = args["kernel"]
    overlap = -(-k[0] // args["stride"][0]) * -(-k[1] // args["stride"][1])
    assert dx.dtype == dtype
    assert_close(dx, rdx, pool_atol(dtype, overlap, np.abs(dy).max()), f"max_pool2d_backward {case} {layout}")


# (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override, H, W)
AVG_CASES = [
    ((1, 1), (1, 1), (0, 0, 0, 0), False, True, None, 5, 6),
    ((2, 2), (2, 2), (0, 0, 0, 0), False, True, None, 6, 8),
    ((3, 3), (2, 2), (1, 1, 1, 1), True, True, None, 7, 7),
    ((3, 3), (2, 2), (1, 1, 1, 1), True, False, None, 7, 7),
    ((3, 3), (3, 3), (0, 1, 0, 2), False, False, None, 8, 7),  # Keras 'same': padding at the end
    ((2, 3), (1, 2), (1, 0, 1, 1), True, True, 3, 5, 6),
    ((3, 2), (2, 3), (1, 1, 0, 1), True, False, None, 6, 5),
    ((3, 1), (1, 3), (1, 1, 0, 0), False, True, 7, 5, 7),
    (None, None, (0, 0, 0, 0), False, True, None, 5, 6),
]


def avg_args(case):
    kernel, stride, padding, ceil_mode, cip, divisor, h, w = case
    if kernel is None:
        kernel = stride = (h, w)
    return dict(kernel=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=cip,
                divisor_override=divisor), h, w


@pytest.mark.parametrize("batch, channels", [(1, 3), (33, 2)])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", AVG_CASES, ids=str)
def test_avg_pool2d_equals_the_reference(case, dtype, layout, batch, channels):
    args, h, w = avg_args(case)
    rng = np.random.default_rng(h * 100 + w + 1)
    x = sample(rng, batch, channels, h, w, dtype, layout)
    y = ops.avg_pool2d(x, layout=layout, **args)
    ry = reference.avg_pool2d(x, layout=layout, **args)
    terms = args["kernel"][0] * args["kernel"][1]
    assert y.dtype == dtype
    assert_close(y, ry, pool_atol(dtype, terms, np.abs(x).max()), f"avg_pool2d {case} {layout}")
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.avg_pool2d_backward(dy, x.shape, layout=layout, **args)
    rdx = reference.avg_pool2d_backward(dy, x.shape, layout=layout, **args)
    assert dx.dtype == dtype
    assert_close(dx, rdx, pool_atol(dtype, terms, np.abs(dy).max()), f"avg_pool2d_backward {case} {layout}")


# (H, W, Ho, Wo): sizes that divide, that do not, an output larger than the input, global.
ADAPTIVE_CASES = [(6, 6, 2, 3), (6, 9, 3, 3), (7, 6, 4, 5), (5, 6, 7, 8), (5, 7, 1, 1), (8, 8, 8, 8)]


@pytest.mark.parametrize("batch, channels", [(1, 3), (33, 2)])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=str)
def test_adaptive_avg_pool2d_equals_the_reference(case, dtype, layout, batch, channels):
    h, w, ho, wo = case
    rng = np.random.default_rng(h * 100 + w + 2)
    x = sample(rng, batch, channels, h, w, dtype, layout)
    y = ops.adaptive_avg_pool2d(x, (ho, wo), layout=layout)
    ry = reference.adaptive_avg_pool2d(x, (ho, wo), layout=layout)
    terms = (h // ho + 2) * (w // wo + 2)
    assert_close(y, ry, pool_atol(dtype, terms, np.abs(x).max()), f"adaptive_avg_pool2d {case} {layout}")
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.adaptive_avg_pool2d_backward(dy, x.shape, layout=layout)
    rdx = reference.adaptive_avg_pool2d_backward(dy, x.shape, layout=layout)
    overlap = (-(-ho // h) + 1) * (-(-wo // w) + 1)
    assert_close(dx, rdx, pool_atol(dtype, overlap, np.abs(dy).max()), f"adaptive_avg_pool2d_backward {case} {layout}")


def test_max_pool2d_ties_go_to_the_first_cell_and_nan_wins_as_in_torch():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    x = np.zeros((1, 1, 4, 6))
    x[0, 0, 1, 1] = x[0, 0, 0, 3] = np.nan          # one NaN in a window, two in another
    x[0, 0, 1, 2] = np.nan
    x[0, 0, 2:, :2] = -np.inf                        # a window of -inf only: its first cell
    x[0, 0, 2:, 4:] = 1.0                            # a window of ties
    for layout in LAYOUTS:
        y, idx = ops.max_pool2d(to_layout(x, layout), kernel=(2, 2), stride=(2, 2), layout=layout)
        ty, tidx = F.max_pool2d(torch.from_numpy(x), 2, 2, return_indices=True)
        assert_equal(y, to_layout(ty.numpy(), layout), f"{layout} values with NaN, -inf and ties")
        assert_equal(idx, to_layout(tidx.numpy(), layout), f"{layout} indices with NaN, -inf and ties")
        ry, ridx = reference.max_pool2d(to_layout(x, layout), kernel=(2, 2), stride=(2, 2), layout=layout)
        assert_equal(ridx, idx, f"{layout} reference indices")


def test_keras_same_average_counts_only_the_input_cells():
    # Keras AveragePooling2D(2, padding="same") on 5x5: the odd pixel's padding goes at the end and
    # is not counted, so the last row and column average 2 cells and the corner 1.
    x = np.arange(25.0).reshape(1, 5, 5, 1)
    y = ops.avg_pool2d(x, kernel=(2, 2), stride=(2, 2), padding=(0, 1, 0, 1), count_include_pad=False,
                       layout="channels_last")
    want = np.array([[3.0, 5.0, 6.5], [13.0, 15.0, 16.5], [20.5, 22.5, 24.0]])
    assert_equal(y[0, :, :, 0], want, "Keras 'same' average")


def test_output_size_follows_torch_ceil_mode_rule():
    # ceil_mode drops a last window that would start in the padding: H=5, k=2, s=2, pad 1 -> 3, not 4.
    x = np.zeros((1, 1, 5, 5))
    assert ops.max_pool2d(x, kernel=(2, 2), stride=(2, 2), padding=(1, 1, 1, 1), ceil_mode=True)[0].shape == (1, 1, 3, 3)
    assert ops.max_pool2d(x, kernel=(2, 2), stride=(2, 2), ceil_mode=True)[0].shape == (1, 1, 3, 3)
    assert ops.max_pool2d(x, kernel=(2, 2), stride=(2, 2))[0].shape == (1, 1, 2, 2)


# ---- threads and kernel paths: bitwise equal --------------------------------------------------


def _all_ops(x, layout):
    """Every pooling op's forward and backward on x (large enough for two threads)."""
    rng = np.random.default_rng(5)
    out = {}
    y, idx = ops.max_pool2d(x, kernel=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1), dilation=(1, 2), layout=layout)
    out["max"], out["argmax"] = y, idx
    out["max_backward"] = ops.max_pool2d_backward(rng.standard_normal(y.shape).astype(x.dtype), idx, x.shape,
                                                  layout=layout)
    args = dict(kernel=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1), ceil_mode=True, count_include_pad=False)
    y = ops.avg_pool2d(x, layout=layout, **args)
    out["avg"] = y
    out["avg_backward"] = ops.avg_pool2d_backward(rng.standard_normal(y.shape).astype(x.dtype), x.shape,
                                                  layout=layout, **args)
    y = ops.adaptive_avg_pool2d(x, (5, 7), layout=layout)
    out["adaptive"] = y
    out["adaptive_backward"] = ops.adaptive_avg_pool2d_backward(rng.standard_normal(y.shape).astype(x.dtype),
                                                                x.shape, layout=layout)
    return out


@pytest.mark.parametrize("shape", [(8, 24, 30, 29), (1, 70, 40, 41)])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_one_and_two_threads_and_every_kernel_path_agree_bitwise(isa, dtype, layout, shape):
    x = to_layout(np.random.default_rng(3).standard_normal(shape), layout).astype(dtype)
    before = lamina.get_num_threads()
    try:
        lamina.set_num_threads(1)
        one = _all_ops(x, layout)
        lamina.set_num_threads(2)
        two = _all_ops(x, layout)
    finally:
        lamina.set_num_threads(before)
    for name in one:
        assert_equal(two[name], one[name], f"{name} {shape} {layout} on {isa}: 2 threads vs 1")
    ry = reference.adaptive_avg_pool2d(x[:1], (5, 7), layout=layout)
    assert_close(one["adaptive"][:1], ry, pool_atol(dtype, 48, np.abs(x).max()), f"adaptive on {isa}")


# ---- the reference against finite differences and torch ---------------------------------------


def _fd_check(f, backward, x, rng):
    """backward(dy) against central differences of sum(f(x) * dy)."""
    tol = REFERENCE_TOLERANCES
    dy = rng.standard_normal(f(x).shape)
    got = backward(dy)
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += tol.fd_h
        xm[i] -= tol.fd_h
        num[i] = ((f(xp) * dy).sum() - (f(xm) * dy).sum()) / (2 * tol.fd_h)
    bad = ~np.isclose(got, num, rtol=tol.fd_rtol, atol=tol.fd_atol)
    assert not bad.any(), f"first bad at {tuple(np.argwhere(bad)[0])}: analytic {got[bad][0]!r}, numeric {num[bad][0]!r}"


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", [AVG_CASES[3], AVG_CASES[4], AVG_CASES[5]], ids=str)
def test_reference_avg_pool2d_backward_is_the_derivative(case, layout):
    args, h, w = avg_args(case)
    rng = np.random.default_rng(7)
    x = sample(rng, 1, 2, h, w, np.float64, layout)
    _fd_check(lambda v: reference.avg_pool2d(v, layout=layout, **args),
              lambda dy: reference.avg_pool2d_backward(dy, x.shape, layout=layout, **args), x, rng)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", [(7, 6, 4, 5), (5, 6, 7, 8)], ids=str)
def test_reference_adaptive_avg_pool2d_backward_is_the_derivative(case, layout):
    h, w, ho, wo = case
    rng = np.random.default_rng(8)
    x = sample(rng, 1, 2, h, w, np.float64, layout)
    _fd_check(lambda v: reference.adaptive_avg_pool2d(v, (ho, wo), layout=layout),
              lambda dy: reference.adaptive_avg_pool2d_backward(dy, x.shape, layout=layout), x, rng)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", [MAX_CASES[3], MAX_CASES[5]], ids=str)
def test_reference_max_pool2d_backward_is_the_derivative_away_from_ties(case, layout):
    args, h, w = max_args(case)
    rng = np.random.default_rng(9)
    # Distinct values 0.01 apart: a step of 1e-6 never changes a window's winner.
    x = to_layout(rng.permutation(2 * h * w).reshape(1, 2, h, w) * 0.01, layout)

    def f(v):
        return reference.max_pool2d(v, layout=layout, **args)[0]

    _, idx = reference.max_pool2d(x, layout=layout, **args)
    _fd_check(f, lambda dy: reference.max_pool2d_backward(dy, idx, x.shape, layout=layout), x, rng)


TORCH_MAX = [c for c in MAX_CASES if c[2][0] == c[2][1] and c[2][2] == c[2][3]]
TORCH_AVG = [c for c in AVG_CASES if c[2][0] == c[2][1] and c[2][2] == c[2][3]]


@pytest.mark.parametrize("case", TORCH_MAX, ids=str)
def test_reference_max_pool2d_equals_torch(case):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    args, h, w = max_args(case)
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 2, h, w))
    xt = torch.from_numpy(x).requires_grad_()
    ty, tidx = F.max_pool2d(xt, args["kernel"], args["stride"], (args["padding"][0], args["padding"][2]),
                            args["dilation"], ceil_mode=args["ceil_mode"], return_indices=True)
    dy = rng.standard_normal(ty.shape)
    ty.backward(torch.from_numpy(dy))
    y, idx = reference.max_pool2d(x, **args)
    assert_equal(y, ty.detach().numpy(), f"max values {case}")
    assert_equal(idx, tidx.numpy(), f"max indices {case}")
    assert_close(reference.max_pool2d_backward(dy, idx, x.shape), xt.grad.numpy(), POOL_TORCH_TOL["atol"],
                 f"max backward {case}", rtol=POOL_TORCH_TOL["rtol"])


@pytest.mark.parametrize("case", TORCH_AVG, ids=str)
def test_reference_avg_pool2d_equals_torch(case):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    args, h, w = avg_args(case)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 2, h, w))
    xt = torch.from_numpy(x).requires_grad_()
    ty = F.avg_pool2d(xt, args["kernel"], args["stride"], (args["padding"][0], args["padding"][2]),
                      ceil_mode=args["ceil_mode"], count_include_pad=args["count_include_pad"],
                      divisor_override=args["divisor_override"])
    dy = rng.standard_normal(ty.shape)
    ty.backward(torch.from_numpy(dy))
    assert_close(reference.avg_pool2d(x, **args), ty.detach().numpy(), POOL_TORCH_TOL["atol"], f"avg {case}",
                 rtol=POOL_TORCH_TOL["rtol"])
    assert_close(reference.avg_pool2d_backward(dy, x.shape, **args), xt.grad.numpy(), POOL_TORCH_TOL["atol"],
                 f"avg backward {case}", rtol=POOL_TORCH_TOL["rtol"])


@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=str)
def test_reference_adaptive_avg_pool2d_equals_torch(case):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    h, w, ho, wo = case
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3, 2, h, w))
    xt = torch.from_numpy(x).requires_grad_()
    ty = F.adaptive_avg_pool2d(xt, (ho, wo))
    dy = rng.standard_normal(ty.shape)
    ty.backward(torch.from_numpy(dy))
    assert_close(reference.adaptive_avg_pool2d(x, (ho, wo)), ty.detach().numpy(), POOL_TORCH_TOL["atol"],
                 f"adaptive {case}", rtol=POOL_TORCH_TOL["rtol"])
    assert_close(reference.adaptive_avg_pool2d_backward(dy, x.shape), xt.grad.numpy(), POOL_TORCH_TOL["atol"],
                 f"adaptive backward {case}", rtol=POOL_TORCH_TOL["rtol"])


def test_native_float32_matches_torch_float32_on_the_common_convnet_pools():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    x = np.random.default_rng(13).standard_normal((4, 8, 26, 26)).astype(np.float32)
    y, idx = ops.max_pool2d(x, kernel=(2, 2), stride=(2, 2))
    ty, tidx = F.max_pool2d(torch.from_numpy(x), 2, return_indices=True)
    assert_equal(y, ty.numpy(), "max 2x2")
    assert_equal(idx, tidx.numpy(), "argmax 2x2")
    a = ops.avg_pool2d(x, kernel=(2, 2), stride=(2, 2))
    assert_close(a, F.avg_pool2d(torch.from_numpy(x), 2).numpy(), pool_atol(np.float32, 4, np.abs(x).max()), "avg")


# ---- bad input: a clear exception, the input untouched ------------------------------------------


def _bad_calls():
    x = np.ones((2, 3, 5, 5), np.float32)
    y, idx = ops.max_pool2d(x, kernel=(2, 2), stride=(2, 2))
    win = dict(kernel=(2, 2), stride=(2, 2))
    return x, [
        (ValueError, "kernel larger than the padded input", lambda: ops.max_pool2d(x, kernel=(6, 2), stride=(1, 1))),
        (ValueError, "kernel larger than the padded input",
         lambda: ops.avg_pool2d(x, kernel=(4, 4), stride=(1, 1), padding=(0, 0, 0, 0), layout="channels_last")),
        (ValueError, r"stride must hold integers in \[1", lambda: ops.max_pool2d(x, kernel=(2, 2), stride=(0, 1))),
        (ValueError, r"kernel must hold integers in \[1", lambda: ops.avg_pool2d(x, kernel=(-1, 2), stride=(1, 1))),
        (ValueError, r"dilation must hold", lambda: ops.max_pool2d(x, dilation=(0, 1), **win)),
        (ValueError, r"padding must hold integers in \[0", lambda: ops.max_pool2d(x, padding=(-1, 0, 0, 0), **win)),
        (ValueError, "entirely in the padding", lambda: ops.max_pool2d(x, padding=(2, 0, 0, 0), **win)),
        (ValueError, "entirely in the padding", lambda: ops.avg_pool2d(x, padding=(0, 0, 0, 3), **win)),
        (TypeError, "kernel must be a tuple of 2 ints", lambda: ops.max_pool2d(x, kernel=2, stride=(2, 2))),
        (TypeError, "kernel must be a tuple of 2 ints", lambda: ops.max_pool2d(x, kernel=(2.0, 2), stride=(2, 2))),
        (ValueError, "layout must be", lambda: ops.max_pool2d(x, layout="NCHW", **win)),
        (ValueError, "must be 4-D", lambda: ops.max_pool2d(x[0], **win)),
        (TypeError, "must be an integer or floating-point", lambda: ops.max_pool2d(x.astype(bool), **win)),
        (TypeError, "must be an integer or floating-point", lambda: ops.avg_pool2d(x.astype(complex), **win)),
        (ValueError, "divisor_override must hold", lambda: ops.avg_pool2d(x, divisor_override=0, **win)),
        (TypeError, "count_include_pad must be True or False",
         lambda: ops.avg_pool2d(x, count_include_pad=1, **win)),
        (ValueError, "output_size must hold", lambda: ops.adaptive_avg_pool2d(x, (0, 2))),
        (ValueError, "outside the 5 x 5 input plane",
         lambda: ops.max_pool2d_backward(np.ones_like(y), np.full(idx.shape, 25), x.shape)),
        (ValueError, "outside the 5 x 5 input plane",
         lambda: ops.max_pool2d_backward(np.ones_like(y), np.full(idx.shape, -1), x.shape)),
        (TypeError, "indices must be integers", lambda: ops.max_pool2d_backward(y, idx.astype(float), x.shape)),
        (ValueError, "indices has shape", lambda: ops.max_pool2d_backward(y, idx[:1], x.shape)),
        (ValueError, "x_shape has batch", lambda: ops.max_pool2d_backward(y, idx, (3, 3, 5, 5))),
        (ValueError, "dy has shape", lambda: ops.avg_pool2d_backward(np.ones((2, 3, 3, 3)), x.shape, **win)),
        (ValueError, "dy has shape", lambda: ops.adaptive_avg_pool2d_backward(np.ones((2, 4, 3, 3)), x.shape)),
        (TypeError, "x_shape must be a tuple of 4 ints", lambda: ops.adaptive_avg_pool2d_backward(y, "shape")),
    ]


def test_bad_input_raises_a_clear_exception_and_writes_nothing():
    x, calls = _bad_calls()
    for error, message, call in calls:
        with pytest.raises(error, match=message):
            call()
            pytest.fail(f"no {error.__name__} matching {message!r}")
        assert (x == 1).all()


@pytest.mark.parametrize("call, error", [
    (lambda x: _native.max_pool2d(x, (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False, "nchw"), ValueError),
    (lambda x: _native.max_pool2d(x, (2, 2), (2, 2), (0, 0, 0), (1, 1), False, "channels_first"), ValueError),
    (lambda x: _native.max_pool2d(x, (2, 2), (2, 2), (0, 0, 0, 0), (1, 2**40), False, "channels_first"), ValueError),
    (lambda x: _native.max_pool2d(x, (2, 2), (2, 2), (0, 0, 0, 2**63), (1, 1), False, "channels_first"), ValueError),
    (lambda x: _native.max_pool2d(x, (9, 2), (2, 2), (0, 0, 0, 0), (1, 1), False, "channels_first"), ValueError),
    (lambda x: _native.max_pool2d(x, (2, 2), (1, 1), (0, 0, 0, 0), (5, 5), False, "channels_first"), ValueError),
    (lambda x: _native.avg_pool2d(x, (2, 2), (2, 2), (0, 0, 0, 0), False, True, 0, "channels_first"), ValueError),
    (lambda x: _native.avg_pool2d(x.astype(np.int32), (2, 2), (2, 2), (0, 0, 0, 0), False, True, None,
                                  "channels_first"), TypeError),
    (lambda x: _native.avg_pool2d(np.asfortranarray(x), (2, 2), (2, 2), (0, 0, 0, 0), False, True, None,
                                  "channels_first"), ValueError),
    (lambda x: _native.avg_pool2d_backward(np.ones((1, 1, 2, 2)), (1, 1, 2**40, 2**40), (2, 2), (2, 2), (0, 0, 0, 0),
                                           False, True, None, "channels_first"), ValueError),
    (lambda x: _native.adaptive_avg_pool2d(x, (1, 2**31), "channels_last"), ValueError),
    (lambda x: _native.adaptive_avg_pool2d_backward(np.ones((1, 1, 2, 2)), (1, 1, -3, 2), "channels_first"),
     ValueError),
    (lambda x: _native.max_pool2d_backward(np.ones((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), np.int32), (1, 1, 4, 4),
                                           "channels_first"), TypeError),
])
def test_the_bindings_check_before_they_touch_memory(call, error):
    x = np.ones((1, 2, 4, 4))
    with pytest.raises(error):
        call(x)
    assert (x == 1).all()


# ---- plan steps -------------------------------------------------------------------------------


def _pool_step(kind, layout, **attrs):
    return {"kind": kind, "arrays": {}, "attrs": {**attrs, "layout": layout}}


PLAN_POOLS = [
    ("max_pool2d", dict(kernel_h=2, kernel_w=3, stride_h=2, stride_w=2, pad_top=0, pad_bottom=1, pad_left=1,
                        pad_right=1, dilation_h=1, dilation_w=2, ceil_mode=True)),
    ("avg_pool2d", dict(kernel_h=3, kernel_w=2, stride_h=2, stride_w=1, pad_top=1, pad_bottom=1, pad_left=0,
                        pad_right=1, ceil_mode=True, count_include_pad=False, divisor_override=None)),
    ("avg_pool2d", dict(kernel_h=2, kernel_w=2, stride_h=2, stride_w=2, pad_top=0, pad_bottom=0, pad_left=0,
                        pad_right=0, ceil_mode=False, count_include_pad=True, divisor_override=3)),
    ("adaptive_avg_pool2d", dict(out_h=3, out_w=2)),
]


def _op_of(kind, attrs, layout):
    """The ops call (forward, backward) a plan step descriptor stands for."""
    a = attrs
    if kind == "adaptive_avg_pool2d":
        return (lambda x: ops.adaptive_avg_pool2d(x, (a["out_h"], a["out_w"]), layout=layout),
                lambda dy, x, saved: ops.adaptive_avg_pool2d_backward(dy, x.shape, layout=layout))
    win = dict(kernel=(a["kernel_h"], a["kernel_w"]), stride=(a["stride_h"], a["stride_w"]),
               padding=(a["pad_top"], a["pad_bottom"], a["pad_left"], a["pad_right"]), ceil_mode=a["ceil_mode"],
               layout=layout)
    if kind == "max_pool2d":
        win["dilation"] = (a["dilation_h"], a["dilation_w"])
        return (lambda x: ops.max_pool2d(x, **win),
                lambda dy, x, saved: ops.max_pool2d_backward(dy, saved[1], x.shape, layout=layout))
    win.update(count_include_pad=a["count_include_pad"], divisor_override=a["divisor_override"])
    return (lambda x: ops.avg_pool2d(x, **win), lambda dy, x, saved: ops.avg_pool2d_backward(dy, x.shape, **win))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind, attrs", PLAN_POOLS, ids=[p[0] + str(i) for i, p in enumerate(PLAN_POOLS)])
def test_plan_step_trains_and_predicts_bitwise_as_the_ops(kind, attrs, dtype, layout, threads):
    # dense (on the last axis) -> pool -> flatten -> dense -> cross-entropy, one SGD step: the pool's
    # backward runs between two steps that train.
    rng = np.random.default_rng(14)
    batch, c, h, w = 5, 3, 7, 8
    sample_shape = (c, h, w) if layout == "channels_first" else (h, w, c)
    last = sample_shape[-1]
    W0, b0 = (rng.standard_normal((last, last)) * 0.5).astype(dtype), rng.standard_normal(last).astype(dtype)
    forward, backward = _op_of(kind, attrs, layout)
    pooled_shape = forward(np.zeros((1, *sample_shape), dtype))
    pooled_shape = (pooled_shape[0] if isinstance(pooled_shape, tuple) else pooled_shape).shape[1:]
    features = int(np.prod(pooled_shape))
    W1, b1 = (rng.standard_normal((4, features)) * 0.5).astype(dtype), rng.standard_normal(4).astype(dtype)
    x = rng.standard_normal((batch, *sample_shape)).astype(dtype)
    labels = rng.integers(0, 4, batch)
    lr = 0.1

    def steps(W0, b0, W1, b1):
        return [{"kind": "dense", "arrays": {"weight": W0, "bias": b0, "weight_grad": np.zeros_like(W0),
                                             "bias_grad": np.zeros_like(b0)}, "attrs": {"activation": "relu"}},
                _pool_step(kind, layout, **attrs),
                {"kind": "flatten", "arrays": {}, "attrs": {"start_dim": 1, "end_dim": -1}},
                {"kind": "dense", "arrays": {"weight": W1, "bias": b1, "weight_grad": np.zeros_like(W1),
                                             "bias_grad": np.zeros_like(b1)}, "attrs": {}}]

    before = lamina.get_num_threads()
    lamina.set_num_threads(threads)
    try:
        params = [W0.copy(), b0.copy(), W1.copy(), b1.copy()]
        s = steps(*params)
        updates = [{"param": p, "grad": s[i]["arrays"][g], "state": []}
                   for i, p, g in ((0, params[0], "weight_grad"), (0, params[1], "bias_grad"),
                                   (3, params[2], "weight_grad"), (3, params[3], "bias_grad"))]
        plan = _native.Plan(s, sample_shape, "cross_entropy", "sgd", updates)
        assert plan.output_shape == (4,)
        plan.set_hyper(lr, 0.0, 0.0, False, 0.9, 0.999, 1e-8)
        predicted = plan.predict(x)
        loss = plan.train_step(x, labels, 1, False, 0, 0)

        # By hand, with the ops, in the plan's order.
        h1 = _native.linear(x.reshape(-1, last), W0, b0, "relu")
        saved = forward(h1.reshape(x.shape))
        pooled = saved[0] if isinstance(saved, tuple) else saved
        flat = pooled.reshape(batch, -1)
        z = _native.linear(flat, W1, b1, None)
        want_loss, g = _native.cross_entropy(z, labels)
        dW1, db1 = np.zeros_like(W1), np.zeros_like(b1)
        g = _native.linear_backward(g, flat, W1, dW1, db1, True)
        g = backward(np.ascontiguousarray(g.reshape(pooled.shape)), h1.reshape(x.shape), saved)
        g = _native.activation_backward(np.ascontiguousarray(g.reshape(-1, last)), h1, "relu")
        dW0, db0 = np.zeros_like(W0), np.zeros_like(b0)
        _native.linear_backward(g, x.reshape(-1, last), W0, dW0, db0, False)
    finally:
        lamina.set_num_threads(before)
    assert_equal(predicted, z, f"{kind} plan predict")
    assert loss == want_loss, f"{kind} plan loss {loss!r} vs ops {want_loss!r}"
    for got, grad, p, name in ((params[0], dW0, W0, "W0"), (params[1], db0, b0, "b0"),
                               (params[2], dW1, W1, "W1"), (params[3], db1, b1, "b1")):
        want = p.copy()
        _native.sgd_step(want, grad, None, lr, 0.0, 0.0, False)
        assert_equal(got, want, f"{kind} {layout} {np.dtype(dtype)} {name} after one step")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind, attrs", [
    ("max_pool2d", dict(kernel_h=1, kernel_w=3, stride_h=1, stride_w=2, pad_left=1, pad_right=1)),
    ("avg_pool2d", dict(kernel_h=1, kernel_w=2, stride_h=1, stride_w=2, count_include_pad=False)),
    ("adaptive_avg_pool2d", dict(out_h=1, out_w=3)),
], ids=["max", "avg", "adaptive"])
def test_plan_step_on_1d_input_keeps_rank_two(kind, attrs, layout):
    # (C, L) / (L, C) per sample, read as H = 1.
    x = np.random.default_rng(15).standard_normal((4, 3, 9) if layout == "channels_first" else (4, 9, 3))
    plan = _native.Plan([_pool_step(kind, layout, **attrs)], x.shape[1:], "mse", "sgd", [])
    y = plan.predict(x)
    x4 = x[:, :, None, :] if layout == "channels_first" else x[:, None, :, :]
    full = {**dict(pad_top=0, pad_bottom=0, pad_left=0, pad_right=0, ceil_mode=False, dilation_h=1, dilation_w=1,
                   divisor_override=None, count_include_pad=True), **attrs}
    want = _op_of(kind, full, layout)[0](np.ascontiguousarray(x4))
    want = want[0] if isinstance(want, tuple) else want
    assert_equal(y, want.reshape(y.shape), f"{kind} 1-D plan")
    assert len(plan.output_shape) == 2


def test_plan_rejects_bad_pool_descriptors_naming_the_step():
    def build(step, shape=(2, 5, 5)):
        return _native.Plan([step], shape, "mse", "sgd", [])

    ok = dict(kernel_h=2, kernel_w=2, stride_h=2, stride_w=2)
    with pytest.raises(ValueError, match=r"plan step 0 \(max_pool2d\) .*kernel larger"):
        build(_pool_step("max_pool2d", "channels_first", **{**ok, "kernel_h": 9}))
    with pytest.raises(ValueError, match=r"plan step 0 \(max_pool2d\) needs attrs\['stride_w'\]"):
        build(_pool_step("max_pool2d", "channels_first", kernel_h=2, kernel_w=2, stride_h=2))
    with pytest.raises(ValueError, match=r"plan step 0 \(avg_pool2d\) .*layout"):
        build(_pool_step("avg_pool2d", "NHWC", **ok))
    with pytest.raises(ValueError, match=r"unknown attr 'dilation_h'"):
        build(_pool_step("avg_pool2d", "channels_first", dilation_h=1, **ok))
    with pytest.raises(TypeError, match=r"ceil_mode'\] must be True or False"):
        build(_pool_step("max_pool2d", "channels_first", ceil_mode=1, **ok))
    with pytest.raises(ValueError, match=r"divisor_override"):
        build(_pool_step("avg_pool2d", "channels_first", divisor_override=0, **ok))
    with pytest.raises(ValueError, match=r"per-sample inputs"):
        build(_pool_step("adaptive_avg_pool2d", "channels_first", out_h=1, out_w=1), shape=(5,))
    with pytest.raises(ValueError, match=r"output rows for a 1-D input"):
        build(_pool_step("adaptive_avg_pool2d", "channels_first", out_h=2, out_w=1), shape=(3, 5))
    with pytest.raises(ValueError, match=r"output size"):
        build(_pool_step("adaptive_avg_pool2d", "channels_last", out_h=0, out_w=1))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [(0, 3, 4, 5), (2, 0, 4, 5)])
def test_empty_batches_and_channels_give_empty_results(shape, layout):
    x = to_layout(np.zeros(shape, np.float32), layout)
    y, idx = ops.max_pool2d(x, kernel=(2, 2), stride=(2, 2), layout=layout)
    assert y.shape == idx.shape == reference.max_pool2d(x, kernel=(2, 2), stride=(2, 2), layout=layout)[0].shape
    assert ops.max_pool2d_backward(y, idx, x.shape, layout=layout).shape == x.shape
    a = ops.avg_pool2d(x, kernel=(2, 2), stride=(1, 2), layout=layout)
    assert ops.avg_pool2d_backward(a, x.shape, kernel=(2, 2), stride=(1, 2), layout=layout).shape == x.shape
    ad = ops.adaptive_avg_pool2d(x, (3, 2), layout=layout)
    assert ad.shape == reference.adaptive_avg_pool2d(x, (3, 2), layout=layout).shape
    assert ops.adaptive_avg_pool2d_backward(ad, x.shape, layout=layout).shape == x.shape


def _random_geometries(seed, count):
    """Random small pooling problems: sizes 1-8, kernels 1-4, strides 1-3, padding 0-2 on each
    side, dilation 1-2, every flag, both layouts and dtypes, a few NaNs now and then."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        layout = LAYOUTS[rng.integers(0, 2)]
        dtype = DTYPES[rng.integers(0, 2)]
        n, c, h, w = (int(v) for v in (rng.integers(1, 3), rng.integers(1, 4), rng.integers(1, 9), rng.integers(1, 9)))
        x = sample(rng, n, c, h, w, dtype, layout)
        if rng.integers(0, 5) == 0:
            x[x > 1.0] = np.nan
        yield x, layout, dict(kernel=tuple(int(v) for v in rng.integers(1, 5, 2)),
                              stride=tuple(int(v) for v in rng.integers(1, 4, 2)),
                              padding=tuple(int(v) for v in rng.integers(0, 3, 4)),
                              ceil_mode=bool(rng.integers(0, 2))), \
            dict(dilation=tuple(int(v) for v in rng.integers(1, 3, 2))), \
            dict(count_include_pad=bool(rng.integers(0, 2)), divisor_override=[None, None, 2, 5][rng.integers(0, 4)]), \
            tuple(int(v) for v in rng.integers(1, 10, 2)), rng


def test_random_geometries_match_the_reference_and_are_refused_alike():
    checked = 0
    for x, layout, win, max_only, avg_only, out_size, rng in _random_geometries(42, 300):
        what = f"x {x.shape} {x.dtype} {layout} {win} {max_only} {avg_only}"
        for op, extra in (("max_pool2d", max_only), ("avg_pool2d", avg_only)):
            args = dict(layout=layout, **win, **extra)
            try:
                got = getattr(ops, op)(x, **args)
            except ValueError as e:
                with pytest.raises(ValueError):
                    getattr(reference, op)(x, **args)
                    pytest.fail(f"{op} {what}: the reference accepts what the ops refuse ({e})")
                continue
            want = getattr(reference, op)(x, **args)
            y, ry = (got[0], want[0]) if op == "max_pool2d" else (got, want)
            assert_close(y, ry, pool_atol(x.dtype, 16, np.nanmax(np.abs(x), initial=1.0)), f"{op} {what}")
            assert np.array_equal(np.isnan(y), np.isnan(ry)), f"{op} {what}: NaNs differ"
            dy = rng.standard_normal(y.shape).astype(x.dtype)
            if op == "max_pool2d":
                assert_equal(got[1], want[1], f"{op} indices {what}")
                dx = ops.max_pool2d_backward(dy, got[1], x.shape, layout=layout)
                rdx = reference.max_pool2d_backward(dy, want[1], x.shape, layout=layout)
            else:
                dx = ops.avg_pool2d_backward(dy, x.shape, **args)
                rdx = reference.avg_pool2d_backward(dy, x.shape, **args)
            assert_close(dx, rdx, pool_atol(x.dtype, 16, np.abs(dy).max()), f"{op}_backward {what}")
            checked += 1
        y = ops.adaptive_avg_pool2d(x, out_size, layout=layout)
        ry = reference.adaptive_avg_pool2d(x, out_size, layout=layout)
        assert np.array_equal(np.isnan(y), np.isnan(ry)), f"adaptive {out_size} {what}: NaNs differ"
        assert_close(np.nan_to_num(y), np.nan_to_num(ry), pool_atol(x.dtype, 16, np.nanmax(np.abs(x), initial=1.0)),
                     f"adaptive {out_size} {what}")
    assert checked > 200, f"only {checked} of 600 random geometries were valid"


def test_random_symmetric_geometries_match_torch():
    # Where PyTorch accepts the geometry (padding at most half the kernel), values and indices are
    # PyTorch's, and the output sizes (ceil_mode included) agree. PyTorch also accepts a dilated
    # window that lies entirely in the padding (its max is -inf, its index outside the plane):
    # lamina refuses it.
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(7)
    compared = 0
    for _ in range(400):
        h, w = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        k = tuple(int(v) for v in rng.integers(1, 5, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        ph, pw = int(rng.integers(0, k[0] // 2 + 1)), int(rng.integers(0, k[1] // 2 + 1))
        d = tuple(int(v) for v in rng.integers(1, 3, 2))
        cm, cip = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
        do = [None, None, 3][rng.integers(0, 3)]
        x = rng.standard_normal((1, 2, h, w))
        if rng.integers(0, 4) == 0:
            x[x > 0.8] = np.nan
        what = f"x {x.shape} kernel {k} stride {s} padding {(ph, pw)} dilation {d} ceil_mode {cm}"
        xt = torch.from_numpy(x)
        max_args = dict(kernel=k, stride=s, padding=(ph, ph, pw, pw), dilation=d, ceil_mode=cm)
        avg_args = dict(kernel=k, stride=s, padding=(ph, ph, pw, pw), ceil_mode=cm, count_include_pad=cip,
                        divisor_override=do)
        def torch_or_none(f):
            try:
                return f()
            except RuntimeError:  # the kernel is larger than the padded input
                return None

        t = torch_or_none(lambda: F.max_pool2d(xt, k, s, (ph, pw), d, ceil_mode=cm, return_indices=True))
        if t is None:
            with pytest.raises(ValueError, match="kernel larger than the padded input"):
                ops.max_pool2d(x, **max_args)
        else:
            try:
                y, i = ops.max_pool2d(x, **max_args)
            except ValueError as e:
                assert "entirely in the padding" in str(e) and max(d) > 1 and np.isneginf(t[0].numpy()).any(), \
                    f"max {what}: refused ({e}) where torch gives {t[0].numpy()}"
            else:
                assert_equal(y, t[0].numpy(), f"max {what}")
                assert_equal(i, t[1].numpy(), f"max indices {what}")
                compared += 1
        ta = torch_or_none(lambda: F.avg_pool2d(xt, k, s, (ph, pw), ceil_mode=cm, count_include_pad=cip,
                                                divisor_override=do))
        if ta is None:
            with pytest.raises(ValueError, match="kernel larger than the padded input"):
                ops.avg_pool2d(x, **avg_args)
            continue
        a = ops.avg_pool2d(x, **avg_args)
        assert a.shape == ta.shape, f"avg {what}: shape {a.shape} vs torch {tuple(ta.shape)}"
        assert np.array_equal(np.isnan(a), np.isnan(ta.numpy())), f"avg {what}: NaNs differ"
        assert_close(np.nan_to_num(a), np.nan_to_num(ta.numpy()), 1e-12, f"avg {what}")
    assert compared > 250, f"only {compared} of 400 max pools compared"
