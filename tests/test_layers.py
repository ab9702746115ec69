"""Linear, Dense, the activation modules and Parameter: forward and backward against explicit NumPy
float64, initialisation, the input policy (dtypes, shapes, empty batches), state_dict loading, the
Keras weight layout and configs.
"""

import json
import math
import re
import zlib

import numpy as np
import pytest

import lamina as lm
from lamina._registry import layer_from_config

DTYPES = [np.float32, np.float64]


@pytest.fixture
def rng(request):
    # One seed per test id (crc32 is stable across runs, hash() is not).
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


def np_act(z, name):
    """Explicit float64 activations and their derivatives written from the formulas."""
    if name in (None, "linear"):
        return z
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise AssertionError(name)


def np_act_backward(dy, z, name):
    y = np_act(z, name)
    if name in (None, "linear"):
        return dy
    if name == "relu":
        return dy * (z > 0)
    if name == "sigmoid":
        return dy * y * (1 - y)
    if name == "tanh":
        return dy * (1 - y * y)
    if name == "softmax":
        return y * (dy - (dy * y).sum(axis=1, keepdims=True))
    raise AssertionError(name)


def f64(a):
    return np.asarray(a, dtype=np.float64)


# ------------------------------------------------------------------------------------------------
# Parameter


def test_parameter_grad_starts_at_zero_with_same_shape_and_dtype():
    for dtype in DTYPES:
        p = lm.Parameter(np.ones((3, 2), dtype=dtype))
        assert p.grad.shape == (3, 2) and p.grad.dtype == dtype, (p.grad.shape, p.grad.dtype)
        assert not p.grad.any()
        assert p.shape == (3, 2) and p.size == 6 and p.dtype == dtype


def test_parameter_converts_to_an_array():
    p = lm.Parameter(np.arange(4, dtype=np.float32))
    assert np.asarray(p) is p.data
    assert np.asarray(p, dtype=np.float64).dtype == np.float64
    assert np.array(p) is not p.data and np.array_equal(np.array(p), p.data)


def test_parameter_rejects_non_float_data():
    with pytest.raises(TypeError, match="float32 or float64"):
        lm.Parameter(np.ones(3, dtype=np.int64))


# ------------------------------------------------------------------------------------------------
# Linear


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_forward_backward_against_numpy(dtype, bias, rng, close):
    layer = lm.Linear(7, 5, bias=bias, dtype=dtype)
    x = rng.standard_normal((4, 7)).astype(dtype)
    dy = rng.standard_normal((4, 5)).astype(dtype)
    W = f64(layer.weight.data)
    b = f64(layer.bias.data) if bias else np.zeros(5)

    y = layer(x)
    assert y.dtype == dtype, f"output dtype {y.dtype}, expected {np.dtype(dtype)}"
    close(y, f64(x) @ W.T + b, dtype, 7, "Linear forward")

    dx = layer.backward(dy)
    assert dx.dtype == dtype
    close(dx, f64(dy) @ W, dtype, 5, "Linear dx")
    close(layer.weight.grad, f64(dy).T @ f64(x), dtype, 4, "Linear dW")
    if bias:
        close(layer.bias.grad, f64(dy).sum(axis=0), dtype, 4, "Linear db")
    else:
        assert layer.bias is None
        assert [n for n, _ in layer.named_parameters()] == ["weight"]


def test_linear_init_is_uniform_within_pytorch_bound():
    lm.manual_seed(123)
    layer = lm.Linear(100, 200)
    bound = 1 / math.sqrt(100)
    for name, p in layer.named_parameters():
        data = p.data
        assert data.dtype == np.float32
        assert np.abs(data).max() <= bound, f"{name}: max |value| {np.abs(data).max()} > bound {bound}"
    w = layer.weight.data
    # 20,000 draws from U(-0.1, 0.1): the extremes come within 1% of the bound, the mean is ~0
    # (std of the mean 0.1/sqrt(3*20000) ~ 4e-4) and the variance is bound^2/3.
    assert w.max() > 0.99 * bound and w.min() < -0.99 * bound, (w.min(), w.max())
    assert abs(w.mean()) < 3e-3, w.mean()
    assert abs(w.var() - bound**2 / 3) < 0.05 * bound**2 / 3, w.var()


def test_manual_seed_makes_initialisation_repeatable():
    lm.manual_seed(7)
    a = lm.Linear(5, 3)
    lm.manual_seed(7)
    b = lm.Linear(5, 3)
    c = lm.Linear(5, 3)
    assert np.array_equal(a.weight.data, b.weight.data) and np.array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(b.weight.data, c.weight.data), "two draws after one seed must differ"
    with pytest.raises(ValueError, match="non-negative"):
        lm.manual_seed(-1)
    with pytest.raises(TypeError):
        lm.manual_seed(1.5)


def test_gradients_accumulate_over_two_backward_calls_and_zero_grad_clears(rng, close):
    layer = lm.Linear(6, 3)
    x = rng.standard_normal((5, 6)).astype(np.float32)
    dy = rng.standard_normal((5, 3)).astype(np.float32)
    layer(x)
    weight_grad, bias_grad = layer.weight.grad, layer.bias.grad
    layer.backward(dy)
    once_w, once_b = layer.weight.grad.copy(), layer.bias.grad.copy()
    layer.backward(dy)
    assert layer.weight.grad is weight_grad and layer.bias.grad is bias_grad, "grad arrays were rebound"
    close(layer.weight.grad, 2 * f64(once_w), np.float32, 5, "dW after 2 calls")
    close(layer.bias.grad, 2 * f64(once_b), np.float32, 5, "db after 2 calls")
    layer.zero_grad()
    assert layer.weight.grad is weight_grad
    assert not layer.weight.grad.any() and not layer.bias.grad.any()


def test_linear_repr_and_config_round_trip():
    layer = lm.Linear(784, 30)
    assert repr(layer) == "Linear(in_features=784, out_features=30, bias=True)"
    layer64 = lm.Linear(3, 2, bias=False, dtype=np.float64)
    assert repr(layer64) == "Linear(in_features=3, out_features=2, bias=False, dtype=float64)"
    cfg = json.loads(json.dumps(layer64.get_config()))
    assert cfg == {"class": "Linear", "in_features": 3, "out_features": 2, "bias": False, "dtype": "float64"}
    rebuilt = layer_from_config(cfg)
    assert isinstance(rebuilt, lm.Linear) and rebuilt.get_config() == cfg
    assert rebuilt.weight.dtype == np.float64 and rebuilt.bias is None


@pytest.mark.parametrize(
    "args, exc",
    [
        ((0, 3), ValueError),
        ((3, -1), ValueError),
        ((2.5, 3), TypeError),
        ((True, 3), TypeError),
        (("3", 3), TypeError),
    ],
)
def test_linear_rejects_bad_sizes(args, exc):
    with pytest.raises(exc, match="features"):
        lm.Linear(*args)


@pytest.mark.parametrize("dtype", [np.int32, np.float16, "float128", None, "complex64"])
def test_layers_reject_non_float32_64_dtype(dtype):
    with pytest.raises(TypeError, match="float32 or float64"):
        lm.Linear(2, 2, dtype=dtype)
    with pytest.raises(TypeError, match="float32 or float64"):
        lm.Dense(2, dtype=dtype)


# ------------------------------------------------------------------------------------------------
# Dense


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", [None, "linear", "relu", "sigmoid", "tanh", "softmax"])
def test_dense_forward_backward_against_numpy(activation, dtype, rng, close):
    layer = lm.Dense(5, activation=activation, input_shape=(6,), dtype=dtype)
    layer.bias.data[:] = rng.standard_normal(5)  # Keras starts at zero; test a non-zero bias too
    x = rng.standard_normal((8, 6)).astype(dtype)
    dy = rng.standard_normal((8, 5)).astype(dtype)
    W, b = f64(layer.weight.data), f64(layer.bias.data)
    z = f64(x) @ W.T + b

    y = layer(x)
    assert y.shape == (8, 5) and y.dtype == dtype, (y.shape, y.dtype)
    close(y, np_act(z, activation), dtype, 6, f"Dense({activation}) forward")

    dx = layer.backward(dy)
    dz = np_act_backward(f64(dy), z, activation)
    close(dx, dz @ W, dtype, 6 * 5, f"Dense({activation}) dx")
    close(layer.weight.grad, dz.T @ f64(x), dtype, 8 * 5, f"Dense({activation}) dW")
    close(layer.bias.grad, dz.sum(axis=0), dtype, 8 * 5, f"Dense({activation}) db")


def test_dense_init_is_glorot_uniform_with_zero_bias():
    lm.manual_seed(5)
    layer = lm.Dense(units=300, input_shape=(100,))
    limit = math.sqrt(6 / (100 + 300))
    w = layer.weight.data
    assert w.shape == (300, 100), f"weight stored (units, in) like Linear, got {w.shape}"
    assert np.abs(w).max() <= limit and w.max() > 0.99 * limit and w.min() < -0.99 * limit, (w.min(), w.max())
    assert abs(w.var() - limit**2 / 3) < 0.05 * limit**2 / 3, w.var()
    assert not layer.bias.data.any(), "Keras initialises the bias at zero"


def test_dense_builds_lazily_on_first_call(rng):
    layer = lm.Dense(4, activation="tanh")
    assert not layer.built and layer.num_parameters() == 0 and layer.parameters() == []
    assert layer.get_config()["input_shape"] is None
    y = layer(rng.standard_normal((3, 9)))
    assert layer.built and y.shape == (3, 4)
    assert layer.weight.shape == (4, 9) and layer.num_parameters() == 4 * 9 + 4
    assert layer.get_config()["input_shape"] == [9], "a built layer records its input size"
    with pytest.raises(ValueError, match=r"\(batch, 9\)"):
        layer(rng.standard_normal((3, 8)))


def test_dense_keras_weight_layout(rng, close):
    layer = lm.Dense(3, input_shape=(5,), activation="relu")
    kernel = rng.standard_normal((5, 3)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    weight_array = layer.weight.data
    layer.set_weights([kernel, bias])
    assert layer.weight.data is weight_array, "set_weights must copy into the existing array"
    assert np.array_equal(layer.weight.data, kernel.T), "weight is stored as kernel.T (units, in)"
    got = layer.get_weights()
    assert [w.shape for w in got] == [(5, 3), (3,)], [w.shape for w in got]
    assert np.array_equal(got[0], kernel) and np.array_equal(got[1], bias)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    close(layer(x), np.maximum(f64(x) @ f64(kernel) + f64(bias), 0), np.float32, 5, "Dense with Keras kernel")
    got[0][0, 0] = 1e6
    assert layer.weight.data[0, 0] != 1e6, "get_weights must return copies"


def test_dense_set_weights_builds_a_lazy_layer_and_checks_shapes():
    layer = lm.Dense(3, use_bias=False)
    layer.set_weights([np.ones((7, 3))])
    assert layer.built and layer.weight.shape == (3, 7) and layer.bias is None
    before = layer.weight.data.copy()
    with pytest.raises(ValueError, match=r"\(3, 7\)"):
        layer.set_weights([np.ones((3, 7))])
    with pytest.raises(ValueError, match="expects 1 arrays, got 2"):
        layer.set_weights([np.ones((7, 3)), np.ones(3)])
    assert np.array_equal(layer.weight.data, before), "a failed set_weights changed the weights"


def test_dense_repr_and_config_round_trip():
    layer = lm.Dense(units=6, input_shape=(8,), activation="relu")
    assert repr(layer) == "Dense(units=6, activation='relu', input_shape=(8,))"
    assert repr(lm.Dense(4)) == "Dense(units=4)"
    cfg = json.loads(json.dumps(layer.get_config()))
    assert cfg == {"class": "Dense", "units": 6, "activation": "relu", "input_shape": [8],
                   "use_bias": True, "dtype": "float32"}
    rebuilt = layer_from_config(cfg)
    assert rebuilt.built and rebuilt.num_parameters() == 54 and rebuilt.get_config() == cfg


@pytest.mark.parametrize(
    "kwargs, exc, pattern",
    [
        ({"units": 0}, ValueError, "units"),
        ({"units": 3, "activation": "swish"}, ValueError, "unknown activation 'swish'"),
        ({"units": 3, "input_shape": (2, 3)}, ValueError, "input_shape"),
        ({"units": 3, "input_shape": 4}, ValueError, "input_shape"),
        ({"units": 3, "use_bias": "yes"}, TypeError, "use_bias"),
    ],
)
def test_dense_rejects_bad_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        lm.Dense(**kwargs)


def test_output_shape():
    assert lm.Linear(8, 3).output_shape((None, 8)) == (None, 3)
    assert lm.Dense(4).output_shape((32, 11)) == (32, 4)
    assert lm.ReLU().output_shape((None, 5)) == (None, 5)
    with pytest.raises(ValueError, match=r"Linear\(in_features=8.*\(batch, 8\).*\(None, 7\)"):
        lm.Linear(8, 3).output_shape((None, 7))


# ------------------------------------------------------------------------------------------------
# Activation modules


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls, name", [(lm.ReLU, "relu"), (lm.Sigmoid, "sigmoid"), (lm.Tanh, "tanh"),
                                       (lm.Softmax, "softmax")])
def test_activation_modules_against_numpy(cls, name, dtype, rng, close):
    layer = cls()
    x = (3 * rng.standard_normal((6, 5))).astype(dtype)
    dy = rng.standard_normal((6, 5)).astype(dtype)
    y = layer(x)
    assert y.dtype == dtype and y.shape == x.shape
    close(y, np_act(f64(x), name), dtype, 5, f"{cls.__name__} forward")
    close(layer.backward(dy), np_act_backward(f64(dy), f64(x), name), dtype, 5, f"{cls.__name__} backward")
    assert layer.parameters() == [] and layer.num_parameters() == 0 and layer.state_dict() == {}


def test_activation_reprs_and_softmax_dim():
    assert [repr(m) for m in (lm.ReLU(), lm.Sigmoid(), lm.Tanh())] == ["ReLU()", "Sigmoid()", "Tanh()"]
    assert repr(lm.Softmax(dim=1)) == "Softmax(dim=1)"
    assert layer_from_config(lm.Softmax().get_config()).dim == -1
    with pytest.raises(ValueError, match="dim"):
        lm.Softmax(dim=0)


# ------------------------------------------------------------------------------------------------
# Input policy


def make_layers():
    return [lm.Linear(3, 2), lm.Dense(2, input_shape=(3,), activation="sigmoid"), lm.ReLU(), lm.Softmax()]


@pytest.mark.parametrize("index", range(4))
@pytest.mark.parametrize(
    "bad",
    [
        np.ones((2, 3), dtype=bool),
        np.ones((2, 3), dtype=np.complex64),
        np.array([[1, "a", 2]], dtype=object),
        np.array([["a", "b", "c"]]),
    ],
    ids=["bool", "complex", "object", "str"],
)
def test_non_numeric_input_is_a_type_error(index, bad):
    layer = make_layers()[index]
    with pytest.raises(TypeError, match=f"dtype {bad.dtype}"):
        layer(bad)


@pytest.mark.parametrize("index", range(4))
@pytest.mark.parametrize("shape", [(3,), ()])  # (1, 2, 3) is a valid N-D input: tests/test_core.py
def test_input_must_be_2d(index, shape):
    with pytest.raises(ValueError, match=r"2-D input \(batch, features\)"):
        make_layers()[index](np.ones(shape))


def test_wrong_feature_count_names_layer_expected_and_given_shape():
    with pytest.raises(ValueError) as info:
        lm.Linear(8, 6)(np.ones((4, 5), dtype=np.float32))
    msg = str(info.value)
    for part in ("Linear(in_features=8, out_features=6", "(batch, 8)", "(4, 5)"):
        assert part in msg, f"{part!r} missing from {msg!r}"
    with pytest.raises(ValueError, match=r"Dense\(units=6.*\(batch, 8\).*\(4, 5\)"):
        lm.Dense(6, input_shape=(8,))(np.ones((4, 5)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_integer_and_other_float_inputs_are_cast_to_layer_dtype(dtype, rng):
    layer = lm.Linear(3, 2, dtype=dtype)
    ints = rng.integers(0, 10, size=(4, 3))
    expected = layer(ints.astype(dtype))
    other_float = np.float64 if dtype == np.float32 else np.float32
    # Small integers are exact in every type below, so the output must be bit-identical.
    for x in (ints, ints.astype(np.int32), ints.astype(np.uint8), ints.astype(np.float16),
              ints.astype(other_float), ints.tolist()):
        y = layer(x)
        assert y.dtype == dtype, f"input {np.asarray(x).dtype} gave output dtype {y.dtype}"
        assert np.array_equal(y, expected), f"input {np.asarray(x).dtype} gave {y}, expected {expected}"


def test_activations_keep_float_dtype_and_cast_integers_to_float32():
    assert lm.ReLU()(np.ones((2, 2), dtype=np.float64)).dtype == np.float64
    assert lm.Tanh()(np.ones((2, 2), dtype=np.float32)).dtype == np.float32
    assert lm.Sigmoid()(np.ones((2, 2), dtype=np.int64)).dtype == np.float32


def test_objects_with_array_interface_are_accepted(rng):
    class Wrapped:
        def __init__(self, a):
            self.a = a

        def __array__(self, dtype=None, copy=None):
            return self.a if dtype is None else self.a.astype(dtype)

    layer = lm.Linear(3, 2)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    assert np.array_equal(layer(Wrapped(x)), layer(x))
    # non-contiguous views and read-only arrays are accepted too
    wide = rng.standard_normal((5, 6)).astype(np.float32)
    assert np.array_equal(layer(wide[:, ::2]), layer(np.ascontiguousarray(wide[:, ::2])))
    frozen = x.copy()
    frozen.flags.writeable = False
    assert np.array_equal(layer(frozen), layer(x))


@pytest.mark.parametrize("index", range(4))
def test_empty_batch_gives_empty_output_and_leaves_grads(index):
    layer = make_layers()[index]
    y = layer(np.zeros((0, 3), dtype=np.float32))
    width = 2 if index < 2 else 3
    assert y.shape == (0, width) and y.dtype == np.float32, (y.shape, y.dtype)
    dx = layer.backward(np.zeros((0, width), dtype=np.float32))
    assert dx.shape == (0, 3), dx.shape
    for name, p in layer.named_parameters():
        assert not p.grad.any(), f"{name}.grad changed by an empty batch"


def test_nan_and_inf_propagate():
    layer = lm.Linear(2, 2)
    y = layer(np.array([[np.nan, 1.0], [np.inf, 0.0]]))
    assert np.isnan(y[0]).all(), y
    assert not np.isfinite(y[1]).any(), y


@pytest.mark.parametrize("index", range(4))
def test_backward_before_forward_is_a_runtime_error(index):
    layer = make_layers()[index]
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        layer.backward(np.ones((1, 2)))


@pytest.mark.parametrize("index", range(4))
def test_backward_checks_gradient_shape(index):
    layer = make_layers()[index]
    y = layer(np.ones((4, 3)))
    with pytest.raises(ValueError, match=re.escape(f"gradient of shape {y.shape}") + r".*\(4, 7\)"):
        layer.backward(np.ones((4, 7)))
    with pytest.raises(TypeError, match="dtype bool"):
        layer.backward(np.ones(y.shape, dtype=bool))


# ------------------------------------------------------------------------------------------------
# state_dict


def test_state_dict_uses_pytorch_names_and_shapes_and_returns_copies():
    layer = lm.Linear(4, 3)
    sd = layer.state_dict()
    assert list(sd) == ["weight", "bias"]
    assert sd["weight"].shape == (3, 4) and sd["bias"].shape == (3,)
    sd["weight"][:] = 0
    assert layer.weight.data.any(), "state_dict must return copies"
    assert list(lm.Dense(3, input_shape=(4,), use_bias=False).state_dict()) == ["weight"]


def test_load_state_dict_copies_into_existing_arrays(rng):
    layer = lm.Linear(4, 3)
    arrays = (layer.weight.data, layer.bias.data)
    new = {"weight": rng.standard_normal((3, 4)), "bias": rng.standard_normal(3).tolist()}
    result = layer.load_state_dict(new)
    assert layer.weight.data is arrays[0] and layer.bias.data is arrays[1], "parameters were rebound"
    assert layer.weight.dtype == np.float32
    assert np.array_equal(layer.weight.data, new["weight"].astype(np.float32))
    assert np.array_equal(layer.bias.data, np.asarray(new["bias"], dtype=np.float32))
    assert result.missing_keys == [] and result.unexpected_keys == []


@pytest.mark.parametrize(
    "change, exc, pattern",
    [
        (lambda d: d.pop("bias"), KeyError, r"missing keys \['bias'\]"),
        (lambda d: d.update(extra=np.ones(1)), KeyError, r"unexpected keys \['extra'\]"),
        (lambda d: d.update(weight=np.ones((4, 3))), ValueError, r"'weight'.*\(4, 3\).*\(3, 4\)"),
        (lambda d: d.update(bias=np.ones((3, 1))), ValueError, r"'bias'.*\(3, 1\).*\(3,\)"),
        (lambda d: d.update(bias=np.array(["a", "b", "c"])), TypeError, "dtype"),
    ],
    ids=["missing", "unexpected", "weight-shape", "bias-shape", "str"],
)
def test_load_state_dict_errors_leave_the_layer_untouched(change, exc, pattern):
    layer = lm.Linear(4, 3)
    before = {k: v.copy() for k, v in layer.state_dict().items()}
    bad = {"weight": np.zeros((3, 4)), "bias": np.zeros(3)}
    change(bad)
    with pytest.raises(exc, match=pattern):
        layer.load_state_dict(bad)
    for k, v in layer.state_dict().items():
        assert np.array_equal(v, before[k]), f"{k} changed by a failed load"


def test_load_state_dict_non_strict_reports_keys():
    layer = lm.Linear(2, 2)
    result = layer.load_state_dict({"weight": np.eye(2), "other": np.ones(1)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["other"]
    assert np.array_equal(layer.weight.data, np.eye(2))


def test_load_state_dict_builds_a_lazy_dense():
    layer = lm.Dense(2, activation="relu")
    layer.load_state_dict({"weight": np.ones((2, 5)), "bias": np.zeros(2)})
    assert layer.built and layer.weight.shape == (2, 5)
    assert np.array_equal(layer(np.ones((1, 5))), [[5.0, 5.0]])
    with pytest.raises(ValueError, match=r"\(3, 5\).*\(2, in_features\)"):
        lm.Dense(2).load_state_dict({"weight": np.ones((3, 5)), "bias": np.zeros(2)})


def test_train_eval_flags():
    layer = lm.Linear(2, 2)
    assert layer.training
    assert layer.eval() is layer and not layer.training
    assert layer.train() is layer and layer.training


# ------------------------------------------------------------------------------------------------
# layer_from_config


@pytest.mark.parametrize(
    "cfg, exc, pattern",
    [
        ({"class": "os.system"}, ValueError, "unknown layer class 'os.system'"),
        ({"class": "Parameter"}, ValueError, "unknown layer class"),
        ({"units": 3}, ValueError, "unknown layer class None"),
        ({"class": "Linear", "in_features": 2, "out_features": 2, "extra": 1}, ValueError, r"unknown keys \['extra'\]"),
        ({"class": "Dense", "units": -4}, ValueError, "units"),
        ("Linear", TypeError, "mapping"),
    ],
)
def test_layer_from_config_builds_only_known_classes(cfg, exc, pattern):
    with pytest.raises(exc, match=pattern):
        layer_from_config(cfg)
