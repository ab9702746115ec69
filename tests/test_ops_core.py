"""The core issue's new ops (leaky_relu, gelu, log_softmax, nll, dropout) against lamina.reference,
on every kernel path and thread count; the reference against finite differences and PyTorch; the
layers (LeakyReLU, GELU, LogSoftmax, NLLLoss, Dropout) against the reference and PyTorch.
"""
import numpy as np
import pytest

import lamina as lm
from conftest import elementwise_tol
from lamina import ops, reference

SIZES = [0, 1, 7, 8, 9, 33, 1000]
ELEMENTWISE = {
    "leaky_relu": ({"negative_slope": 0.1}, "x"),
    "leaky_relu negative slope -0.5": ({"negative_slope": -0.5}, "x"),
    "gelu": ({"approximate": "none"}, "x"),
    "gelu tanh": ({"approximate": "tanh"}, "x"),
}


def _op(case):
    return case.split(" ")[0]


def _values(n, dtype, seed=0):
    x = np.random.default_rng(seed).standard_normal(n) * 3
    x[: min(n, 3)] = [0.0, -0.0, 5.0][: min(n, 3)]
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", sorted(ELEMENTWISE))
def test_elementwise_forward_and_backward_match_the_reference(case, n, dtype, isa, threads):
    kwargs, _ = ELEMENTWISE[case]
    op = _op(case)
    x = _values(n, dtype)
    dy = _values(n, dtype, seed=1)
    y = getattr(ops, op)(x, **kwargs)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_allclose(y, getattr(reference, op)(x, **kwargs), **elementwise_tol(dtype),
                               err_msg=f"{case} forward, n={n}, {isa}, {threads} threads")
    dx = getattr(ops, op + "_backward")(dy, x, **kwargs)
    expected = getattr(reference, op + "_backward")(dy, x, **kwargs)
    # The kernels use PyTorch's formulas: 1 - tanh(u)^2 in GELU-tanh's derivative cancels where
    # tanh(u) is near -1 or 1, an error of a few eps times the size of the term it multiplies,
    # |x| du/dx ~ |x| (1 + 0.13 x^2); the reference is written without the cancellation.
    eps = float(np.finfo(dtype).eps)
    x64 = x.astype(np.float64)
    bound = 8 * eps * (np.abs(expected) + np.abs(dy) * (1 + np.abs(x64) * (1 + 0.14 * x64 * x64)))
    bad = np.abs(dx - expected) > bound
    assert not bad.any(), (f"{case} backward, n={n}, {isa}, {threads} threads: first bad index "
                           f"{int(np.argmax(bad))}, x={x[bad][0]!r}, got {dx[bad][0]!r}, expected {expected[bad][0]!r}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (7, 33), (64, 10)])
def test_log_softmax_and_nll_match_the_reference(shape, dtype, isa):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    y = ops.log_softmax(x)
    np.testing.assert_allclose(y, reference.log_softmax(x), **elementwise_tol(dtype), err_msg=f"{shape}")
    dy = rng.standard_normal(shape).astype(dtype)
    np.testing.assert_allclose(ops.log_softmax_backward(dy, y), reference.log_softmax_backward(dy, y),
                               rtol=elementwise_tol(dtype)["rtol"] * shape[1], atol=1e-6 if dtype == np.float32 else 1e-13)
    labels = rng.integers(0, shape[1], shape[0])
    loss, grad = ops.nll(y, labels)
    rloss, rgrad = reference.nll(y, labels)
    assert abs(loss - rloss) <= 1e-12 * max(1.0, abs(rloss)), (loss, rloss)
    np.testing.assert_array_equal(grad, rgrad.astype(dtype))


def _central_difference(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = h
        g.flat[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


@pytest.mark.parametrize("case", ["leaky_relu", "gelu", "gelu tanh", "log_softmax", "nll"])
def test_reference_gradients_match_finite_differences(case, ref_tol):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4)) + 0.05  # away from leaky_relu's kink at 0
    w = rng.standard_normal((3, 4))  # a random upstream gradient: the scalar is sum(w * f(x))
    if case == "nll":
        labels = np.array([0, 3, 1])
        _, grad = reference.nll(x, labels)
        numeric = _central_difference(lambda v: reference.nll(v, labels)[0], x, ref_tol.fd_h)
    else:
        op = _op(case)
        kwargs = {"approximate": "tanh"} if case == "gelu tanh" else {}
        f = getattr(reference, op)
        numeric = _central_difference(lambda v: float(np.sum(w * f(v, **kwargs))), x, ref_tol.fd_h)
        saved = f(x, **kwargs) if op == "log_softmax" else x
        grad = getattr(reference, op + "_backward")(w, saved, **kwargs)
    np.testing.assert_allclose(grad, numeric, rtol=ref_tol.fd_rtol, atol=ref_tol.fd_atol, err_msg=case)


def test_reference_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(4).standard_normal((5, 6))
    t = torch.from_numpy(x)
    F = torch.nn.functional
    pairs = {
        "leaky_relu": (reference.leaky_relu(x, 0.2), F.leaky_relu(t, 0.2)),
        "gelu": (reference.gelu(x), F.gelu(t)),
        "gelu tanh": (reference.gelu(x, "tanh"), F.gelu(t, approximate="tanh")),
        "log_softmax": (reference.log_softmax(x), F.log_softmax(t, dim=1)),
        "nll": (reference.nll(reference.log_softmax(x), np.array([0, 1, 2, 3, 4]))[0],
                F.nll_loss(F.log_softmax(t, dim=1), torch.tensor([0, 1, 2, 3, 4]))),
    }
    for name, (ours, theirs) in pairs.items():
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12, atol=1e-14, err_msg=name)


# ---------------------------------------------------------------------------------------------
# Dropout: the counter-based mask, bit for bit


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 7, 33, 1000, 70001])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9])
def test_dropout_matches_the_reference_mask_bitwise(p, n, dtype, threads):
    x = _values(n, dtype) + 10  # nonzero, so that a zero means dropped
    key, counter = 0x1234_5678_9ABC_DEF0, 2**64 - 5  # the counter wraps around inside the call
    y = ops.dropout(x, p, key, counter)
    expected = reference.dropout(x, p, key, counter)
    kept = reference.dropout_mask(n, p, key, counter)
    np.testing.assert_array_equal(y != 0, kept, err_msg=f"mask, p={p}, n={n}")
    np.testing.assert_array_equal(y, (x * dtype(1.0 / (1.0 - p))) * kept, err_msg=f"values, p={p}, n={n}")
    np.testing.assert_allclose(y, expected, **elementwise_tol(dtype))
    dy = _values(n, dtype, seed=5)
    np.testing.assert_array_equal(ops.dropout_backward(dy, p, key, counter), (dy * dtype(1.0 / (1.0 - p))) * kept)


def test_dropout_keeps_one_minus_p_of_the_elements():
    n = 200_000
    for p in (0.1, 0.5, 0.8):
        kept = np.count_nonzero(ops.dropout(np.ones(n, np.float32), p, 99, 0))
        sigma = np.sqrt(n * p * (1 - p))
        assert abs(kept - n * (1 - p)) < 6 * sigma, f"p={p}: kept {kept} of {n}"


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan")])
def test_dropout_probability_outside_0_1_is_refused(p):
    with pytest.raises(ValueError, match="p"):
        ops.dropout(np.ones(3), p, 0, 0)
    with pytest.raises(ValueError, match="Dropout"):
        lm.Dropout(p)


def test_dropout_layer_scales_in_training_and_is_identity_in_inference():
    lm.manual_seed(5)
    layer = lm.Dropout(0.25)
    x = np.random.default_rng(0).standard_normal((64, 32)) + 10
    key, start = lm._random.dropout_position()
    y = layer(x)
    np.testing.assert_array_equal(y, reference.dropout(x, 0.25, key, start).astype(y.dtype))
    dy = np.ones_like(x)
    np.testing.assert_array_equal(layer.backward(dy), (y != 0) / 0.75)
    layer.eval()
    assert layer(x) is not None and np.array_equal(layer(x), x) and np.array_equal(layer.backward(dy), dy)
    lm.manual_seed(5)
    layer.train()
    np.testing.assert_array_equal(layer(x), y)  # the same seed gives the same mask


def test_dropout_layer_against_torch_semantics():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((128, 64)).astype(np.float32) + 10
    ours = lm.nn.Dropout(0.4)(x)
    theirs = torch.nn.Dropout(0.4)(torch.from_numpy(x)).numpy()
    for name, y in (("lamina", ours), ("torch", theirs)):
        kept = y != 0
        np.testing.assert_allclose(y[kept], x[kept] / 0.6, rtol=1e-6, err_msg=f"{name}: inverted scaling")
    inference = lm.nn.Dropout(0.4).eval()
    assert np.array_equal(inference(x), torch.nn.Dropout(0.4).eval()(torch.from_numpy(x)).numpy())


# ---------------------------------------------------------------------------------------------
# The new activation layers against torch


@pytest.mark.parametrize("name", ["LeakyReLU", "GELU", "GELU tanh", "LogSoftmax"])
def test_activation_layers_match_torch_forward_and_backward(name):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).standard_normal((6, 5))
    make = {"LeakyReLU": (lambda m: m.LeakyReLU(0.05)), "GELU": (lambda m: m.GELU()),
            "GELU tanh": (lambda m: m.GELU(approximate="tanh")), "LogSoftmax": (lambda m: m.LogSoftmax(dim=1))}[name]
    ours = make(lm.nn)
    theirs = make(torch.nn)
    t = torch.from_numpy(x.copy()).requires_grad_(True)
    out = theirs(t)
    dy = np.random.default_rng(3).standard_normal(x.shape)
    out.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(ours(x), out.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours.backward(dy), t.grad.numpy(), rtol=1e-12, atol=1e-13)


def test_nll_loss_matches_torch():
    torch = pytest.importorskip("torch")
    logp = reference.log_softmax(np.random.default_rng(4).standard_normal((8, 3)))
    labels = np.array([0, 1, 2, 2, 1, 0, 0, 1])
    loss_fn = lm.NLLLoss()
    t = torch.from_numpy(logp.copy()).requires_grad_(True)
    expected = torch.nn.NLLLoss()(t, torch.from_numpy(labels))
    expected.backward()
    assert abs(loss_fn(logp, labels) - expected.item()) < 1e-12
    np.testing.assert_allclose(loss_fn.backward(), t.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("start, end", [(1, -1), (0, -1), (2, 3), (-3, -2), (1, 1)])
def test_flatten_op_matches_the_reference_and_is_a_view(start, end):
    x = np.random.default_rng(6).standard_normal((2, 3, 4, 5)).astype(np.float32)
    y = ops.flatten(x, start, end)
    np.testing.assert_array_equal(y, reference.flatten(x, start, end))
    assert np.shares_memory(y, x)
    assert np.array_equal(ops.flatten_backward(y, x.shape), x)
    with pytest.raises(ValueError, match="start_dim"):
        ops.flatten(x, 4, -1)
