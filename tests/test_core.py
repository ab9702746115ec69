"""The core every layer family builds on: the module protocol (registration, nested names, buffers,
modes, trainable / requires_grad), N-D shapes, Flatten, the Keras container methods, the registry
behind save/load, and the two dialect namespaces.
"""
import io
import math

import numpy as np
import pytest

import lamina as lm
from lamina import _registry, keras, nn, reference


class Scaler(lm.Module):
    """A user module with a parameter, a buffer and a child, as PyTorch code writes them."""

    def __init__(self, n):
        super().__init__()
        self.fc = lm.Linear(n, n)
        self.scale = lm.Parameter(np.ones(n, np.float32))
        self.register_buffer("running_mean", np.zeros(n, np.float32))

    def forward(self, x):
        self._x = x
        return self.fc(x) * self.scale.data

    def backward(self, dy):
        self.scale.grad += (dy * self.fc._y).sum(axis=0)
        return self.fc.backward(dy * self.scale.data)


_registry.register(Scaler)  # a user class registered to round-trip through save/load
Scaler._CONFIG_KEYS = ("n",)
Scaler.get_config = lambda self: {"class": "Scaler", "n": self.fc.in_features}


# ---------------------------------------------------------------------------------------------
# Module protocol


def test_children_parameters_and_buffers_register_on_assignment():
    outer = lm.Sequential(Scaler(3), lm.ReLU())
    # PyTorch's order: a module's own parameters, then its children's.
    assert [n for n, _ in outer.named_parameters()] == ["0.scale", "0.fc.weight", "0.fc.bias"]
    assert [n for n, _ in outer.named_buffers()] == ["0.running_mean"]
    assert list(outer.state_dict()) == ["0.scale", "0.running_mean", "0.fc.weight", "0.fc.bias"]
    assert [type(m).__name__ for m in outer.modules()] == ["Sequential", "Scaler", "Linear", "ReLU"]
    assert outer.buffers()[0] is outer[0].running_mean


def test_state_dict_round_trip_includes_buffers():
    lm.manual_seed(0)
    a, b = Scaler(3), Scaler(3)
    a.running_mean[:] = [1.0, 2.0, 3.0]
    view = b.running_mean
    b.load_state_dict(a.state_dict())
    for key, value in a.state_dict().items():
        assert np.array_equal(b.state_dict()[key], value), key
    assert b.running_mean is view and np.array_equal(view, [1, 2, 3]), "a buffer is loaded in place"


def test_buffer_of_the_wrong_shape_names_the_layer_and_loads_nothing():
    lm.manual_seed(0)
    model = Scaler(3)
    state = model.state_dict()
    before = {k: v.copy() for k, v in state.items()}
    state = {k: v + 1 for k, v in state.items()}
    state["running_mean"] = np.zeros(4, np.float32)
    with pytest.raises(ValueError) as info:
        model.load_state_dict(state)
    for part in ("running_mean", "(4,)", "(3,)", "buffer of Scaler"):
        assert part in str(info.value), f"{part!r} missing from {info.value}"
    for key, value in model.state_dict().items():
        assert np.array_equal(value, before[key]), f"{key} was written before the error"


def test_buffers_round_trip_through_save_and_load(tmp_path):
    lm.manual_seed(1)
    model = lm.Sequential(Scaler(4), lm.Linear(4, 2))
    model[0].running_mean[:] = np.arange(4)
    lm.save(model, tmp_path / "m.npz")
    loaded = lm.load(tmp_path / "m.npz")
    assert list(loaded.state_dict()) == list(model.state_dict())
    for key, value in model.state_dict().items():
        assert np.array_equal(loaded.state_dict()[key], value), key


def test_summary_counts_buffers_and_frozen_parameters_as_non_trainable():
    model = lm.Sequential(Scaler(3), lm.Linear(3, 2))
    model[1].trainable = False
    text = model.summary()
    assert "Total params: 26" in text, text  # fc 12 + scale 3 + running_mean 3 + Linear(3, 2) 8
    assert "Trainable params: 15" in text, text  # fc 12 + scale 3
    assert "Non-trainable params: 11" in text, text  # running_mean 3 + Linear(3, 2) 8


# ---------------------------------------------------------------------------------------------
# Modes


class ModeProbe(lm.Module):
    """Records the mode of every forward pass (identity otherwise)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(self.training)
        return x

    def backward(self, dy):
        return dy


def test_train_and_eval_reach_every_child():
    model = lm.Sequential(lm.Linear(2, 2), lm.Sequential(lm.ReLU(), lm.Dropout(0.1)))
    assert all(m.training for m in model.modules())
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_fit_trains_in_training_mode_and_predict_evaluate_run_in_inference_mode():
    probe = ModeProbe()
    model = lm.Sequential(lm.Linear(3, 2), probe)
    model.compile(optimizer=lm.SGD(model.parameters(), lr=0.1), loss=lm.CrossEntropyLoss())
    x, y = np.ones((8, 3), np.float32), np.zeros(8, np.int64)
    model.eval()
    model.train_step(x, y)
    assert probe.seen == [True] and not model.training, "train_step trains in training mode, then restores"
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert probe.seen[-1] is True
    probe.seen.clear()
    model.predict(x)
    model.evaluate(x, y)
    assert probe.seen == [False, False] and model.training, "inference mode for predict/evaluate, then restored"


# ---------------------------------------------------------------------------------------------
# Frozen parameters (Keras trainable, PyTorch requires_grad), in the layer-by-layer path


@pytest.mark.parametrize("how", ["keras trainable", "torch requires_grad"])
def test_frozen_parameters_do_not_change(how):
    lm.manual_seed(2)
    model = lm.Sequential(ModeProbe(), lm.Linear(4, 5), lm.ReLU(), lm.Linear(5, 3))  # the probe keeps it off the plan
    if how == "keras trainable":
        model[1].trainable = False
    else:
        model[1].weight.requires_grad = False
        model[1].bias.requires_grad = False
    frozen = {k: v.copy() for k, v in model.state_dict().items() if k.startswith("1.")}
    other = model[3].weight.data.copy()
    model.compile(optimizer=lm.Adam(model.parameters(), lr=0.1), loss=lm.CrossEntropyLoss())
    rng = np.random.default_rng(0)
    model.fit(rng.standard_normal((32, 4)).astype(np.float32), rng.integers(0, 3, 32), epochs=2, verbose=0)
    for key, value in frozen.items():
        assert np.array_equal(model.state_dict()[key], value), f"{key} changed although frozen ({how})"
        assert not getattr(model[1], key.split(".")[1]).grad.any(), f"{key}: a frozen gradient was accumulated"
    assert not np.array_equal(model[3].weight.data, other), "the trainable layer did not train"


def test_trainable_false_before_build_makes_lazy_weights_frozen():
    layer = lm.Dense(3)
    layer.trainable = False
    layer(np.ones((2, 4), np.float32))
    assert layer.built and not any(p.requires_grad for p in layer.parameters())
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 2


def test_trainable_and_requires_grad_reject_non_bools():
    with pytest.raises(TypeError, match="trainable"):
        lm.Linear(2, 2).trainable = "no"
    with pytest.raises(TypeError, match="requires_grad"):
        lm.Linear(2, 2).weight.requires_grad = 0


# ---------------------------------------------------------------------------------------------
# N-D shapes: dense layers act on the last axis


@pytest.mark.parametrize("shape", [(2, 3, 4), (1, 2, 5, 4), (3, 1, 4)])
@pytest.mark.parametrize("layer", ["Linear", "Dense relu", "Dense softmax"])
def test_dense_layers_take_nd_input_on_the_last_axis(shape, layer, close):
    lm.manual_seed(3)
    m = {"Linear": lambda: lm.Linear(4, 3), "Dense relu": lambda: lm.Dense(3, activation="relu"),
         "Dense softmax": lambda: lm.Dense(3, activation="softmax")}[layer]()
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    y = m(x)
    assert y.shape == (*shape[:-1], 3)
    rows = x.reshape(-1, 4)
    z = reference.linear(rows, m.weight.data, m.bias.data)
    if layer == "Dense relu":
        z = reference.relu(z)
    elif layer == "Dense softmax":
        z = reference.softmax(z)
    close(y, z.reshape(y.shape), np.float32, k=4, what=f"{layer} forward on {shape}")
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = m.backward(dy)
    assert dx.shape == x.shape
    dz = dy.reshape(-1, 3).astype(np.float64)
    if layer == "Dense relu":
        dz = reference.relu_backward(dz, z)
    elif layer == "Dense softmax":
        dz = reference.softmax_backward(dz, z)
    rdx, rdW, rdb = reference.linear_backward(dz, rows, m.weight.data)
    close(dx, rdx.reshape(x.shape), np.float32, k=3, what="dx")
    close(m.weight.grad, rdW, np.float32, k=rows.shape[0], what="dW")
    close(m.bias.grad, rdb, np.float32, k=rows.shape[0], what="db")


def test_sequential_propagates_nd_shapes_and_builds_from_an_input():
    model = lm.Sequential([lm.Input(shape=(4, 5)), lm.Flatten(), lm.Dense(6, activation="relu"), lm.Dense(2)])
    assert model.built and model[1].in_features == 20
    assert model.output_shape((None, 4, 5)) == (None, 2)
    assert model(np.ones((3, 4, 5), np.float32)).shape == (3, 2)
    assert "(None, 20)" in model.summary()


# ---------------------------------------------------------------------------------------------
# Flatten


@pytest.mark.parametrize("start, end, expected", [
    (1, -1, (2, 60)), (0, -1, (120,)), (2, 3, (2, 3, 20)), (-2, -1, (2, 3, 20)), (1, 1, (2, 3, 4, 5)),
    (0, 1, (6, 4, 5)),
])
def test_flatten_matches_reshape_and_backward_restores_the_shape(start, end, expected):
    x = np.arange(120, dtype=np.float64).reshape(2, 3, 4, 5)
    f = lm.Flatten(start, end)
    y = f(x)
    assert y.shape == expected and np.array_equal(y.ravel(), x.ravel()), "Flatten keeps row-major order"
    assert np.shares_memory(y, x), "Flatten of a contiguous array is a view"
    dy = np.random.default_rng(0).standard_normal(expected)
    dx = f.backward(dy)
    assert dx.shape == x.shape and np.array_equal(dx.ravel(), dy.ravel())


@pytest.mark.parametrize("start, end", [(4, -1), (-5, -1), (1, 7), (3, 1)])
def test_flatten_out_of_range_names_the_layer(start, end):
    with pytest.raises(ValueError) as info:
        lm.Flatten(start, end)(np.zeros((2, 3, 4, 5)))
    assert "Flatten(" in str(info.value) and "4-D" in str(info.value), str(info.value)


def test_flatten_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    for start, end in [(1, -1), (2, 3), (0, 2)]:
        expected = torch.nn.Flatten(start, end)(torch.from_numpy(x)).numpy()
        assert np.array_equal(nn.Flatten(start, end)(x), expected)


def test_keras_flatten_is_h_w_c_order_of_channels_last_data():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)  # (N, H, W, C)
    y = keras.layers.Flatten()(x)
    assert y.shape == (2, 60) and np.array_equal(y[0, :5], x[0, 0, 0, :]), "C varies fastest"


# ---------------------------------------------------------------------------------------------
# Keras's container methods and the dialects


def test_keras_add_pop_layers_get_layer_count_params_and_names():
    model = keras.Sequential(name="net")
    model.add(keras.Input(shape=(8,)))
    model.add(keras.layers.Dense(6, activation="relu", name="hidden"))
    model.add(keras.layers.Dense(4))
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dense"]
    assert model.count_params() == 8 * 6 + 6 + 6 * 4 + 4
    assert model.get_layer("hidden") is model.layers[0] and model.get_layer(index=1) is model.layers[1]
    assert model.layers[1].name.startswith("dense")
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        model.get_layer("nope")
    popped = model.pop()
    assert popped.units == 4 and len(model) == 1 and model.count_params() == 54
    lines = []
    assert model.summary(print_fn=lines.append) is None
    assert lines[0] == "Model: net" and any(line.startswith("hidden (Dense)") for line in lines), lines


def test_keras_summary_prints_and_lamina_summary_returns_text(capsys):
    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    assert model.summary() is None
    printed = capsys.readouterr().out
    assert "Total params: 8" in printed and "Trainable params: 8" in printed
    assert "Total params: 8" in lm.Sequential(lm.Linear(3, 2)).summary()


def test_names_round_trip_through_save_and_load(tmp_path):
    model = keras.Sequential([keras.layers.Dense(3, input_shape=(2,), name="first"), keras.layers.Dropout(0.25),
                              keras.layers.Flatten(), keras.layers.Dense(1)], name="tiny")
    lm.save(model, tmp_path / "k.npz")
    loaded = lm.load(tmp_path / "k.npz")
    assert loaded.get_layer("first").units == 3 and loaded.name == "tiny"
    assert type(loaded[1]).__name__ == "Dropout" and loaded[1].rate == 0.25
    assert loaded.get_config() == model.get_config()


@pytest.mark.parametrize("layer", [
    lm.Flatten(2, 3), lm.Dropout(0.3), lm.LeakyReLU(0.2), lm.GELU("tanh"), lm.LogSoftmax(), lm.Activation("relu"),
    keras.layers.LeakyReLU(), keras.layers.Softmax(),
])
def test_every_new_layer_rebuilds_from_its_config(layer):
    rebuilt = _registry.layer_from_config(layer.get_config())
    assert type(rebuilt) is type(layer) and repr(rebuilt) == repr(layer)


def test_dialect_namespaces_hold_each_dialects_names():
    assert nn.Linear is lm.Linear and nn.Module is lm.Module and nn.CrossEntropyLoss is lm.CrossEntropyLoss
    assert nn.Flatten is lm.Flatten and nn.Dropout is lm.Dropout and nn.LogSoftmax is lm.LogSoftmax
    assert keras.layers.Dense is lm.Dense and keras.layers.Activation is lm.Activation
    assert lm.keras is keras and lm.nn is nn
    assert keras.layers.Dropout(0.5).rate == 0.5 and keras.layers.LeakyReLU().negative_slope == 0.3
    assert nn.LeakyReLU().negative_slope == 0.01


def test_keras_optimizers_are_built_without_parameters_and_bound_by_compile():
    model = keras.Sequential([keras.layers.Dense(3, activation="softmax")])  # lazy: no parameters yet
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy")
    x, y = np.ones((4, 5), np.float32), np.array([0, 1, 2, 0])
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert type(model.optimizer) is lm.Adam and model.optimizer.lr == 0.01 and model.optimizer.eps == 1e-7
    with pytest.raises(ValueError, match="lr"):
        keras.optimizers.SGD(learning_rate=-1.0)


def test_a_hostile_config_is_refused_before_it_allocates(tmp_path):
    # A Flatten of a huge declared input in front of a Dense: the declared parameter count is read
    # from the config through each class's config_parameters, before anything is built.
    model = lm.Sequential([lm.Input(shape=(2, 2)), lm.Flatten(), lm.Dense(3)])
    lm.save(model, tmp_path / "m.npz")
    declared = _registry.layer_class("Sequential").config_parameters(
        {"class": "Sequential", "input_shape": [10**4, 10**4], "layers": [{"class": "Flatten"}, {"class": "Dense", "units": 10**3}]},
        None)[0]
    assert declared == 10**8 * 10**3 + 10**3
    assert math.isfinite(declared)


def test_summary_print_fn_receives_every_line():
    out = io.StringIO()
    lm.Sequential(lm.Linear(2, 2)).summary(print_fn=lambda line: out.write(line + "\n"))
    assert out.getvalue().splitlines()[0] == "Model: Sequential"


def test_keras_weights_of_a_model_with_buffers_round_trip():
    # get_weights lists parameters only, so set_weights must count parameters only (not buffers).
    lm.manual_seed(4)
    a, b = lm.Sequential(Scaler(3), lm.Linear(3, 2)), lm.Sequential(Scaler(3), lm.Linear(3, 2))
    weights = a.get_weights()
    assert len(weights) == 5
    b.set_weights(weights)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)
