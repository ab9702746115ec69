"""Holds lamina.reference (the NumPy float64 spec) to independent evidence: central finite differences
for every gradient, explicit NumPy for gemm, a scalar re-derivation of the optimizer updates, stability
at large logits, argument validation, and PyTorch in float64 when it is installed.
"""

import zlib

import numpy as np
import pytest

from lamina import reference as ref

# Shapes for elementwise and row-wise ops: batch 1, a single column, a general case, a 3-D case.
ROW_SHAPES = [(1, 1), (1, 5), (4, 7), (6, 1)]


def assert_close(actual, expected, rtol, atol, what):
    """Like np.testing.assert_allclose, but the message names the shape, the first bad index and its values."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: got shape {actual.shape}, expected {expected.shape}"
    bad = ~np.isclose(actual, expected, rtol=rtol, atol=atol)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        pytest.fail(
            f"{what}: shape {actual.shape}, {int(bad.sum())} of {bad.size} differ; first at {idx}: "
            f"got {actual[idx]!r}, expected {expected[idx]!r} (rtol={rtol}, atol={atol})"
        )


def numerical_grad(f, x, h):
    """Central differences of the scalar function f at x, one coordinate at a time."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        orig = x[idx]
        x[idx] = orig + h
        f_plus = f(x)
        x[idx] = orig - h
        f_minus = f(x)
        x[idx] = orig
        grad[idx] = (f_plus - f_minus) / (2 * h)
    return grad


def away_from_zero(rng, shape):
    # ReLU has a kink at 0; finite differences across it measure nothing useful.
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape)


@pytest.fixture
def rng(request):
    # A seed per test id (crc32, not hash(), which changes between runs): reproducible, and
    # different tests see different data.
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


# ------------------------------------------------------------------------------------------------
# Activations: backward(dy, forward(x)) must equal J^T dy, i.e. the gradient of sum(dy * forward(x)).

ACTIVATIONS = {
    "relu": (ref.relu, ref.relu_backward),
    "sigmoid": (ref.sigmoid, ref.sigmoid_backward),
    "tanh": (ref.tanh, ref.tanh_backward),
    "softmax": (ref.softmax, ref.softmax_backward),
}


# softmax is defined on 2-D (batch, classes) arrays only; the others are elementwise.
ACTIVATION_CASES = [(name, shape) for name in ACTIVATIONS for shape in ROW_SHAPES] + [
    (name, (2, 3, 4)) for name in ("relu", "sigmoid", "tanh")
]


@pytest.mark.parametrize("name,shape", ACTIVATION_CASES, ids=[f"{n}-{s}" for n, s in ACTIVATION_CASES])
def test_activation_backward_matches_finite_differences(name, shape, rng, ref_tol):
    forward, backward = ACTIVATIONS[name]
    x = away_from_zero(rng, shape)
    dy = rng.standard_normal(shape)
    dx = backward(dy, forward(x))
    expected = numerical_grad(lambda x_: np.sum(dy * forward(x_)), x, ref_tol.fd_h)
    assert_close(dx, expected, ref_tol.fd_rtol, ref_tol.fd_atol, f"{name}_backward")
    assert dx.dtype == np.float64


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_zero_size_batch(name):
    forward, backward = ACTIVATIONS[name]
    x = np.zeros((0, 5), dtype=np.float32)
    y = forward(x)
    assert y.shape == (0, 5) and y.dtype == np.float64
    assert backward(np.zeros((0, 5)), y).shape == (0, 5)


def test_activation_forward_values(ref_tol):
    x = np.linspace(-6.0, 6.0, 25).reshape(5, 5)
    tol = (ref_tol.exact_rtol, ref_tol.exact_atol)
    assert_close(ref.relu(x), np.where(x > 0, x, 0.0), *tol, "relu")
    assert_close(ref.sigmoid(x), 1.0 / (1.0 + np.exp(-x)), *tol, "sigmoid")
    assert_close(ref.tanh(x), (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x)), *tol, "tanh")
    expected = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    assert_close(ref.softmax(x), expected, *tol, "softmax")


def test_integer_input_is_cast():
    y = ref.relu(np.array([[-2, 3]], dtype=np.int32))
    assert y.dtype == np.float64
    assert y.tolist() == [[0.0, 3.0]]


@pytest.mark.parametrize("scale", [1e3, 1e4, 1e300])
def test_sigmoid_and_softmax_stable_at_large_magnitude(scale):
    x = np.array([[scale, -scale, 0.0], [-scale, -scale, -scale]])
    s = ref.sigmoid(x)
    assert np.all(np.isfinite(s)), f"sigmoid not finite at scale {scale}: {s}"
    assert s[0, 0] == 1.0 and s[0, 1] == 0.0 and s[0, 2] == 0.5, f"sigmoid at scale {scale}: {s[0]}"
    p = ref.softmax(x)
    assert np.all(np.isfinite(p)), f"softmax not finite at scale {scale}: {p}"
    assert p[0].tolist() == [1.0, 0.0, 0.0], f"softmax row 0 at scale {scale}: {p[0]}"
    assert np.allclose(p[1], 1.0 / 3.0), f"softmax row 1 at scale {scale}: {p[1]}"


def test_softmax_is_shift_invariant_and_normalised(rng, ref_tol):
    x = rng.standard_normal((4, 6))
    p = ref.softmax(x)
    assert_close(p.sum(axis=1), np.ones(4), ref_tol.exact_rtol, ref_tol.exact_atol, "softmax row sums")
    assert_close(ref.softmax(x + 1e3), p, 1e-10, ref_tol.exact_atol, "softmax(x + 1000)")


# ------------------------------------------------------------------------------------------------
# matmul, gemm, linear against explicit NumPy (einsum, so the product is computed another way).

GEMM_SHAPES = [(1, 1, 1), (3, 5, 4), (0, 3, 2), (2, 0, 3)]  # (M, K, N), zero M and zero K included


def explicit_activation(z, activation):
    if activation == "relu":
        return np.where(z > 0, z, 0.0)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if activation == "tanh":
        return np.tanh(z)
    return z


@pytest.mark.parametrize("mkn", GEMM_SHAPES, ids=str)
def test_matmul(mkn, rng, ref_tol):
    m, k, n = mkn
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    expected = np.einsum("ik,kj->ij", a, b)
    assert_close(ref.matmul(a, b), expected, ref_tol.exact_rtol, ref_tol.exact_atol, f"matmul {mkn}")


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("with_c", [False, True])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("mkn", GEMM_SHAPES, ids=str)
def test_gemm_against_explicit(mkn, trans_a, trans_b, with_c, with_bias, activation, rng, ref_tol):
    m, k, n = mkn
    alpha, beta = 0.75, -1.5
    a = rng.standard_normal((k, m) if trans_a else (m, k))
    b = rng.standard_normal((n, k) if trans_b else (k, n))
    bias = rng.standard_normal(n) if with_bias else None
    c_old = rng.standard_normal((m, n))
    c = c_old.copy() if with_c else None

    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    z = alpha * np.einsum("ik,kj->ij", opa, opb)
    if with_c:
        z = z + beta * c_old
    if with_bias:
        z = z + bias[None, :]
    expected = explicit_activation(z, activation)

    out = ref.gemm(a, b, c, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta, bias=bias, activation=activation)
    what = f"gemm {mkn} trans_a={trans_a} trans_b={trans_b} c={with_c} bias={with_bias} act={activation}"
    assert_close(out, expected, 1e-12, 1e-12, what)
    if with_c:
        assert out is c, f"{what}: with c given, gemm must return c itself"


def test_gemm_beta_ignored_without_c(rng, ref_tol):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    assert_close(ref.gemm(a, b, beta=7.0), a @ b, ref_tol.exact_rtol, ref_tol.exact_atol, "gemm beta without c")


def test_gemm_accumulates_into_float32_c(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    c = np.ones((3, 2), dtype=np.float32)
    out = ref.gemm(a, b, c, beta=1.0)
    assert out is c and c.dtype == np.float32
    assert_close(c, (a @ b + 1.0).astype(np.float32), 1e-6, 1e-6, "gemm into float32 c")


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("with_bias", [False, True])
def test_linear_against_explicit(with_bias, activation, rng, ref_tol):
    x, W = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    b = rng.standard_normal(4) if with_bias else None
    z = np.einsum("bi,oi->bo", x, W) + (b if with_bias else 0.0)
    expected = explicit_activation(z, activation)
    assert_close(ref.linear(x, W, b, activation), expected, 1e-12, 1e-12, f"linear act={activation}")


# B, in, out: batch 1, single features, a general case, a zero-size batch.
LINEAR_SHAPES = [(1, 1, 1), (1, 3, 2), (5, 4, 3), (0, 3, 2)]


@pytest.mark.parametrize("shape", LINEAR_SHAPES, ids=str)
def test_linear_backward_matches_finite_differences(shape, rng, ref_tol):
    batch, n_in, n_out = shape
    x, W, b = rng.standard_normal((batch, n_in)), rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out)
    dy = rng.standard_normal((batch, n_out))
    dx, dW, db = ref.linear_backward(dy, x, W)

    def loss(x_=x, W_=W, b_=b):
        return np.sum(dy * ref.linear(x_, W_, b_))

    h, rtol, atol = ref_tol.fd_h, ref_tol.fd_rtol, ref_tol.fd_atol
    assert_close(dx, numerical_grad(lambda v: loss(x_=v), x, h), rtol, atol, f"linear_backward dx {shape}")
    assert_close(dW, numerical_grad(lambda v: loss(W_=v), W, h), rtol, atol, f"linear_backward dW {shape}")
    assert_close(db, numerical_grad(lambda v: loss(b_=v), b, h), rtol, atol, f"linear_backward db {shape}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_backward_accumulates_in_place(dtype, rng):
    x, W, dy = rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal((4, 2))
    dW0, db0 = rng.standard_normal((2, 3)).astype(dtype), rng.standard_normal(2).astype(dtype)
    dW, db = dW0.copy(), db0.copy()
    _, fresh_dW, fresh_db = ref.linear_backward(dy, x, W)
    dx, out_dW, out_db = ref.linear_backward(dy, x, W, dW=dW, db=db)
    assert out_dW is dW and out_db is db, "given dW/db must be returned, not copies"
    assert dW.dtype == dtype and db.dtype == dtype
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    assert_close(dW, dW0.astype(np.float64) + fresh_dW, rtol, rtol, "accumulated dW")
    assert_close(db, db0.astype(np.float64) + fresh_db, rtol, rtol, "accumulated db")
    assert dx.shape == x.shape


def test_linear_backward_skips(rng):
    x, W, dy = rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal((4, 2))
    dx, dW, db = ref.linear_backward(dy, x, W, db=False, need_dx=False)
    assert dx is None and db is None, f"need_dx=False and db=False must give None, got {type(dx)}, {type(db)}"
    assert dW.shape == W.shape


# ------------------------------------------------------------------------------------------------
# Losses: the returned gradient against finite differences of the returned loss.

LOSS_BATCH_SHAPES = [(1, 1), (1, 4), (5, 3), (8, 10)]


def random_probabilities(rng, shape):
    t = rng.uniform(0.05, 1.0, size=shape)
    return t / t.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("target_kind", ["labels", "probabilities"])
@pytest.mark.parametrize("shape", LOSS_BATCH_SHAPES, ids=str)
def test_cross_entropy_gradient(shape, target_kind, rng, ref_tol):
    batch, classes = shape
    z = 3.0 * rng.standard_normal(shape)
    if target_kind == "labels":
        target = rng.integers(0, classes, size=batch)
    else:
        target = random_probabilities(rng, shape)
    loss, dz = ref.cross_entropy(z, target)
    assert isinstance(loss, float)
    expected = numerical_grad(lambda v: ref.cross_entropy(v, target)[0], z, ref_tol.fd_h)
    assert_close(dz, expected, ref_tol.fd_rtol, ref_tol.fd_atol, f"cross_entropy dlogits {shape} {target_kind}")


@pytest.mark.parametrize("shape", LOSS_BATCH_SHAPES, ids=str)
def test_cross_entropy_value_and_onehot_agree_with_labels(shape, rng, ref_tol):
    batch, classes = shape
    z = rng.standard_normal(shape)
    labels = rng.integers(0, classes, size=batch)
    onehot = np.eye(classes)[labels]
    loss_l, dz_l = ref.cross_entropy(z, labels)
    loss_o, dz_o = ref.cross_entropy(z, onehot)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    naive = -np.mean(np.log(p[np.arange(batch), labels]))
    tol = (ref_tol.exact_rtol, ref_tol.exact_atol)
    assert_close(loss_l, naive, *tol, f"cross_entropy loss {shape}")
    assert_close(loss_o, loss_l, *tol, f"cross_entropy one-hot loss {shape}")
    assert_close(dz_o, dz_l, *tol, f"cross_entropy one-hot dlogits {shape}")
    assert_close(dz_l, (p - onehot) / batch, *tol, f"cross_entropy dlogits formula {shape}")


@pytest.mark.parametrize("target_kind", ["labels", "probabilities"])
@pytest.mark.parametrize("shape", [s for s in LOSS_BATCH_SHAPES if s[1] > 1], ids=str)  # one class: p = 1, on the clip
def test_probability_cross_entropy_gradient(shape, target_kind, rng, ref_tol):
    """The Keras form on probabilities, away from the clip; through a softmax it is the logits form."""
    batch, classes = shape
    p = random_probabilities(rng, shape)
    target = rng.integers(0, classes, size=batch) if target_kind == "labels" else random_probabilities(rng, shape)
    loss, dp = ref.probability_cross_entropy(p, target)
    expected = numerical_grad(lambda v: ref.probability_cross_entropy(v, target)[0], p, ref_tol.fd_h)
    assert_close(dp, expected, ref_tol.fd_rtol, ref_tol.fd_atol, f"probability_cross_entropy dprobs {shape}")
    z = np.log(p)  # softmax(log p) = p
    loss_z, dz = ref.cross_entropy(z, target)
    tol = (1e-10, ref_tol.exact_atol)
    assert_close(loss, loss_z, *tol, f"probability_cross_entropy loss = cross_entropy of log p {shape}")
    assert_close(ref.softmax_backward(dp, p), dz, *tol, f"softmax backward of dprobs = dlogits {shape}")


@pytest.mark.parametrize("shape", [(1, 1), (5, 3)], ids=str)
def test_probability_binary_cross_entropy_gradient(shape, rng, ref_tol):
    p = rng.uniform(0.05, 0.95, size=shape)
    t = rng.uniform(0.0, 1.0, size=shape)
    loss, dp = ref.probability_binary_cross_entropy(p, t)
    expected = numerical_grad(lambda v: ref.probability_binary_cross_entropy(v, t)[0], p, ref_tol.fd_h)
    assert_close(dp, expected, ref_tol.fd_rtol, ref_tol.fd_atol, f"probability_binary_cross_entropy dprobs {shape}")
    z = np.log(p / (1 - p))  # sigmoid(z) = p
    assert_close(loss, ref.binary_cross_entropy(z, t)[0], 1e-10, ref_tol.exact_atol, f"loss = BCE of logit(p) {shape}")


def test_probability_losses_clip_like_keras():
    loss, dp = ref.probability_cross_entropy(np.array([[0.0, 1.0]]), np.array([0]))
    assert loss == pytest.approx(-np.log(1e-7)) and np.isfinite(dp).all()
    loss, dp = ref.probability_binary_cross_entropy(np.array([1.0]), np.array([0.0]))
    assert loss == pytest.approx(-np.log(1e-7), rel=1e-6) and np.isfinite(dp).all()


def test_cross_entropy_stable_at_1e4():
    z = np.array([[1e4, 0.0, -1e4], [1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]])
    loss, dz = ref.cross_entropy(z, np.array([0, 1, 2]))
    assert np.isfinite(loss) and np.all(np.isfinite(dz)), f"loss {loss}, dlogits {dz}"
    # Row 0 is certain and right (0), row 1 is off by 1e4 nats, row 2 is uniform (log 3).
    expected = (0.0 + 1e4 + np.log(3.0)) / 3
    assert abs(loss - expected) < 1e-9 * expected, f"loss {loss!r}, expected {expected!r}"
    assert_close(dz[1], np.array([1.0, -1.0, 0.0]) / 3, 1e-12, 1e-15, "dlogits of the wrong row")


@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (5, 3), (2, 3, 2)], ids=str)
def test_binary_cross_entropy_gradient_and_value(shape, rng, ref_tol):
    z = 3.0 * rng.standard_normal(shape)
    t = rng.uniform(0.0, 1.0, size=shape)
    loss, dz = ref.binary_cross_entropy(z, t)
    expected = numerical_grad(lambda v: ref.binary_cross_entropy(v, t)[0], z, ref_tol.fd_h)
    assert_close(dz, expected, ref_tol.fd_rtol, ref_tol.fd_atol, f"binary_cross_entropy dlogits {shape}")
    s = 1.0 / (1.0 + np.exp(-z))
    naive = -np.mean(t * np.log(s) + (1 - t) * np.log(1 - s))
    assert_close(loss, naive, 1e-10, ref_tol.exact_atol, f"binary_cross_entropy loss {shape}")


def test_binary_cross_entropy_stable_at_1e4():
    z = np.array([1e4, -1e4, 1e4, -1e4])
    t = np.array([1.0, 0.0, 0.0, 1.0])
    loss, dz = ref.binary_cross_entropy(z, t)
    # Two confident right answers cost 0, two confident wrong ones cost 1e4 each.
    assert abs(loss - 5e3) < 1e-9, f"loss {loss!r}, expected 5000.0"
    assert_close(dz, np.array([0.0, 0.0, 1.0, -1.0]) / 4, 0.0, 1e-15, "dlogits at 1e4")


@pytest.mark.parametrize("shape", [(1,), (1, 3), (4, 5), (2, 3, 2)], ids=str)
def test_mse_gradient_and_value(shape, rng, ref_tol):
    p, t = rng.standard_normal(shape), rng.standard_normal(shape)
    loss, dp = ref.mse(p, t)
    expected = numerical_grad(lambda v: ref.mse(v, t)[0], p, ref_tol.fd_h)
    assert_close(dp, expected, ref_tol.fd_rtol, ref_tol.fd_atol, f"mse dpred {shape}")
    naive = sum((a - b) ** 2 for a, b in zip(p.ravel().tolist(), t.ravel().tolist())) / p.size
    assert_close(loss, naive, ref_tol.exact_rtol, ref_tol.exact_atol, f"mse loss {shape}")


@pytest.mark.parametrize(
    "call",
    [
        lambda: ref.cross_entropy(np.zeros((0, 3)), np.zeros(0, dtype=np.int64)),
        lambda: ref.binary_cross_entropy(np.zeros((0, 3)), np.zeros((0, 3))),
        lambda: ref.mse(np.zeros((0, 3)), np.zeros((0, 3))),
    ],
    ids=["cross_entropy", "binary_cross_entropy", "mse"],
)
def test_losses_reject_empty_batch(call):
    with pytest.raises(ValueError, match="at least one element"):
        call()


# ------------------------------------------------------------------------------------------------
# Optimizers against a scalar, one-element-at-a-time re-derivation of PyTorch's update rules.


def sgd_by_hand(theta, grads, lr, momentum, weight_decay, nesterov):
    theta = [float(v) for v in theta]
    buf = [0.0] * len(theta)
    for grad in grads:
        for i, g in enumerate(grad.tolist()):
            g = g + weight_decay * theta[i]
            if momentum:
                buf[i] = momentum * buf[i] + g
                g = g + momentum * buf[i] if nesterov else buf[i]
            theta[i] -= lr * g
    return np.array(theta), np.array(buf)


def adam_by_hand(theta, grads, lr, beta1, beta2, eps, weight_decay):
    theta = [float(v) for v in theta]
    m, v = [0.0] * len(theta), [0.0] * len(theta)
    for t, grad in enumerate(grads, start=1):
        for i, g in enumerate(grad.tolist()):
            g = g + weight_decay * theta[i]
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat = m[i] / (1 - beta1**t)
            v_hat = v[i] / (1 - beta2**t)
            theta[i] -= lr * m_hat / (v_hat**0.5 + eps)
    return np.array(theta), np.array(m), np.array(v)


SGD_CONFIGS = [
    dict(momentum=0.0, weight_decay=0.0, nesterov=False),
    dict(momentum=0.0, weight_decay=0.01, nesterov=False),
    dict(momentum=0.9, weight_decay=0.0, nesterov=False),
    dict(momentum=0.9, weight_decay=0.0, nesterov=True),
    dict(momentum=0.5, weight_decay=0.05, nesterov=True),
]
ADAM_CONFIGS = [
    dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0),
    dict(lr=0.05, beta1=0.8, beta2=0.95, eps=1e-6, weight_decay=0.01),
    dict(lr=0.1, beta1=0.0, beta2=0.5, eps=1e-3, weight_decay=0.0),
]


def config_id(config):
    return ",".join(f"{k}={v}" for k, v in config.items())


@pytest.mark.parametrize("config", SGD_CONFIGS, ids=config_id)
def test_sgd_step_matches_derivation(config, rng, ref_tol):
    theta0 = rng.standard_normal(6)
    grads = [rng.standard_normal(6) for _ in range(5)]
    param, velocity = theta0.copy(), np.zeros(6)
    for g in grads:
        assert ref.sgd_step(param, g, velocity, lr=0.1, **config) is None
    expected_theta, expected_buf = sgd_by_hand(theta0, grads, lr=0.1, **config)
    tol = (ref_tol.exact_rtol, ref_tol.exact_atol)
    assert_close(param, expected_theta, *tol, f"sgd param after 5 steps {config}")
    if config["momentum"]:
        assert_close(velocity, expected_buf, *tol, f"sgd velocity after 5 steps {config}")


@pytest.mark.parametrize("config", ADAM_CONFIGS, ids=config_id)
def test_adam_step_matches_derivation(config, rng, ref_tol):
    theta0 = rng.standard_normal(6)
    grads = [rng.standard_normal(6) for _ in range(5)]
    param, m, v = theta0.copy(), np.zeros(6), np.zeros(6)
    for step, g in enumerate(grads, start=1):
        assert ref.adam_step(param, g, m, v, step=step, **config) is None
    expected = adam_by_hand(theta0, grads, **config)
    for name, got, want in zip(("param", "m", "v"), (param, m, v), expected):
        assert_close(got, want, 1e-11, ref_tol.exact_atol, f"adam {name} after 5 steps {config}")


def test_optimizer_steps_keep_float32_buffers(rng):
    param = rng.standard_normal((3, 2)).astype(np.float32)
    grad = rng.standard_normal((3, 2)).astype(np.float32)
    velocity, m, v = (np.zeros((3, 2), np.float32) for _ in range(3))
    expected = param.astype(np.float64) - 0.1 * grad
    ref.sgd_step(param, grad, velocity, lr=0.1, momentum=0.9)
    assert param.dtype == velocity.dtype == np.float32
    assert_close(param, expected, 1e-6, 1e-6, "float32 sgd param")
    ref.adam_step(param, grad, m, v, step=1)
    assert m.dtype == v.dtype == np.float32
    assert_close(m, 0.1 * grad.astype(np.float64), 1e-6, 1e-7, "float32 adam m")


# ------------------------------------------------------------------------------------------------
# Bad arguments: the right exception, with a message that names what is wrong.


def _ro(shape):
    arr = np.zeros(shape)
    arr.flags.writeable = False
    return arr


BAD_CALLS = [
    ("matmul K", ValueError, r"\(4, 2\).*\(2, 3\)", lambda: ref.matmul(np.ones((2, 3)), np.ones((4, 2)))),
    ("matmul 1-D", ValueError, r"2-D", lambda: ref.matmul(np.ones(3), np.ones((3, 2)))),
    ("linear W", ValueError, r"\(3, 5\).*\(2, 4\)", lambda: ref.linear(np.ones((2, 4)), np.ones((3, 5)))),
    ("linear b", ValueError, r"\(2,\).*\(3,\)", lambda: ref.linear(np.ones((2, 4)), np.ones((3, 4)), np.ones(2))),
    ("linear act", ValueError, r"'gelu'", lambda: ref.linear(np.ones((2, 4)), np.ones((3, 4)), activation="gelu")),
    ("linear str", TypeError, r"dtype", lambda: ref.linear(np.array([["a"]]), np.ones((1, 1)))),
    ("relu object", TypeError, r"object", lambda: ref.relu(np.array([None, 1.0], dtype=object))),
    ("relu complex", TypeError, r"complex", lambda: ref.relu(np.ones(2, dtype=complex))),
    ("relu bool", TypeError, r"bool", lambda: ref.relu(np.ones(2, dtype=bool))),
    ("relu_backward", ValueError, r"\(3,\).*\(2,\)", lambda: ref.relu_backward(np.ones(3), np.ones(2))),
    ("softmax 1-D", ValueError, r"\(4,\)", lambda: ref.softmax(np.ones(4))),
    ("gemm b", ValueError, r"\(3, 3\), expected \(4, N\)", lambda: ref.gemm(np.ones((2, 4)), np.ones((3, 3)))),
    ("gemm trans_b", ValueError, r"\(4, 3\), expected \(N, 4\)",
     lambda: ref.gemm(np.ones((2, 4)), np.ones((4, 3)), trans_b=True)),
    ("gemm c", ValueError, r"\(2, 2\).*\(2, 3\)", lambda: ref.gemm(np.ones((2, 4)), np.ones((4, 3)), np.ones((2, 2)))),
    ("gemm c int", TypeError, r"int", lambda: ref.gemm(np.ones((2, 4)), np.ones((4, 3)), np.ones((2, 3), int))),
    ("gemm c ro", ValueError, r"read-only", lambda: ref.gemm(np.ones((2, 4)), np.ones((4, 3)), _ro((2, 3)))),
    ("gemm bias", ValueError, r"\(2,\).*\(3,\)", lambda: ref.gemm(np.ones((2, 4)), np.ones((4, 3)), bias=np.ones(2))),
    ("gemm act", ValueError, r"'softmax'", lambda: ref.gemm(np.ones((1, 1)), np.ones((1, 1)), activation="softmax")),
    ("linear_backward dy", ValueError, r"\(2, 2\).*\(2, 3\)",
     lambda: ref.linear_backward(np.ones((2, 2)), np.ones((2, 4)), np.ones((3, 4)))),
    ("linear_backward dW", ValueError, r"\(4, 3\).*\(3, 4\)",
     lambda: ref.linear_backward(np.ones((2, 3)), np.ones((2, 4)), np.ones((3, 4)), dW=np.zeros((4, 3)))),
    ("ce label high", ValueError, r"target\[1\] = 3.*\[0, 3\)",
     lambda: ref.cross_entropy(np.zeros((2, 3)), np.array([0, 3]))),
    ("ce label negative", ValueError, r"target\[0\] = -1",
     lambda: ref.cross_entropy(np.zeros((2, 3)), np.array([-1, 0]))),
    ("ce float labels", TypeError, r"integers", lambda: ref.cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))),
    ("ce label count", ValueError, r"\(3,\).*\(2,\)", lambda: ref.cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2]))),
    ("ce onehot shape", ValueError, r"\(2, 4\).*\(2, 3\)",
     lambda: ref.cross_entropy(np.zeros((2, 3)), np.zeros((2, 4)))),
    ("ce prob range", ValueError, r"outside \[0, 1\]",
     lambda: ref.cross_entropy(np.zeros((1, 2)), np.array([[1.5, -0.5]]))),
    ("bce shape", ValueError, r"\(3,\).*\(2,\)", lambda: ref.binary_cross_entropy(np.zeros(2), np.zeros(3))),
    ("bce range", ValueError, r"target\[1\] = 2.0",
     lambda: ref.binary_cross_entropy(np.zeros(2), np.array([0.0, 2.0]))),
    ("mse shape", ValueError, r"\(2, 1\).*\(2,\)", lambda: ref.mse(np.zeros(2), np.zeros((2, 1)))),
    ("sgd grad", ValueError, r"\(3,\).*\(2,\)", lambda: ref.sgd_step(np.zeros(2), np.zeros(3), lr=0.1)),
    ("sgd list", TypeError, r"NumPy array", lambda: ref.sgd_step([0.0, 1.0], np.zeros(2), lr=0.1)),
    ("sgd int param", TypeError, r"floating", lambda: ref.sgd_step(np.zeros(2, int), np.zeros(2), lr=0.1)),
    ("sgd read-only", ValueError, r"read-only", lambda: ref.sgd_step(_ro(2), np.zeros(2), lr=0.1)),
    ("sgd no velocity", ValueError, r"velocity", lambda: ref.sgd_step(np.zeros(2), np.zeros(2), lr=0.1, momentum=0.9)),
    ("sgd nesterov", ValueError, r"nesterov", lambda: ref.sgd_step(np.zeros(2), np.zeros(2), lr=0.1, nesterov=True)),
    ("sgd lr", ValueError, r"lr", lambda: ref.sgd_step(np.zeros(2), np.zeros(2), lr=-0.1)),
    ("adam step 0", ValueError, r"step",
     lambda: ref.adam_step(np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2), step=0)),
    ("adam beta", ValueError, r"beta1",
     lambda: ref.adam_step(np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2), step=1, beta1=1.0)),
    ("adam v shape", ValueError, r"v has shape \(3,\)",
     lambda: ref.adam_step(np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(3), step=1)),
]


@pytest.mark.parametrize("exc,pattern,call", [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS])
def test_bad_arguments_raise(exc, pattern, call):
    with pytest.raises(exc, match=pattern):
        call()


def test_failed_optimizer_step_leaves_arrays_untouched():
    param, velocity = np.ones(3), np.full(3, 2.0)
    with pytest.raises(ValueError):
        ref.sgd_step(param, np.ones(4), velocity, lr=0.1, momentum=0.9)
    assert param.tolist() == [1.0] * 3 and velocity.tolist() == [2.0] * 3


# ------------------------------------------------------------------------------------------------
# PyTorch, float64, when installed.


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _t(torch, arr, grad=False):
    return torch.tensor(np.asarray(arr), dtype=torch.float64, requires_grad=grad)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activations_against_torch(name, torch, rng, ref_tol):
    forward, backward = ACTIVATIONS[name]
    torch_fn = {
        "relu": torch.relu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "softmax": lambda v: torch.softmax(v, dim=1),
    }[name]
    x, dy = away_from_zero(rng, (5, 7)), rng.standard_normal((5, 7))
    xt = _t(torch, x, grad=True)
    yt = torch_fn(xt)
    yt.backward(_t(torch, dy))
    tol = (ref_tol.torch_rtol, ref_tol.torch_atol)
    y = forward(x)
    assert_close(y, yt.detach().numpy(), *tol, f"{name} vs torch")
    assert_close(backward(dy, y), xt.grad.numpy(), *tol, f"{name}_backward vs torch autograd")


def test_linear_against_torch(torch, rng, ref_tol):
    F = torch.nn.functional
    x, W, b, dy = (rng.standard_normal(s) for s in [(5, 4), (3, 4), (3,), (5, 3)])
    xt, Wt, bt = _t(torch, x, True), _t(torch, W, True), _t(torch, b, True)
    yt = F.linear(xt, Wt, bt)
    yt.backward(_t(torch, dy))
    tol = (ref_tol.torch_rtol, ref_tol.torch_atol)
    assert_close(ref.linear(x, W, b), yt.detach().numpy(), *tol, "linear vs torch")
    dx, dW, db = ref.linear_backward(dy, x, W)
    assert_close(dx, xt.grad.numpy(), *tol, "linear_backward dx vs torch")
    assert_close(dW, Wt.grad.numpy(), *tol, "linear_backward dW vs torch")
    assert_close(db, bt.grad.numpy(), *tol, "linear_backward db vs torch")


@pytest.mark.parametrize("shape", [(1, 3), (6, 5)], ids=str)
@pytest.mark.parametrize("loss_name", ["ce_labels", "ce_probabilities", "bce", "mse"])
def test_losses_against_torch(loss_name, shape, torch, rng, ref_tol):
    F = torch.nn.functional
    z = 4.0 * rng.standard_normal(shape)
    if loss_name == "ce_labels":
        target = rng.integers(0, shape[1], size=shape[0])
        torch_target = torch.tensor(target)
        loss, dz = ref.cross_entropy(z, target)
        torch_loss = F.cross_entropy
    elif loss_name == "ce_probabilities":
        target = random_probabilities(rng, shape)
        torch_target = _t(torch, target)
        loss, dz = ref.cross_entropy(z, target)
        torch_loss = F.cross_entropy
    elif loss_name == "bce":
        target = rng.uniform(0.0, 1.0, size=shape)
        torch_target = _t(torch, target)
        loss, dz = ref.binary_cross_entropy(z, target)
        torch_loss = F.binary_cross_entropy_with_logits
    else:
        target = rng.standard_normal(shape)
        torch_target = _t(torch, target)
        loss, dz = ref.mse(z, target)
        torch_loss = F.mse_loss
    zt = _t(torch, z, grad=True)
    lt = torch_loss(zt, torch_target)
    lt.backward()
    tol = (ref_tol.torch_rtol, ref_tol.torch_atol)
    assert_close(loss, lt.item(), *tol, f"{loss_name} loss {shape} vs torch")
    assert_close(dz, zt.grad.numpy(), *tol, f"{loss_name} gradient {shape} vs torch")


def test_cross_entropy_at_1e4_against_torch(torch, ref_tol):
    z = np.array([[1e4, 0.0, -1e4], [3.0, -1e4, 1e4]])
    labels = np.array([1, 0])
    zt = _t(torch, z, grad=True)
    lt = torch.nn.functional.cross_entropy(zt, torch.tensor(labels))
    lt.backward()
    loss, dz = ref.cross_entropy(z, labels)
    assert_close(loss, lt.item(), ref_tol.torch_rtol, ref_tol.torch_atol, "cross_entropy at 1e4 vs torch")
    assert_close(dz, zt.grad.numpy(), ref_tol.torch_rtol, ref_tol.torch_atol, "dlogits at 1e4 vs torch")


def _run_torch_optimizer(torch, make_opt, theta0, grads):
    p = torch.nn.Parameter(_t(torch, theta0))
    opt = make_opt([p])
    for g in grads:
        p.grad = _t(torch, g)
        opt.step()
    return p.detach().numpy()


@pytest.mark.parametrize("config", SGD_CONFIGS, ids=config_id)
def test_sgd_step_against_torch(config, torch, rng, ref_tol):
    theta0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(6)]
    param, velocity = theta0.copy(), np.zeros_like(theta0)
    for g in grads:
        ref.sgd_step(param, g, velocity, lr=0.05, **config)
    expected = _run_torch_optimizer(torch, lambda ps: torch.optim.SGD(ps, lr=0.05, **config), theta0, grads)
    assert_close(param, expected, ref_tol.torch_rtol, ref_tol.torch_atol, f"sgd {config} vs torch.optim.SGD")


@pytest.mark.parametrize("config", ADAM_CONFIGS, ids=config_id)
def test_adam_step_against_torch(config, torch, rng, ref_tol):
    theta0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(6)]
    param, m, v = theta0.copy(), np.zeros_like(theta0), np.zeros_like(theta0)
    for step, g in enumerate(grads, start=1):
        ref.adam_step(param, g, m, v, step=step, **config)
    torch_config = dict(config)
    torch_config["betas"] = (torch_config.pop("beta1"), torch_config.pop("beta2"))
    expected = _run_torch_optimizer(torch, lambda ps: torch.optim.Adam(ps, **torch_config), theta0, grads)
    assert_close(param, expected, ref_tol.torch_rtol, ref_tol.torch_atol, f"adam {config} vs torch.optim.Adam")
