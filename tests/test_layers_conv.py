"""Convolution and pooling layers in both dialects, held against the originals: PyTorch's nn.Conv2d,
nn.MaxPool2d, ... with the same weights (forward, dx, dW, db), Keras's arithmetic for 'same',
channels_last and its kernel layout, and the layers' own bad-input errors."""
import itertools

import numpy as np
import pytest

import lamina as lm
from lamina import keras

torch = pytest.importorskip("torch")
F = torch.nn.functional

RNG = np.random.default_rng(13)


def _close(a, b, dtype, what):
    tol = 1e-11 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=what)


def _torch_pair(lm_layer, torch_layer, x, dtype):
    """Forward and backward of both with the same weights; returns nothing, asserts closeness."""
    torch_layer = torch_layer.to(torch.float64 if dtype == np.float64 else torch.float32)
    lm_layer.load_state_dict({k: v.detach().numpy() for k, v in torch_layer.state_dict().items()})
    torch_layer.zero_grad()
    xt = torch.tensor(x, requires_grad=True)
    yt = torch_layer(xt)
    y = lm_layer(x)
    assert y.shape == tuple(yt.shape), (y.shape, yt.shape)
    _close(y, yt.detach().numpy(), dtype, f"forward of {lm_layer!r}")
    dy = RNG.standard_normal(y.shape).astype(dtype)
    yt.backward(torch.tensor(dy))
    lm_layer.zero_grad()
    dx = lm_layer.backward(dy)
    _close(dx, xt.grad.numpy(), dtype, f"dx of {lm_layer!r}")
    grads = dict(torch_layer.named_parameters())
    for name, p in lm_layer.named_parameters():
        _close(p.grad, grads[name].grad.numpy(), dtype, f"d{name} of {lm_layer!r}")


CONV2D_CASES = [
    # (in, out, kernel, stride, padding, dilation, groups, bias, padding_mode, (H, W))
    (3, 4, 1, 1, 0, 1, 1, True, "zeros", (5, 6)),
    (3, 5, 3, 1, 1, 1, 1, True, "zeros", (7, 8)),
    (2, 4, 3, 2, 0, 1, 1, False, "zeros", (9, 9)),
    (4, 4, 5, 3, 2, 1, 2, True, "zeros", (11, 10)),
    (4, 8, 3, 1, "same", 2, 4, True, "zeros", (8, 7)),
    (2, 3, (3, 1), (1, 2), (1, 0), (2, 1), 1, True, "zeros", (6, 9)),
    (3, 3, 7, 1, 3, 1, 3, True, "zeros", (7, 7)),
    (2, 4, 3, 1, "valid", 1, 1, True, "zeros", (5, 5)),
    (2, 4, 4, 1, "same", 1, 2, True, "zeros", (6, 5)),
    (2, 3, 3, 1, 1, 1, 1, True, "reflect", (5, 6)),
    (2, 3, 3, 2, 2, 1, 1, True, "replicate", (6, 7)),
    (2, 3, 3, 1, (2, 1), 1, 1, True, "circular", (5, 4)),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")  # torch's own note
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV2D_CASES, ids=[str(i) for i in range(len(CONV2D_CASES))])
def test_conv2d_matches_torch(case, dtype):
    c_in, c_out, k, s, p, d, g, bias, mode, (h, w) = case
    args = dict(stride=s, padding=p, dilation=d, groups=g, bias=bias, padding_mode=mode)
    lm.manual_seed(0)
    ours = lm.nn.Conv2d(c_in, c_out, k, dtype=dtype, **args)
    theirs = torch.nn.Conv2d(c_in, c_out, k, **args)
    for batch in (1, 3):
        x = RNG.standard_normal((batch, c_in, h, w)).astype(dtype)
        _torch_pair(ours, theirs, x, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k,s,p,d,g", [(1, 1, 0, 1, 1), (3, 2, 1, 1, 1), (5, 1, "same", 2, 2), (3, 3, 0, 1, 4)])
def test_conv1d_matches_torch(k, s, p, d, g, dtype):
    ours = lm.nn.Conv1d(4, 8, k, stride=s, padding=p, dilation=d, groups=g, dtype=dtype)
    theirs = torch.nn.Conv1d(4, 8, k, stride=s, padding=p, dilation=d, groups=g)
    _torch_pair(ours, theirs, RNG.standard_normal((2, 4, 13)).astype(dtype), dtype)


def test_conv_initialisation_follows_each_original():
    lm.manual_seed(1)
    conv = lm.nn.Conv2d(6, 16, 5)
    bound = 1 / np.sqrt(6 * 25)
    assert conv.weight.shape == (16, 6, 5, 5) and conv.bias.shape == (16,)
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.weight.data).max() > 0.9 * bound
    assert np.abs(conv.bias.data).max() <= bound
    k = keras.layers.Conv2D(16, 5, input_shape=(28, 28, 6))
    limit = np.sqrt(6 / (6 * 25 + 16 * 25))
    kernel, b = k.get_weights()
    assert kernel.shape == (5, 5, 6, 16) and np.all(b == 0)
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit


POOL_CASES = [
    ("max", dict(kernel_size=2)),
    ("max", dict(kernel_size=3, stride=2, padding=1)),
    ("max", dict(kernel_size=3, stride=2, ceil_mode=True)),
    ("max", dict(kernel_size=(2, 3), stride=(1, 2), dilation=2)),
    ("avg", dict(kernel_size=2)),
    ("avg", dict(kernel_size=3, stride=2, padding=1)),
    ("avg", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("avg", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg", dict(kernel_size=2, divisor_override=3)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind,args", POOL_CASES, ids=[f"{k}{i}" for i, (k, _) in enumerate(POOL_CASES)])
def test_pool2d_matches_torch(kind, args, dtype):
    ours = (lm.nn.MaxPool2d if kind == "max" else lm.nn.AvgPool2d)(**args)
    theirs = (torch.nn.MaxPool2d if kind == "max" else torch.nn.AvgPool2d)(**args)
    for shape in ((1, 3, 7, 8), (4, 2, 10, 9)):
        _torch_pair(ours, theirs, RNG.standard_normal(shape).astype(dtype), dtype)


@pytest.mark.parametrize("cls,args,shape", [
    ("MaxPool1d", dict(kernel_size=2), (2, 3, 9)),
    ("MaxPool1d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 3, 10)),
    ("AvgPool1d", dict(kernel_size=3, stride=2, padding=1), (2, 3, 10)),
    ("AvgPool1d", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False, ceil_mode=True), (2, 3, 10)),
    ("AdaptiveAvgPool2d", dict(output_size=(3, 2)), (2, 3, 7, 5)),
    ("AdaptiveAvgPool2d", dict(output_size=1), (2, 3, 6, 6)),
    ("AdaptiveAvgPool2d", dict(output_size=(None, 4)), (2, 3, 5, 9)),
    ("AdaptiveAvgPool1d", dict(output_size=4), (2, 3, 10)),
])
def test_other_pools_match_torch(cls, args, shape):
    _torch_pair(getattr(lm.nn, cls)(**args), getattr(torch.nn, cls)(**args),
                RNG.standard_normal(shape), np.float64)


# ---- Keras's arithmetic, checked against formulas written from its documentation ----------------

def _keras_conv_by_formula(x, kernel, bias, strides, padding, dilation):
    """NHWC convolution with Keras's 'same' rule (extra pad at the end), through torch."""
    h, w = x.shape[1:3]
    kh, kw = kernel.shape[:2]
    pads = []
    for n, k, s, d in zip((h, w), (kh, kw), strides, dilation):
        if padding == "same":
            total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
            pads.append((total // 2, total - total // 2))
        else:
            pads.append((0, 0))
    xt = F.pad(torch.tensor(x).permute(0, 3, 1, 2), (*pads[1], *pads[0]))
    y = F.conv2d(xt, torch.tensor(kernel).permute(3, 2, 0, 1), torch.tensor(bias), strides, 0, dilation)
    return y.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("k,s,padding,d,size", [
    (3, 1, "valid", 1, (8, 8)), (3, 2, "same", 1, (8, 8)), (3, 2, "same", 1, (7, 6)),
    (2, 2, "same", 1, (5, 5)), (4, 3, "same", 1, (10, 11)), (3, 1, "same", 2, (7, 8)), (5, 2, "valid", 1, (9, 12)),
])
def test_keras_conv2d_same_and_channels_last(k, s, padding, d, size):
    layer = keras.layers.Conv2D(5, k, strides=s, padding=padding, dilation_rate=d, dtype=np.float64)
    x = RNG.standard_normal((2, *size, 3))
    y = layer(x)
    kernel, bias = RNG.standard_normal((k, k, 3, 5)), RNG.standard_normal(5)
    layer.set_weights([kernel, bias])
    y = layer(x)
    np.testing.assert_allclose(y, _keras_conv_by_formula(x, kernel, bias, (s, s), padding, (d, d)), rtol=1e-11, atol=1e-11)
    assert y.shape[1:3] == (tuple(-(-n // s) for n in size) if padding == "same" else y.shape[1:3])


def test_keras_conv_channels_first_has_keras_weights():
    a = keras.layers.Conv2D(4, (3, 2), data_format="channels_first", dtype=np.float64)
    b = keras.layers.Conv2D(4, (3, 2), dtype=np.float64)
    x = RNG.standard_normal((2, 3, 6, 5))
    a(x)
    b(x.transpose(0, 2, 3, 1))
    weights = [RNG.standard_normal((3, 2, 3, 4)), RNG.standard_normal(4)]
    a.set_weights(weights)
    b.set_weights(weights)
    assert [w.shape for w in a.get_weights()] == [(3, 2, 3, 4), (4,)]
    np.testing.assert_allclose(a(x).transpose(0, 2, 3, 1), b(x.transpose(0, 2, 3, 1)), rtol=1e-12, atol=1e-12)
    assert a.weight.shape == (4, 3, 3, 2)  # stored as the channels_first kernel reads it


def test_keras_conv1d_causal_pads_only_the_past():
    layer = keras.layers.Conv1D(2, 3, padding="causal", dilation_rate=2, dtype=np.float64)
    x = RNG.standard_normal((1, 9, 1))
    layer(x)
    layer.set_weights([np.ones((3, 1, 2)), np.zeros(2)])
    y = layer(x)
    xs = np.concatenate([np.zeros(4), x[0, :, 0]])
    expected = xs[0:9] + xs[2:11] + xs[4:13]
    np.testing.assert_allclose(y[0, :, 0], expected, rtol=1e-12)
    x2 = x.copy()
    x2[0, 5:] += 1.0  # the future does not reach the past
    np.testing.assert_allclose(layer(x2)[0, :5], y[0, :5])


@pytest.mark.parametrize("cls,pool,s,size", [
    ("MaxPooling2D", 2, None, (7, 7)), ("MaxPooling2D", 3, 2, (8, 9)), ("AveragePooling2D", 2, None, (5, 6)),
    ("AveragePooling2D", 3, 2, (8, 7)), ("AveragePooling2D", 2, 1, (4, 4)),
])
def test_keras_pooling_same_pads_at_the_end_and_counts_no_padding(cls, pool, s, size):
    layer = getattr(keras.layers, cls)(pool, strides=s, padding="same")
    x = RNG.standard_normal((2, *size, 3))
    y = layer(x)
    s = s or pool
    outs = tuple(-(-n // s) for n in size)
    assert y.shape == (2, *outs, 3)
    # by definition: each window clipped to the input (padding never wins and is never counted)
    for i, j in itertools.product(range(outs[0]), range(outs[1])):
        pads = [max((o - 1) * s + pool - n, 0) // 2 for o, n in zip(outs, size)]
        r0, c0 = i * s - pads[0], j * s - pads[1]
        win = x[:, max(r0, 0):r0 + pool, max(c0, 0):c0 + pool, :]
        want = win.max(axis=(1, 2)) if cls.startswith("Max") else win.mean(axis=(1, 2))
        np.testing.assert_allclose(y[:, i, j], want, rtol=1e-12)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("cls", ["GlobalAveragePooling2D", "GlobalMaxPooling2D", "GlobalAveragePooling1D",
                                 "GlobalMaxPooling1D"])
def test_keras_global_pooling(cls, data_format):
    rank = 2 if cls.endswith("2D") else 1
    shape = (3, 4, 5, 6)[:rank + 2]
    x = RNG.standard_normal(shape)
    layer = getattr(keras.layers, cls)(data_format=data_format)
    axes = tuple(range(1, rank + 1)) if data_format == "channels_last" else tuple(range(2, rank + 2))
    reduce = np.max if "Max" in cls else np.mean
    y = layer(x)
    np.testing.assert_allclose(y, reduce(x, axis=axes), rtol=1e-12)
    dy = RNG.standard_normal(y.shape)
    dx = layer.backward(dy)
    if "Max" in cls:
        assert np.count_nonzero(dx) == dy.size
        np.testing.assert_allclose(dx.sum(axis=axes), dy, rtol=1e-12)
    else:
        n = np.prod([x.shape[a] for a in axes])
        np.testing.assert_allclose(dx, np.expand_dims(dy, axes) / n * np.ones_like(x), rtol=1e-12)
    kept = getattr(keras.layers, cls)(data_format=data_format, keepdims=True)(x)
    assert kept.shape == reduce(x, axis=axes, keepdims=True).shape


# ---- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make,match", [
    (lambda: lm.nn.Conv2d(3, 4, 3, stride=0), "stride"),
    (lambda: lm.nn.Conv2d(3, 4, 0), "kernel_size"),
    (lambda: lm.nn.Conv2d(3, 4, 3, dilation=-1), "dilation"),
    (lambda: lm.nn.Conv2d(3, 4, 3, groups=0), "groups"),
    (lambda: lm.nn.Conv2d(3, 4, 3, groups=2), "divisible"),
    (lambda: lm.nn.Conv2d(4, 3, 3, groups=2), "divisible"),
    (lambda: lm.nn.Conv2d(3, 4, 3, stride=2, padding="same"), "strided"),
    (lambda: lm.nn.Conv2d(3, 4, 3, padding=-1), "padding"),
    (lambda: lm.nn.Conv2d(3, 4, 3, padding_mode="mirror"), "padding_mode"),
    (lambda: lm.nn.Conv2d(3, 4, (3, 3, 3)), "kernel_size"),
    (lambda: lm.nn.MaxPool2d(2, padding=2), "half"),
    (lambda: lm.nn.AvgPool2d(3, padding=2), "half"),
    (lambda: keras.layers.Conv2D(4, 3, padding="causal"), "padding"),
    (lambda: keras.layers.Conv2D(4, 3, data_format="NHWC"), "data_format"),
    (lambda: keras.layers.MaxPooling2D(2, padding="full"), "padding"),
])
def test_bad_arguments_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_inputs_are_named_and_nothing_is_written():
    conv = lm.nn.Conv2d(3, 4, 5)
    before = conv.weight.data.copy()
    with pytest.raises(ValueError, match=r"Conv2d.*larger than the padded input"):
        conv(np.zeros((1, 3, 4, 9), np.float32))
    with pytest.raises(ValueError, match=r"3 channels"):
        conv(np.zeros((1, 2, 9, 9), np.float32))
    with pytest.raises(ValueError, match=r"4-D input"):
        conv(np.zeros((3, 9, 9), np.float32))
    with pytest.raises(ValueError, match=r"state_dict\['weight'\] has shape"):
        conv.load_state_dict({"weight": np.zeros((4, 3, 3, 3)), "bias": np.zeros(4)})
    with pytest.raises(ValueError, match=r"set_weights: weight 0 has shape"):
        conv.set_weights([np.zeros((4, 3, 5, 5)), np.zeros(4)])
    np.testing.assert_array_equal(conv.weight.data, before)
    with pytest.raises(ValueError, match=r"MaxPool2d.*larger than the padded input"):
        lm.nn.MaxPool2d(3)(np.zeros((1, 1, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"expects \(3, 3, in_channels/groups, 8\)"):
        keras.layers.Conv2D(8, 3).set_weights([np.zeros((3, 3, 8)), np.zeros(8)])


# ---- models: Sequential, state_dict, Keras weights, save/load, the two dialects together ------------

def _lenet(dtype=np.float32):
    nn = lm.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 4 * 4, 120), nn.ReLU(),
                         nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def _torch_lenet():
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 4 * 4, 120), nn.ReLU(),
                         nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def test_lenet_state_dict_from_torch_and_into_keras_dialect():
    tnet = _torch_lenet().double()
    state = {k: v.detach().numpy() for k, v in tnet.state_dict().items()}
    ours = _lenet()
    ours.load_state_dict(state)
    assert list(ours.state_dict()) == list(state)
    x = RNG.standard_normal((3, 1, 28, 28))
    expected = tnet(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(ours(x.astype(np.float32)), expected, rtol=1e-4, atol=1e-4)

    layers = keras.layers
    kmodel = keras.Sequential([
        keras.Input(shape=(28, 28, 1)), layers.Conv2D(6, 5, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(16, 5, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
        layers.Dense(120, activation="relu"), layers.Dense(84, activation="relu"), layers.Dense(10)])
    kmodel.set_weights(keras.utils.weights_from_torch(kmodel, state))
    got = kmodel.predict(x.transpose(0, 2, 3, 1), verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_conv_model_saves_and_loads(tmp_path):
    model = keras.Sequential([keras.Input(shape=(12, 12, 2)), keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
                              keras.layers.MaxPooling2D(2), keras.layers.Conv2D(3, 3, strides=2),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    x = RNG.standard_normal((5, 12, 12, 2)).astype(np.float32)
    path = tmp_path / "m.lamina"
    lm.save(model, path)
    loaded = lm.load(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    torch_style = lm.nn.Sequential(lm.nn.Conv1d(2, 3, 3, padding=1, padding_mode="reflect"), lm.nn.AvgPool1d(2),
                                   lm.nn.AdaptiveAvgPool1d(2), lm.nn.Flatten())
    lm.save(torch_style, path)
    x1 = RNG.standard_normal((2, 2, 9)).astype(np.float32)
    np.testing.assert_array_equal(lm.load(path)(x1), torch_style(x1))


def test_summary_shows_conv_shapes_and_counts():
    model = keras.Sequential([keras.Input(shape=(28, 28, 1)), keras.layers.Conv2D(32, 3, activation="relu"),
                              keras.layers.MaxPooling2D(2), keras.layers.Conv2D(64, 3, activation="relu"),
                              keras.layers.MaxPooling2D(2), keras.layers.Flatten(), keras.layers.Dropout(0.5),
                              keras.layers.Dense(10, activation="softmax")])
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    for piece in ("(None, 26, 26, 32)", "320", "(None, 13, 13, 32)", "18,496", "(None, 1600)", "16,010", "34,826"):
        assert piece in text, (piece, text)
