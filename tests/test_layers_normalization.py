"""Normalization layers in both dialects: PyTorch's BatchNorm1d/2d and LayerNorm held against the
real nn modules over several training steps and in eval mode (outputs, dx, parameter gradients,
running statistics, num_batches_tracked); Keras's BatchNormalization and LayerNormalization against
Keras's documented formulas (and the real Keras in test_keras_normalization.py); state_dict and
get_weights interop, conversion between the dialects, and bad input."""
import numpy as np
import pytest

import lamina as lm
from lamina import keras, reference

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(29)


def _close(a, b, dtype, what):
    tol = 1e-10 if dtype == np.float64 else 3e-4
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), rtol=tol,
                               atol=tol, err_msg=what)


def _tdtype(dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


def _step_both(ours, theirs, x, dtype, what):
    """One forward and backward through both; asserts output, dx and parameter gradients agree."""
    theirs.zero_grad()
    ours.zero_grad()
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    y = ours(x)
    _close(y, yt.detach().numpy(), dtype, f"forward of {what}")
    dy = RNG.standard_normal(y.shape).astype(dtype)
    yt.backward(torch.tensor(dy))
    dx = ours.backward(dy)
    _close(dx, xt.grad.numpy(), dtype, f"dx of {what}")
    grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        _close(p.grad, grads[name].grad.numpy(), dtype, f"d{name} of {what}")


def _buffers_match(ours, theirs, dtype, what):
    for name, b in theirs.named_buffers():
        mine = dict(ours.named_buffers())[name]
        if name == "num_batches_tracked":
            assert int(mine) == int(b), (what, int(mine), int(b))
        else:
            _close(mine, b.numpy(), dtype, f"{name} of {what}")


BN_CASES = [
    # (class, input shape, kwargs)
    ("BatchNorm1d", (2, 5), {}),
    ("BatchNorm1d", (33, 4), dict(momentum=None)),
    ("BatchNorm1d", (3, 4, 7), dict(momentum=0.5, eps=1e-3)),
    ("BatchNorm1d", (2, 3, 1), dict(affine=False)),
    ("BatchNorm1d", (4, 6), dict(track_running_stats=False)),
    ("BatchNorm2d", (2, 3, 4, 5), {}),
    ("BatchNorm2d", (33, 2, 3, 3), dict(momentum=None, affine=False)),
    ("BatchNorm2d", (5, 1, 6, 2), dict(momentum=0.0)),
    ("BatchNorm2d", (2, 4, 3, 3), dict(momentum=1.0, track_running_stats=False)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls, shape, kwargs", BN_CASES)
def test_batch_norm_against_torch_over_steps_and_eval(cls, shape, kwargs, dtype):
    channels = shape[1]
    ours = getattr(lm.nn, cls)(channels, dtype=dtype, **kwargs)
    theirs = getattr(torch.nn, cls)(channels, **kwargs).to(_tdtype(dtype))
    if theirs.affine:  # not the default ones and zeros, so that a swapped gamma and beta would show
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(RNG.uniform(0.5, 1.5, channels)))
            theirs.bias.copy_(torch.tensor(RNG.standard_normal(channels)))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    what = f"{cls}({channels}, {kwargs}) on {shape}"
    for step in range(3):  # several steps of running-statistics updates
        x = (RNG.standard_normal(shape) * 3 + 2).astype(dtype)
        _step_both(ours, theirs, x, dtype, f"{what}, training step {step}")
        _buffers_match(ours, theirs, dtype, f"{what} after step {step}")
        with torch.no_grad():  # both optimisers' work, done by hand: the weights move between steps
            for p in theirs.parameters():
                p -= 0.1 * p.grad
        for p in ours.parameters():
            p.data -= dtype(0.1) * p.grad
    ours.eval()
    theirs.eval()
    eval_batch = 1 if theirs.track_running_stats else 2  # eval with running statistics takes a batch of one
    x = RNG.standard_normal((eval_batch, *shape[1:])).astype(dtype)
    _step_both(ours, theirs, x, dtype, f"{what}, eval")
    _buffers_match(ours, theirs, dtype, f"{what} after eval")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, normalized, kwargs", [
    ((4, 7), 7, {}),
    ((3, 5, 6), (5, 6), dict(eps=1e-3)),
    ((2, 3, 8), 8, dict(elementwise_affine=False)),
    ((2, 2, 3, 4), (3, 4), dict(bias=False)),
    ((33, 1), 1, {}),
])
def test_layer_norm_against_torch(shape, normalized, kwargs, dtype):
    ours = lm.nn.LayerNorm(normalized, dtype=dtype, **kwargs)
    theirs = torch.nn.LayerNorm(normalized, **kwargs).to(_tdtype(dtype))
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.tensor(RNG.standard_normal(tuple(p.shape))))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for mode in (True, False):  # the same in training and eval
        ours.train(mode)
        theirs.train(mode)
        x = (RNG.standard_normal(shape) * 2 - 1).astype(dtype)
        _step_both(ours, theirs, x, dtype, f"LayerNorm({normalized}, {kwargs}) on {shape}, training={mode}")


def test_state_dict_keys_are_pytorchs():
    for ours, theirs in ((lm.nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)),
                         (lm.nn.BatchNorm1d(3, affine=False), torch.nn.BatchNorm1d(3, affine=False)),
                         (lm.nn.BatchNorm1d(3, track_running_stats=False),
                          torch.nn.BatchNorm1d(3, track_running_stats=False)),
                         (lm.nn.LayerNorm((2, 3), bias=False), torch.nn.LayerNorm((2, 3), bias=False))):
        mine, want = ours.state_dict(), theirs.state_dict()
        assert list(mine) == list(want)
        for k in want:
            assert mine[k].shape == tuple(want[k].shape), k
    assert lm.nn.BatchNorm2d(3).state_dict()["num_batches_tracked"].dtype == np.int64


# --- Keras's formulas -----------------------------------------------------------------------------

def _keras_bn_formula(x, gamma, beta, mean, var, eps, axis):
    shape = [1] * x.ndim
    shape[axis] = -1
    r = lambda a: np.reshape(a, shape)  # noqa: E731
    return (x - r(mean)) / np.sqrt(r(var) + eps) * r(gamma) + r(beta)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kwargs", [
    ((8, 5), {}),
    ((2, 4, 4, 3), dict(momentum=0.9)),
    ((3, 3, 5, 5), dict(axis=1, epsilon=1e-5)),
    ((33, 2, 6), dict(center=False)),
    ((2, 6), dict(scale=False, momentum=0.0)),
])
def test_keras_batch_normalization_follows_keras_formulas(shape, kwargs, dtype):
    layer = keras.layers.BatchNormalization(dtype=dtype, **kwargs)
    axis = kwargs.get("axis", -1) % len(shape)
    momentum, eps = kwargs.get("momentum", 0.99), kwargs.get("epsilon", 1e-3)
    x0 = RNG.standard_normal(shape).astype(dtype)
    layer(x0)
    c = shape[axis]
    gamma = RNG.uniform(0.5, 1.5, c)
    beta = RNG.standard_normal(c)
    mm, mv = RNG.standard_normal(c), RNG.uniform(0.5, 2, c)
    weights = ([gamma] if layer.scale else []) + ([beta] if layer.center else []) + [mm, mv]
    layer.set_weights(weights)
    g = gamma if layer.scale else np.ones(c)
    b = beta if layer.center else np.zeros(c)
    reduce = tuple(a for a in range(len(shape)) if a != axis)
    for _ in range(3):  # training: batch statistics, biased variance in the moving average
        x = (RNG.standard_normal(shape) * 2 + 1).astype(dtype)
        y = layer(x)
        mean, var = x.astype(np.float64).mean(reduce), x.astype(np.float64).var(reduce)
        _close(y, _keras_bn_formula(x, g, b, mean, var, eps, axis), dtype, "Keras training forward")
        mm, mv = mm * momentum + mean * (1 - momentum), mv * momentum + var * (1 - momentum)
        _close(layer.moving_mean, mm, dtype, "moving_mean")
        _close(layer.moving_variance, mv, dtype, "moving_variance")
    layer.eval()
    x = RNG.standard_normal(shape).astype(dtype)
    _close(layer(x), _keras_bn_formula(x, g, b, mm, mv, eps, axis), dtype, "Keras inference forward")
    got = layer.get_weights()
    assert len(got) == len(weights) and [w.shape for w in got] == [(c,)] * len(weights)
    _close(got[-2], mm, dtype, "get_weights moving_mean")


def test_frozen_keras_batch_normalization_runs_in_inference_mode():
    layer = keras.layers.BatchNormalization()
    x = RNG.standard_normal((6, 4)).astype(np.float32)
    layer(x)
    layer.set_weights([np.full(4, 2.0), np.full(4, 0.5), np.full(4, 1.0), np.full(4, 4.0)])
    layer.trainable = False
    layer.train()  # training mode, as inside fit: a frozen layer still uses the moving statistics
    y = layer(x)
    np.testing.assert_allclose(y, (x - 1.0) / np.sqrt(4.0 + 1e-3) * 2.0 + 0.5, rtol=1e-6)
    np.testing.assert_array_equal(layer.moving_mean, np.full(4, 1.0, np.float32))  # not updated
    dy = RNG.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_allclose(layer.backward(dy), dy * 2.0 / np.sqrt(4.0 + 1e-3), rtol=1e-6)
    assert all(not p.requires_grad for p in layer.parameters())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, axis", [((4, 6), -1), ((2, 3, 5), [1, 2]), ((2, 3, 5), 1), ((2, 3, 4, 5), [1, 3])])
def test_keras_layer_normalization_follows_keras_formula(shape, axis, dtype):
    layer = keras.layers.LayerNormalization(axis=axis, dtype=dtype)
    x = (RNG.standard_normal(shape) * 3 + 1).astype(dtype)
    layer(x)
    axes = sorted(a % len(shape) for a in ([axis] if isinstance(axis, int) else axis))
    pshape = tuple(shape[a] for a in axes)
    gamma, beta = RNG.standard_normal(pshape), RNG.standard_normal(pshape)
    layer.set_weights([gamma, beta])
    bshape = [shape[a] if a in axes else 1 for a in range(len(shape))]
    xd = x.astype(np.float64)
    mean, var = xd.mean(tuple(axes), keepdims=True), xd.var(tuple(axes), keepdims=True)
    want = (xd - mean) / np.sqrt(var + 1e-3) * gamma.reshape(bshape) + beta.reshape(bshape)
    y = layer(x)
    _close(y, want, dtype, f"LayerNormalization(axis={axis})")
    # backward: against the reference on the moved axes (the layer moves them to the end and back)
    dy = RNG.standard_normal(shape).astype(dtype)
    layer.zero_grad()
    dx = layer.backward(dy)
    order = [a for a in range(len(shape)) if a not in axes] + axes
    back = np.argsort(order)
    _, m, i = reference.layer_norm(xd.transpose(order), pshape, gamma, beta, eps=1e-3)
    rdx, rdw, rdb = reference.layer_norm_backward(dy.astype(np.float64).transpose(order), xd.transpose(order), m, i,
                                                  pshape, gamma)
    _close(dx, rdx.transpose(back), dtype, "LayerNormalization dx")
    _close(layer.gamma.grad, rdw, dtype, "dgamma")
    _close(layer.beta.grad, rdb, dtype, "dbeta")


# --- interop and conversion ------------------------------------------------------------------------

def test_pytorch_state_dict_loads_and_keras_weights_order():
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU())
    theirs.train()
    theirs(torch.randn(4, 1, 6, 6))  # running statistics that are not the initial ones
    ours = lm.nn.Sequential(lm.nn.Conv2d(1, 3, 3), lm.nn.BatchNorm2d(3), lm.nn.ReLU())
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    assert int(ours[1].num_batches_tracked) == 1
    theirs.eval()
    ours.eval()
    x = RNG.standard_normal((2, 1, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(ours(x), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
    k = keras.Sequential([keras.layers.BatchNormalization(input_shape=(3,))])
    assert [w.tolist() for w in k.get_weights()] == [[1.0] * 3, [0.0] * 3, [0.0] * 3, [1.0] * 3]


def test_conversion_between_dialects_carries_eps_momentum_and_statistics():
    torch_bn = lm.nn.BatchNorm2d(3, eps=1e-4, momentum=0.2)
    torch_bn(RNG.standard_normal((4, 3, 2, 2)).astype(np.float32))
    k = keras.layers.BatchNormalization.from_torch(torch_bn, axis=1)
    assert k.epsilon == 1e-4 and k.momentum == pytest.approx(0.8) and k.axis == 1
    for mine, theirs in zip(k.get_weights(), (torch_bn.weight.data, torch_bn.bias.data, torch_bn.running_mean,
                                              torch_bn.running_var)):
        np.testing.assert_array_equal(mine, theirs)
    back = lm.nn.BatchNorm2d.from_keras(k)
    assert back.eps == 1e-4 and back.momentum == pytest.approx(0.2)
    np.testing.assert_array_equal(back.running_var, torch_bn.running_var)
    torch_bn.eval(), k.eval(), back.eval()
    x = RNG.standard_normal((2, 3, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(k(x), torch_bn(x), rtol=1e-6)
    with pytest.raises(ValueError, match="cumulative"):
        keras.layers.BatchNormalization.from_torch(lm.nn.BatchNorm1d(3, momentum=None))
    plain = lm.keras.utils.weights_from_torch(
        keras.Sequential([keras.layers.Dense(3, input_shape=(2,)), keras.layers.BatchNormalization()]),
        lm.nn.Sequential(lm.nn.Linear(2, 3), lm.nn.BatchNorm1d(3)).state_dict())
    assert [w.shape for w in plain] == [(2, 3), (3,), (3,), (3,), (3,), (3,)]  # num_batches_tracked skipped


# --- bad input ------------------------------------------------------------------------------------

def test_batch_of_one_in_training_is_refused_and_changes_nothing():
    bn = lm.nn.BatchNorm1d(3)
    before = bn.state_dict()
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(np.ones((1, 3), np.float32))
    for k, v in bn.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    bn(np.ones((1, 3, 2), np.float32))  # two values per channel: fine
    bn.eval()
    bn(np.ones((1, 3), np.float32))  # inference: fine
    free = lm.nn.BatchNorm1d(3, track_running_stats=False).eval()
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        free(np.ones((1, 3), np.float32))  # batch statistics in eval too, as in PyTorch


@pytest.mark.parametrize("make, x, match", [
    (lambda: lm.nn.BatchNorm2d(3), np.ones((2, 4, 2, 2)), "3 channels"),
    (lambda: lm.nn.BatchNorm2d(3), np.ones((2, 3, 2)), "4D"),
    (lambda: lm.nn.BatchNorm1d(3), np.ones((2, 3, 2, 2)), "2D or 3D"),
    (lambda: lm.nn.LayerNorm(4), np.ones((2, 3)), r"\[\*, 4\]"),
    (lambda: lm.nn.LayerNorm((2, 4)), np.ones((3, 4)), r"\[\*, 2, 4\]"),
    (lambda: keras.layers.BatchNormalization(axis=3), np.ones((2, 3)), "axis 3"),
])
def test_shape_errors_name_the_layer(make, x, match):
    with pytest.raises(ValueError, match=match):
        make()(x)


@pytest.mark.parametrize("make", [
    lambda: lm.nn.BatchNorm1d(3, eps=0.0),
    lambda: lm.nn.BatchNorm1d(3, eps=-1e-5),
    lambda: lm.nn.BatchNorm1d(3, momentum=1.5),
    lambda: lm.nn.BatchNorm1d(3, momentum=-0.1),
    lambda: lm.nn.BatchNorm1d(0),
    lambda: lm.nn.LayerNorm(4, eps=0),
    lambda: keras.layers.BatchNormalization(momentum=2.0),
    lambda: keras.layers.BatchNormalization(epsilon=0.0),
    lambda: keras.layers.BatchNormalization(axis=0),
    lambda: keras.layers.BatchNormalization(renorm=True),
    lambda: keras.layers.LayerNormalization(epsilon=-1.0),
    lambda: keras.layers.LayerNormalization(rms_scaling=True),
])
def test_bad_arguments(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize("key, value, match", [
    ("running_var", np.array([1.0, np.nan, 1.0]), "not finite"),
    ("running_mean", np.array([np.inf, 0.0, 0.0]), "not finite"),
    ("running_var", np.array([1.0, -1.0, 1.0]), "negative"),
    ("running_mean", np.zeros(4), "shape"),
])
def test_bad_running_statistics_are_refused_before_anything_is_written(key, value, match):
    bn = lm.nn.BatchNorm1d(3)
    state = {k: v + 1 if v.dtype != np.int64 else v for k, v in bn.state_dict().items()}
    state[key] = value
    before = bn.state_dict()
    with pytest.raises(ValueError, match=match):
        bn.load_state_dict(state)
    for k, v in bn.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    k = keras.layers.BatchNormalization()
    k(np.ones((2, 3), np.float32))
    if value.shape == (3,):
        with pytest.raises(ValueError):
            k.set_weights([np.ones(3), np.zeros(3), np.zeros(3) if key == "running_var" else value,
                           value if key == "running_var" else np.ones(3)])


def test_repr_and_config_round_trip():
    for layer in (lm.nn.BatchNorm2d(4, momentum=None), lm.nn.LayerNorm((2, 3), elementwise_affine=False),
                  keras.layers.BatchNormalization(axis=1, center=False),
                  keras.layers.LayerNormalization(axis=[1, 2], epsilon=1e-5)):
        again = lm._registry.layer_from_config(layer.get_config())
        assert repr(again) == repr(layer)
    assert repr(lm.nn.BatchNorm2d(4)) == \
        "BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"


def test_save_and_load_keep_running_statistics_and_refuse_bad_ones(tmp_path):
    model = lm.nn.Sequential(lm.nn.Linear(3, 4), lm.nn.BatchNorm1d(4, momentum=None), lm.nn.ReLU(),
                             lm.nn.Linear(4, 2))
    model.compile(optimizer=lm.SGD(model.parameters(), lr=0.1), loss=lm.CrossEntropyLoss())
    x = RNG.standard_normal((8, 3)).astype(np.float32)
    for _ in range(2):
        model.train_step(x, RNG.integers(0, 2, 8))
    path = tmp_path / "bn.lamina"
    lm.save(model, path)
    again = lm.load(path)
    for key, value in model.state_dict().items():
        assert np.array_equal(value, again.state_dict()[key]) and value.dtype == again.state_dict()[key].dtype, key
    assert int(again[1].num_batches_tracked) == 2
    model[1].running_var[1] = np.nan  # a file that holds a broken statistic is refused on load
    lm.save(model, path)
    with pytest.raises(ValueError, match="running_var is not finite"):
        lm.load(path)
    k = keras.Sequential([keras.layers.Dense(4, input_shape=(3,)), keras.layers.BatchNormalization(),
                          keras.layers.Dense(2)])
    lines = []
    k.summary(print_fn=lines.append)
    assert "Non-trainable params: 8" in lines  # the moving statistics, as Keras counts them
    lm.save(k, path)
    assert all(np.array_equal(a, b) for a, b in zip(k.get_weights(), lm.load(path).get_weights()))
