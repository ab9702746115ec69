"""Losses (value and cached gradient against explicit NumPy float64, target forms, bad targets) and
optimizers (SGD and Adam steps against lamina.reference, state_dict round trips, argument checks,
configs).
"""

import json
import zlib

import numpy as np
import pytest

import lamina as lm
from lamina import reference as ref
from lamina.losses import loss_from_config
from lamina.optim import optimizer_from_config

DTYPES = [np.float32, np.float64]


@pytest.fixture
def rng(request):
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


def np_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------------
# CrossEntropyLoss


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("target_form", ["int64", "int32", "uint8", "integral-float", "one-hot", "probabilities"])
def test_cross_entropy_against_numpy(target_form, dtype, rng, close):
    z = (2 * rng.standard_normal((7, 5))).astype(dtype)
    labels = rng.integers(0, 5, size=7)
    onehot = np.eye(5)[labels]
    if target_form == "probabilities":
        t64 = rng.uniform(0.1, 1, (7, 5))
        t64 /= t64.sum(axis=1, keepdims=True)
        target = t64
    elif target_form == "one-hot":
        t64 = target = onehot
    else:
        t64 = onehot
        target = labels.astype({"integral-float": np.float64}.get(target_form, target_form))
    p = np_softmax(np.asarray(z, dtype=np.float64))
    expected_loss = -np.sum(t64 * np.log(p)) / 7
    loss_fn = lm.CrossEntropyLoss()
    loss = loss_fn(z, target)
    assert isinstance(loss, float), type(loss)
    close(loss, expected_loss, dtype, 5, f"cross-entropy value ({target_form})")
    grad = loss_fn.backward()
    assert grad.dtype == dtype and grad.shape == (7, 5), (grad.dtype, grad.shape)
    close(grad, (p - t64) / 7, dtype, 5, f"cross-entropy gradient ({target_form})")


def test_cross_entropy_rejects_bad_targets():
    loss_fn = lm.CrossEntropyLoss()
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"label 4 at index 2 is out of range \[0, 4\)"):
        loss_fn(z, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=r"label -1 at index 0 is out of range"):
        loss_fn(z, np.array([-1, 1, 2]))
    with pytest.raises(ValueError, match=r"label 1.5 at index 1 is not an integer"):
        loss_fn(z, np.array([0.0, 1.5, 2.0]))
    with pytest.raises(ValueError, match="not an integer"):
        loss_fn(z, np.array([0.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="2 labels for a batch of 3"):
        loss_fn(z, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"target has shape \(3, 3\), logits have shape \(3, 4\)"):
        loss_fn(z, np.eye(3))
    with pytest.raises(TypeError, match="dtype bool"):
        loss_fn(z, np.array([True, False, True]))
    with pytest.raises(TypeError, match="dtype <U1"):
        loss_fn(z, np.array(["a", "b", "c"]))
    with pytest.raises(ValueError, match="2-D input"):
        loss_fn(np.zeros(4), np.array([0]))
    with pytest.raises(ValueError, match="empty batch"):
        loss_fn(np.zeros((0, 4)), np.zeros(0, dtype=int))


def test_backward_before_the_loss_is_computed():
    for cls in (lm.CrossEntropyLoss, lm.BCEWithLogitsLoss, lm.MSELoss):
        with pytest.raises(RuntimeError, match=f"{cls.__name__}.backward"):
            cls().backward()


def test_cross_entropy_is_stable_at_large_logits():
    loss_fn = lm.CrossEntropyLoss()
    loss = loss_fn(np.array([[1e4, 0.0, -1e4]], dtype=np.float32), np.array([2]))
    assert np.isfinite(loss) and abs(loss - 2e4) < 1, loss
    assert np.isfinite(loss_fn.backward()).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_over_a_batch_whose_row_sums_multiply_past_double(dtype, rng, close):
    """The label form adds the rows' log-sums as the log of their product, rescaled on the way:
    3,000 rows of 10 classes multiply to ~10**3000, far past double's range."""
    rows, cols = 3000, 10
    loss = lm.CrossEntropyLoss()(np.zeros((rows, cols), dtype), rng.integers(0, cols, rows))
    assert abs(loss - np.log(cols)) < 1e-12, loss  # every row is log(10), in double
    z = (3 * rng.standard_normal((rows, cols))).astype(dtype)
    labels = rng.integers(0, cols, rows)
    p = np_softmax(z.astype(np.float64))
    expected = -np.mean(np.log(p[np.arange(rows), labels]))
    close(lm.CrossEntropyLoss()(z, labels), expected, dtype, cols, "cross-entropy over 3,000 rows")


# ------------------------------------------------------------------------------------------------
# BCEWithLogitsLoss and MSELoss


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, target_shape", [((6, 1), (6, 1)), ((6, 1), (6,)), ((4, 3), (4, 3)), ((5,), (5,))])
def test_bce_against_numpy(shape, target_shape, dtype, rng, close):
    z = (3 * rng.standard_normal(shape)).astype(dtype)
    t = rng.uniform(0, 1, target_shape)
    z64, t64 = np.asarray(z, dtype=np.float64), t.reshape(shape)
    sig = 1 / (1 + np.exp(-z64))
    expected = -np.mean(t64 * np.log(sig) + (1 - t64) * np.log(1 - sig))
    loss_fn = lm.BCEWithLogitsLoss()
    close(loss_fn(z, t), expected, dtype, z.size, f"BCE value {shape} vs target {target_shape}")
    grad = loss_fn.backward()
    assert grad.shape == shape and grad.dtype == dtype, (grad.shape, grad.dtype)
    close(grad, (sig - t64) / z.size, dtype, 1, f"BCE gradient {shape}")


def test_bce_accepts_bool_and_integer_targets_and_rejects_out_of_range():
    loss_fn = lm.BCEWithLogitsLoss()
    z = np.array([[0.5], [-1.0]])
    as_float = loss_fn(z, np.array([[1.0], [0.0]]))
    assert loss_fn(z, np.array([True, False])) == as_float
    assert loss_fn(z, np.array([1, 0])) == as_float
    with pytest.raises(ValueError, match=r"\[0, 1\].*1.5 at flat index 1"):
        loss_fn(z, np.array([0.0, 1.5]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        loss_fn(z, np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match=r"target has shape \(3,\), the prediction has shape \(2, 1\)"):
        loss_fn(z, np.zeros(3))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, target_shape", [((6, 1), (6,)), ((4, 3), (4, 3)), ((5,), (5,))])
def test_mse_against_numpy(shape, target_shape, dtype, rng, close):
    p = rng.standard_normal(shape).astype(dtype)
    t = rng.standard_normal(target_shape)
    diff = np.asarray(p, dtype=np.float64) - t.reshape(shape)
    loss_fn = lm.MSELoss()
    close(loss_fn(p, t), np.mean(diff**2), dtype, p.size, f"MSE value {shape}")
    grad = loss_fn.backward()
    assert grad.shape == shape and grad.dtype == dtype
    close(grad, 2 * diff / p.size, dtype, 1, f"MSE gradient {shape}")


def test_mse_refuses_to_broadcast():
    # (B, 2) against (B,) would broadcast in NumPy; that silent mistake must be an error.
    with pytest.raises(ValueError, match=r"target has shape \(4,\), the prediction has shape \(4, 2\)"):
        lm.MSELoss()(np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(ValueError, match=r"\(batch,\) or \(batch, n\)"):
        lm.MSELoss()(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(TypeError, match="complex"):
        lm.MSELoss()(np.zeros(3), np.zeros(3, dtype=complex))
    with pytest.raises(ValueError, match="empty batch"):
        lm.MSELoss()(np.zeros((0, 1)), np.zeros(0))


def test_loss_configs():
    for cls in (lm.CrossEntropyLoss, lm.BCEWithLogitsLoss, lm.MSELoss):
        cfg = json.loads(json.dumps(cls().get_config()))
        assert cfg == {"class": cls.__name__}
        assert type(loss_from_config(cfg)) is cls and type(loss_from_config(cls.__name__)) is cls
        assert repr(cls()) == f"{cls.__name__}()"
    with pytest.raises(ValueError, match="unknown loss 'HingeLoss'"):
        loss_from_config({"class": "HingeLoss"})
    with pytest.raises(ValueError, match="unknown keys"):
        loss_from_config({"class": "MSELoss", "reduction": "sum"})


# ------------------------------------------------------------------------------------------------
# Optimizers against lamina.reference


def make_params(rng, dtype):
    return [lm.Parameter(rng.standard_normal(s).astype(dtype)) for s in [(4, 3), (4,), (2, 4)]]


SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, momentum=0.5, weight_decay=0.01),
    dict(lr=0.2, weight_decay=0.1),
]
ADAM_CONFIGS = [
    dict(),
    dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.003, weight_decay=0.05),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", SGD_CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_sgd_steps_match_reference(config, dtype, rng, close):
    params = make_params(rng, dtype)
    shadow = [np.array(p.data, dtype=np.float64) for p in params]  # a copy, also for float64
    velocity = [np.zeros_like(s) for s in shadow]
    opt = lm.SGD(params, **config)
    data_arrays = [p.data for p in params]
    for step in range(4):
        for p in params:
            p.grad[...] = rng.standard_normal(p.shape)
        opt.step()
        for s, v, p in zip(shadow, velocity, params):
            ref.sgd_step(s, np.asarray(p.grad, dtype=np.float64), v if config.get("momentum") else None,
                         lr=config["lr"], momentum=config.get("momentum", 0.0),
                         weight_decay=config.get("weight_decay", 0.0), nesterov=config.get("nesterov", False))
        for i, (p, s) in enumerate(zip(params, shadow)):
            close(p.data, s, dtype, 2 * (step + 1), f"SGD param {i} after step {step + 1}")
    assert all(p.data is a for p, a in zip(params, data_arrays)), "SGD rebound p.data"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", ADAM_CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
def test_adam_steps_match_reference(config, dtype, rng, close):
    params = make_params(rng, dtype)
    shadow = [np.array(p.data, dtype=np.float64) for p in params]  # a copy, also for float64
    m = [np.zeros_like(s) for s in shadow]
    v = [np.zeros_like(s) for s in shadow]
    opt = lm.Adam(params, **config)
    beta1, beta2 = config.get("betas", (0.9, 0.999))
    for step in range(1, 5):
        for p in params:
            p.grad[...] = rng.standard_normal(p.shape)
        opt.step()
        assert opt.step_count == step
        for s, mi, vi, p in zip(shadow, m, v, params):
            ref.adam_step(s, np.asarray(p.grad, dtype=np.float64), mi, vi, step=step,
                          lr=config.get("lr", 1e-3), beta1=beta1, beta2=beta2, eps=config.get("eps", 1e-8),
                          weight_decay=config.get("weight_decay", 0.0))
        for i, (p, s) in enumerate(zip(params, shadow)):
            # Adam's update is lr * mhat / (sqrt(vhat) + eps): O(lr) and well conditioned per element.
            close(p.data, s, dtype, 4 * step, f"Adam param {i} after step {step}")


def test_optimizer_zero_grad_and_model_training_reduces_loss(rng):
    model = lm.Sequential(lm.Linear(3, 8), lm.Tanh(), lm.Linear(8, 1))
    x = rng.standard_normal((32, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]))[:, None].astype(np.float32)
    for opt in (lm.SGD(model.parameters(), lr=0.05, momentum=0.9), lm.Adam(model.parameters(), lr=0.01)):
        loss_fn = lm.MSELoss()
        first = loss_fn(model(x), y)
        for _ in range(30):
            opt.zero_grad()
            loss_fn(model(x), y)
            model.backward(loss_fn.backward())
            opt.step()
        last = loss_fn(model(x), y)
        assert last < 0.5 * first, f"{type(opt).__name__}: loss {first} -> {last} after 30 steps"
        opt.zero_grad()
        assert not any(p.grad.any() for p in model.parameters())


@pytest.mark.parametrize("make", [
    lambda ps: lm.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    lambda ps: lm.Adam(ps, lr=0.01, betas=(0.85, 0.99), weight_decay=0.1),
], ids=["SGD", "Adam"])
def test_optimizer_state_dict_round_trip_resumes_identically(make, rng):
    def fresh():
        return [lm.Parameter(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)), lm.Parameter(np.ones(3))]

    grads = [[rng.standard_normal(s) for s in ((2, 3), (3,))] for _ in range(5)]

    def run(opt, params, steps):
        for g in steps:
            for p, gi in zip(params, g):
                p.grad[...] = gi
            opt.step()

    a_params = fresh()
    a = make(a_params)
    run(a, a_params, grads)
    b_params = fresh()
    b = make(b_params)
    run(b, b_params, grads[:2])
    state = b.state_dict()
    assert all(isinstance(v, (int, float, bool, np.ndarray)) for v in state.values()), state
    c_params = [lm.Parameter(p.data.copy()) for p in b_params]
    c = make(c_params)
    c.load_state_dict(state)
    run(c, c_params, grads[2:])
    for pa, pc in zip(a_params, c_params):
        np.testing.assert_array_equal(pc.data, pa.data, err_msg="resumed optimizer diverged")
    assert json.loads(json.dumps(a.get_config())) == a.get_config()
    rebuilt = optimizer_from_config(json.loads(json.dumps(a.get_config())), fresh())
    assert type(rebuilt) is type(a) and rebuilt.get_config() == a.get_config()


def test_optimizer_load_state_dict_rejects_mismatches_without_changes():
    params = [lm.Parameter(np.zeros((2, 2))), lm.Parameter(np.zeros(2))]
    opt = lm.Adam(params)
    good = opt.state_dict()
    bad = dict(good)
    bad.pop("m.1")
    with pytest.raises(KeyError, match=r"missing keys \['m.1'\]"):
        opt.load_state_dict(bad)
    bad = dict(good, **{"v.0": np.ones((3, 2)), "lr": 0.5})
    with pytest.raises(ValueError, match=r"'v.0'.*\(3, 2\).*\(2, 2\)"):
        opt.load_state_dict(bad)
    assert opt.lr == 1e-3, "a failed load changed the learning rate"
    with pytest.raises(ValueError, match="beta1"):
        opt.load_state_dict(dict(good, beta1=1.0))
    with pytest.raises(ValueError, match="step_count"):
        opt.load_state_dict(dict(good, step_count=-1))
    sgd = lm.SGD(params, lr=0.1)
    with pytest.raises(ValueError, match="cannot change momentum"):
        sgd.load_state_dict(dict(sgd.state_dict(), momentum=0.9))


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda ps: lm.SGD(ps, lr=-0.1), ValueError, "lr"),
    (lambda ps: lm.SGD(ps, lr=float("nan")), ValueError, "lr"),
    (lambda ps: lm.SGD(ps, lr="fast"), TypeError, "lr"),
    (lambda ps: lm.SGD(ps, lr=0.1, momentum=-0.5), ValueError, "momentum"),
    (lambda ps: lm.SGD(ps, lr=0.1, nesterov=True), ValueError, "Nesterov"),
    (lambda ps: lm.SGD(ps, lr=0.1, weight_decay=-1), ValueError, "weight_decay"),
    (lambda ps: lm.Adam(ps, betas=(0.9, 1.0)), ValueError, "beta2"),
    (lambda ps: lm.Adam(ps, betas=0.9), ValueError, "betas"),
    (lambda ps: lm.Adam(ps, eps=-1e-8), ValueError, "eps"),
    (lambda ps: lm.SGD([], lr=0.1), ValueError, "empty parameter list"),
    (lambda ps: lm.SGD([np.zeros(3)], lr=0.1), TypeError, "not a lamina Parameter"),
    (lambda ps: lm.SGD(ps + ps[:1], lr=0.1), ValueError, "more than once"),
    (lambda ps: lm.SGD(ps[0], lr=0.1), TypeError, "iterable of Parameters"),
])
def test_optimizer_argument_checks(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call([lm.Parameter(np.zeros(2)), lm.Parameter(np.zeros((2, 2)))])


def test_optimizer_from_config_rejects_unknown():
    params = [lm.Parameter(np.zeros(2))]
    with pytest.raises(ValueError, match="unknown optimizer 'RMSprop'"):
        optimizer_from_config({"class": "RMSprop", "lr": 0.1}, params)
    with pytest.raises(ValueError, match=r"unknown keys \['dampening'\]"):
        optimizer_from_config({"class": "SGD", "lr": 0.1, "dampening": 0.5}, params)
    with pytest.raises(ValueError, match="needs 'lr'"):
        optimizer_from_config({"class": "SGD"}, params)
    assert repr(optimizer_from_config({"class": "Adam"}, params)) == \
        "Adam(lr=0.001, betas=[0.9, 0.999], eps=1e-08, weight_decay=0.0)"
