"""The per-output-channel affine of the GEMM epilogue (an inference batch norm folded into the
convolution or dense layer before it): _native.conv2d and _native.linear with scale and shift give
bitwise act(fma(z, scale, shift)), z exactly what the call without them writes, for both conv
layouts, groups, tile edges, a sum deeper than one K block, every ISA and packing mode, 1 and 2
threads (splits of C along M and along N); bad scale/shift are clear errors."""
from fractions import Fraction

import numpy as np
import pytest

import lamina
from lamina import _native

DTYPES = [np.float32, np.float64]


def exact_fma(z, scale, shift):
    """fma(z, scale, shift) rounded once to z's dtype (to nearest, ties to even), elementwise over
    z with scale and shift already broadcast to its shape: computed exactly with fractions."""
    dtype = z.dtype
    bits = np.uint32 if dtype == np.float32 else np.uint64
    out = np.empty_like(z)
    for i, (a, s, t) in enumerate(zip(z.ravel().tolist(), scale.ravel().tolist(), shift.ravel().tolist())):
        exact = Fraction(a) * Fraction(s) + Fraction(t)
        guess = dtype.type(float(exact))  # within one unit of the right answer
        best = None
        for c in (np.nextafter(guess, dtype.type(-np.inf)), guess, np.nextafter(guess, dtype.type(np.inf))):
            d = abs(Fraction(float(c)) - exact)
            if best is None or d < best[0] or (d == best[0] and int(np.array(c).view(bits)) % 2 == 0):
                best = (d, c)
        out.flat[i] = best[1]
    return out


def exact_fma_float32(z, scale, shift):
    """exact_fma for float32, vectorised: the product of two floats is exact in double, their sum
    with shift is hi + lo exactly (TwoSum), and rounding hi to float32 is right unless hi is a
    float32 midpoint with lo pushing the value past it."""
    p = z.astype(np.float64) * scale.astype(np.float64)
    t = np.broadcast_to(shift, z.shape).astype(np.float64)
    hi = p + t
    bb = hi - p
    lo = (p - (hi - bb)) + (t - bb)
    r = hi.astype(np.float32)
    d = hi - r.astype(np.float64)
    other = np.nextafter(r, np.where(d > 0, np.float32(np.inf), np.float32(-np.inf)))
    midpoint = (d != 0) & (2 * d == other.astype(np.float64) - r.astype(np.float64))
    past = midpoint & (lo != 0) & (np.sign(lo) == np.sign(d))
    return np.where(past, other, r)


def assert_bitwise(actual, expected, what):
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    same = actual.view(np.uint8).reshape(actual.size, -1) == expected.view(np.uint8).reshape(expected.size, -1)
    if not same.all():
        i = np.unravel_index(int(np.argmin(same.all(axis=1))), actual.shape)
        raise AssertionError(f"{what}: at {i} got {actual[i]!r}, expected {expected[i]!r}")


def affine_of(rng, channels, dtype):
    scale = (rng.standard_normal(channels) * 1.5).astype(dtype)
    shift = rng.standard_normal(channels).astype(dtype)
    return scale, shift


def activated(v, activation):
    return v if activation is None else _native.activation(v, activation, 0.01)


# (N, C, H, W, Cout, k, stride, padding, groups): small enough for the exact check
CONV_CASES = [
    (2, 3, 6, 5, 7, 3, 1, 1, 1),     # Cout and pixels off the tile edges
    (1, 4, 5, 5, 6, 3, 2, 0, 2),     # groups 2, stride 2
    (3, 1, 4, 6, 17, 2, 1, 0, 1),    # one input channel, Cout past one NR tile
    (1, 70, 3, 3, 5, 3, 1, 1, 1),    # K = 630: more than one K block
]


def conv(x, w, b, case, layout, activation=None, scale=None, shift=None):
    _, _, _, _, _, _, stride, pad, groups = case
    return _native.conv2d(x, w, b, stride, stride, pad, pad, pad, pad, 1, 1, groups, layout, activation,
                          0.01, scale, shift)


def conv_operands(case, layout, dtype, rng):
    N, C, H, W, Co, k, _, _, groups = case
    x = rng.standard_normal((N, C, H, W) if layout == "channels_first" else (N, H, W, C)).astype(dtype)
    w_shape = (Co, C // groups, k, k) if layout == "channels_first" else (k, k, C // groups, Co)
    w = (rng.standard_normal(w_shape) / np.sqrt(C * k * k / groups)).astype(dtype)
    b = rng.standard_normal(Co).astype(dtype)
    return x, w, b


def channel_shape(layout, ndim=4):
    return (1, -1) + (1,) * (ndim - 2) if layout == "channels_first" else (1,) * (ndim - 1) + (-1,)


@pytest.mark.parametrize("case", CONV_CASES, ids=[f"case{i}" for i in range(len(CONV_CASES))])
@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_with_an_affine_is_the_conv_then_the_fma(case, layout, dtype):
    rng = np.random.default_rng(1)
    x, w, b = conv_operands(case, layout, dtype, rng)
    scale, shift = affine_of(rng, case[4], dtype)
    z = conv(x, w, b, case, layout)
    shape = channel_shape(layout)
    expected = exact_fma(z, np.broadcast_to(scale.reshape(shape), z.shape),
                         np.broadcast_to(shift.reshape(shape), z.shape))
    for activation in (None, "relu", "tanh"):
        y = conv(x, w, b, case, layout, activation, scale, shift)
        assert_bitwise(y, activated(expected, activation), f"{layout} {activation}")
    # without a bias: the affine still comes after the (empty) bias, before the activation
    z = conv(x, w, None, case, layout)
    y = conv(x, w, None, case, layout, "relu", scale, shift)
    expected = exact_fma(z, np.broadcast_to(scale.reshape(shape), z.shape),
                         np.broadcast_to(shift.reshape(shape), z.shape))
    assert_bitwise(y, activated(expected, "relu"), f"{layout} no bias")


def fma_reference(z, scale, shift, per_row_axis):
    """exact_fma with the affine along one axis of z."""
    shape = [1] * z.ndim
    shape[per_row_axis] = -1
    return exact_fma(z, np.broadcast_to(scale.reshape(shape), z.shape),
                     np.broadcast_to(shift.reshape(shape), z.shape))


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_with_an_affine_is_the_product_then_the_fma(isa, packing, dtype):
    rng = np.random.default_rng(2)
    for M, K, N in [(1, 3, 1), (7, 5, 17), (13, 600, 33), (6, 16, 8)]:
        x = rng.standard_normal((M, K)).astype(dtype)
        W = (rng.standard_normal((N, K)) / np.sqrt(K)).astype(dtype)
        b = rng.standard_normal(N).astype(dtype)
        scale, shift = affine_of(rng, N, dtype)
        expected = fma_reference(_native.linear(x, W, b, None), scale, shift, 1)
        for activation in (None, "relu", "gelu"):
            y = _native.linear(x, W, b, activation, 0.01, scale, shift)
            assert_bitwise(y, activated(expected, activation), f"{isa} {packing} {M}x{K}x{N} {activation}")


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_isa_and_packing_mode(isa, packing, layout, dtype):
    rng = np.random.default_rng(3)
    for case in CONV_CASES[:3]:
        x, w, b = conv_operands(case, layout, dtype, rng)
        scale, shift = affine_of(rng, case[4], dtype)
        z = conv(x, w, b, case, layout)
        expected = fma_reference(z, scale, shift, 1 if layout == "channels_first" else 3)
        assert_bitwise(conv(x, w, b, case, layout, "relu", scale, shift), activated(expected, "relu"),
                       f"{isa} {packing} {layout} {case}")


# Big enough to run on two threads, each way C can be split: channels_first by images, and one
# image's C (Cout, pixels) by rows (many channels, few pixels) or columns; channels_last's C
# (pixels, Cout) by rows or by columns (many channels, few pixels); dense by rows and by columns.
THREADED_CONV = [
    ("channels_first", (4, 16, 18, 18, 32, 3, 1, 1, 1)),
    ("channels_first", (1, 64, 6, 6, 96, 3, 1, 1, 1)),
    ("channels_first", (1, 32, 30, 30, 16, 3, 1, 1, 1)),
    ("channels_last", (2, 32, 16, 16, 24, 3, 1, 1, 1)),
    ("channels_last", (1, 64, 4, 4, 256, 3, 1, 1, 2)),
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_and_two_threads_are_bitwise_equal_and_equal_the_unfused_path(dtype):
    """float32 against the exact fma of the unfused output; float64, whose exact fma is too slow
    in Python at this size, against itself across threads (the exact check runs above)."""
    rng = np.random.default_rng(4)
    before = lamina.get_num_threads()
    try:
        for layout, case in THREADED_CONV:
            x, w, b = conv_operands(case, layout, dtype, rng)
            scale, shift = affine_of(rng, case[4], dtype)
            results = []
            for threads in (1, 2):
                lamina.set_num_threads(threads)
                results.append(conv(x, w, b, case, layout, "relu", scale, shift))
            assert_bitwise(results[1], results[0], f"{layout} {case} 2 threads vs 1")
            z = conv(x, w, b, case, layout)
            sh = channel_shape(layout)
            if dtype == np.float32:
                expected = exact_fma_float32(z, scale.reshape(sh), shift.reshape(sh))
                assert_bitwise(results[0], activated(expected, "relu"), f"{layout} {case}")
            else:
                assert_bitwise(results[0], conv(x, w, b, case, layout, "relu", scale, shift), f"{layout} {case}")
                approx = np.maximum(z * scale.reshape(sh) + shift.reshape(sh), 0)
                np.testing.assert_allclose(results[0], approx, rtol=1e-14, atol=1e-14)
        for M, K, N in [(8, 512, 256), (256, 512, 16)]:
            x = rng.standard_normal((M, K)).astype(dtype)
            W = (rng.standard_normal((N, K)) / np.sqrt(K)).astype(dtype)
            b = rng.standard_normal(N).astype(dtype)
            scale, shift = affine_of(rng, N, dtype)
            results = []
            for threads in (1, 2):
                lamina.set_num_threads(threads)
                results.append(_native.linear(x, W, b, "relu", 0.01, scale, shift))
            assert_bitwise(results[1], results[0], f"linear {M}x{K}x{N} 2 threads vs 1")
            if dtype == np.float32:
                z = _native.linear(x, W, b, None)
                assert_bitwise(results[0], activated(exact_fma_float32(z, scale, shift), "relu"),
                               f"linear {M}x{K}x{N}")
    finally:
        lamina.set_num_threads(before)


def test_bad_scale_or_shift_is_a_clear_error():
    rng = np.random.default_rng(5)
    case = CONV_CASES[0]
    x, w, b = conv_operands(case, "channels_first", np.float32, rng)
    scale, shift = affine_of(rng, case[4], np.float32)
    with pytest.raises(ValueError, match="together"):
        conv(x, w, b, case, "channels_first", None, scale, None)
    with pytest.raises(ValueError, match="shift"):
        conv(x, w, b, case, "channels_first", None, scale, shift[:-1])
    with pytest.raises(TypeError, match="scale"):
        conv(x, w, b, case, "channels_first", None, scale.astype(np.float64), shift)
    with pytest.raises(ValueError, match="scale"):
        conv(x, w, b, case, "channels_first", None, scale.reshape(1, -1), shift)
    with pytest.raises(ValueError, match="contiguous"):
        conv(x, w, b, case, "channels_first", None, np.repeat(scale, 2)[::2], shift)
    W = rng.standard_normal((4, 3)).astype(np.float64)
    with pytest.raises(ValueError, match="scale"):
        _native.linear(np.ones((2, 3)), W, None, None, 0.01, np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="together"):
        _native.linear(np.ones((2, 3)), W, None, None, 0.01, None, np.ones(4))


def test_the_vectorised_exact_fma_is_the_exact_one():
    rng = np.random.default_rng(6)
    z = rng.standard_normal(3000).astype(np.float32)
    s = rng.standard_normal(3000).astype(np.float32)
    t = (rng.standard_normal(3000) * 2.0 ** rng.integers(-30, 30, 3000)).astype(np.float32)
    t[:1000] = -(z[:1000].astype(np.float64) * s[:1000]).astype(np.float32)  # heavy cancellation
    # z*s + t = a float32 midpoint - 2**-54: naive double rounding ties to even, the fma does not
    z[:4] = [1 + 2.0**-15, -(1 + 2.0**-15), 1 + 2.0**-15, 1 + 2.0**-15]
    s[:4] = np.array([1, 1, 1, -1]) * 2.0**-24 * (1 - 2.0**-15)
    t[:4] = [1 + 2.0**-23, -(1 + 2.0**-23), 1.0, -(1 + 2.0**-23)]
    assert_bitwise(exact_fma_float32(z, s, t), exact_fma(z, s, t), "float32 exact fma")
