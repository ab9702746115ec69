"""The native execution plan (one C++ call per training step) against the layer-by-layer Python path.

Both run the same kernels in the same order, so for the same thread count they must agree bitwise:
losses, outputs, every parameter and every optimizer buffer, step after step.
"""

import copy
import tracemalloc

import numpy as np
import pytest

import lamina as lm
from lamina import _plan


def keras_softmax(dtype):
    return lm.Sequential([
        lm.Dense(6, input_shape=(8,), activation="relu", dtype=dtype),
        lm.Dense(6, activation="relu", dtype=dtype),
        lm.Dense(4, activation="softmax", dtype=dtype),
    ])


def torch_style(dtype):
    layers = [lm.Linear(20, 30, dtype=dtype), lm.ReLU()]
    for _ in range(3):
        layers += [lm.Linear(30, 30, dtype=dtype), lm.Tanh()]
    return lm.Sequential(*layers, lm.Linear(30, 5, dtype=dtype))


def sigmoid_net(dtype):
    return lm.Sequential(lm.Linear(7, 9, dtype=dtype), lm.Sigmoid(), lm.Linear(9, 3, dtype=dtype),
                         lm.Sigmoid())


def no_bias_regression(dtype):
    return lm.Sequential(lm.Linear(5, 16, bias=False, dtype=dtype), lm.ReLU(), lm.Linear(16, 1, dtype=dtype))


# (model factory, loss, target kind, input width, output width)
CASES = {
    "keras softmax + named cross-entropy": (keras_softmax, "sparse_categorical_crossentropy", "labels", 8, 4),
    "keras softmax + one-hot cross-entropy": (keras_softmax, "categorical_crossentropy", "onehot", 8, 4),
    "torch style + CrossEntropyLoss": (torch_style, lm.CrossEntropyLoss, "labels", 20, 5),
    "sigmoid outputs + named binary cross-entropy": (sigmoid_net, "binary_crossentropy", "binary", 7, 3),
    "logits + BCEWithLogitsLoss": (torch_style, lm.BCEWithLogitsLoss, "binary", 20, 5),
    "regression without bias + MSELoss": (no_bias_regression, lm.MSELoss, "regression", 5, 1),
}

OPTIMIZERS = {
    "sgd": lambda params: lm.SGD(params, lr=0.05),
    "sgd momentum nesterov decay": lambda params: lm.SGD(params, lr=0.05, momentum=0.9, nesterov=True,
                                                          weight_decay=1e-3),
    "adam": lambda params: lm.Adam(params, lr=0.01, weight_decay=1e-4),
}


def make(case, optimizer, dtype, seed=0):
    factory, loss, _, _, _ = CASES[case]
    lm.manual_seed(seed)
    model = factory(dtype)
    model.compile(optimizer=OPTIMIZERS[optimizer](model.parameters()),
                  loss=loss if isinstance(loss, str) else loss())
    return model


def batch(case, n, dtype, rng):
    _, _, kind, n_in, n_out = CASES[case]
    x = rng.standard_normal((n, n_in)).astype(dtype)
    if kind == "labels":
        y = rng.integers(0, n_out, n)
    elif kind == "onehot":
        y = np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, n)]
    elif kind == "binary":
        y = (rng.random((n, n_out)) < 0.5).astype(dtype)
    else:
        y = rng.standard_normal((n, n_out)).astype(dtype)
    return x, y


@pytest.fixture
def layer_by_layer():
    """Runs the body with the fused path switched off."""
    def run(fn):
        _plan.set_enabled(False)
        try:
            return fn()
        finally:
            _plan.set_enabled(True)
    return run


def train_both_and_compare(fused, python, batches, layer_by_layer, where):
    """Train `fused` on the native plan and `python` layer by layer on the same (x, y) batches,
    drawing the same dropout masks, and assert the same losses, outputs and state after every step;
    frozen parameters must not move, and `predict` of the last x must agree too."""
    params = dict(fused.named_parameters())
    frozen = {k: v.copy() for k, v in fused.state_dict().items() if k in params and not params[k].requires_grad}
    lm.manual_seed(7)  # the dropout stream: both models draw from it in turn, from the same point
    for step, (x, y) in enumerate(batches):
        _, start = lm._random.dropout_position()
        loss_f, out_f = lm.training.train_step(fused, x, y, return_output=True)
        lm._random._dropout_counter = start  # rewind: the layer-by-layer step draws the same masks
        loss_p, out_p = layer_by_layer(lambda: lm.training.train_step(python, x, y, return_output=True))
        assert loss_f == loss_p, f"{where} step {step}: loss {loss_f!r} != {loss_p!r}"
        assert np.array_equal(out_f, out_p), f"{where} step {step}: outputs differ"
        assert_same_state(fused, python, f"{where} step {step}")
    for key, value in frozen.items():
        assert np.array_equal(fused.state_dict()[key], value), f"{where}: frozen {key} changed"
    assert np.array_equal(fused.predict(x), layer_by_layer(lambda: python.predict(x))), f"{where}: predict differs"


def assert_same_training_on_one_and_two_threads(train, where):
    """`train()` builds and trains a model (seeded inside) and returns (losses, state_dict); run it
    on 1 and 2 threads and assert bitwise the same results."""
    results = []
    for n in (1, 2):
        before = lm.get_num_threads()
        lm.set_num_threads(n)
        try:
            results.append(train())
        finally:
            lm.set_num_threads(before)
    assert results[0][0] == results[1][0], f"{where}: losses differ between 1 and 2 threads"
    for key in results[0][1]:
        assert np.array_equal(results[0][1][key], results[1][1][key]), f"{where}: {key} differs between 1 and 2 threads"


def assert_same_state(fused, python, where):
    for (name, p), (_, q) in zip(fused.named_parameters(), python.named_parameters()):
        assert np.array_equal(p.data, q.data), f"{where}: parameter {name} differs (max {np.abs(p.data - q.data).max()})"
    for (name, p), (_, q) in zip(fused.named_buffers(), python.named_buffers()):
        assert np.array_equal(p, q), f"{where}: buffer {name} differs"
    a, b = fused.optimizer.state_dict(), python.optimizer.state_dict()
    for key in a:
        assert np.array_equal(a[key], b[key]), f"{where}: optimizer state {key} differs"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_train_step_equals_layer_by_layer_bitwise(case, optimizer, dtype, threads, layer_by_layer):
    fused, python = make(case, optimizer, dtype), make(case, optimizer, dtype)
    assert _plan.cached(fused, fused.loss, fused.optimizer) is not None, f"{case}: no native plan"
    rng = np.random.default_rng(1)
    for step, n in enumerate([32, 32, 7, 1, 32]):  # batch size changes resize the workspace
        x, y = batch(case, n, dtype, rng)
        loss_f, out_f = lm.training.train_step(fused, x, y, return_output=True)
        loss_p, out_p = layer_by_layer(lambda: lm.training.train_step(python, x, y, return_output=True))
        assert loss_f == loss_p, f"{case} step {step}: loss {loss_f!r} != {loss_p!r}"
        assert np.array_equal(out_f, out_p), f"{case} step {step}: outputs differ"
        assert_same_state(fused, python, f"{case} step {step}")
    x, _ = batch(case, 9, dtype, rng)
    assert np.array_equal(fused.predict(x), layer_by_layer(lambda: python.predict(x)))


def test_fit_uses_the_fused_path_and_matches_layer_by_layer(layer_by_layer):
    case = "keras softmax + named cross-entropy"
    rng = np.random.default_rng(2)
    x, y = batch(case, 200, np.float32, rng)
    fused, python = make(case, "sgd momentum nesterov decay", np.float32), make(case, "sgd momentum nesterov decay", np.float32)
    calls = []
    original = _plan.NativePlan.train_step
    _plan.NativePlan.train_step = lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    try:
        h1 = fused.fit(x, y, epochs=3, batch_size=32, verbose=0, seed=5)
    finally:
        _plan.NativePlan.train_step = original
    h2 = layer_by_layer(lambda: python.fit(x, y, epochs=3, batch_size=32, verbose=0, seed=5))
    assert len(calls) == 3 * 7, "fit did not run its steps through the native plan"
    assert h1.history == h2.history
    assert_same_state(fused, python, "after fit")


def test_plan_follows_parameter_rebinding_and_in_place_loads():
    model = make("torch style + CrossEntropyLoss", "sgd", np.float32)
    x = np.random.default_rng(3).standard_normal((4, 20)).astype(np.float32)
    before = model.predict(x)
    # load_state_dict copies into the existing arrays: the plan sees the new values.
    state = {k: v * 0 for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    assert np.array_equal(model.predict(x), np.zeros_like(before))
    # Rebinding an array makes the plan rebuild on the new one.
    model[0].bias.data = np.ones_like(model[0].bias.data)
    model[-1].bias.data = np.full_like(model[-1].bias.data, 2.0)
    assert np.array_equal(model.predict(x), np.full_like(before, 2.0))


def test_training_step_sees_every_change_to_the_model(layer_by_layer, monkeypatch):
    # The step's fast path trusts a plan until the change count moves (_changes.py): after each
    # change below, the fused model must train exactly like its layer-by-layer twin.
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((8, 4)).astype(np.float32), rng.integers(0, 3, 8)

    def build():
        lm.manual_seed(1)
        model = lm.Sequential(lm.Linear(4, 3))
        return model.compile(optimizer=lm.SGD(model.parameters(), lr=0.1), loss=lm.CrossEntropyLoss())

    changes = {
        "none": lambda m: None,
        "weight rebound": lambda m: setattr(m[0].weight, "data", np.full((3, 4), 0.25, np.float32)),
        "gradient rebound": lambda m: setattr(m[0].bias, "grad", np.zeros(3, np.float32)),
        "compiled again": lambda m: m.compile(optimizer=lm.SGD(m.parameters(), lr=0.5, momentum=0.9),
                                              loss=lm.CrossEntropyLoss()),
        "layer appended": lambda m: m.append(lm.ReLU()),
    }

    def run(model):  # one step after each change; the fused path is switched only between runs
        losses, params = [], []
        for change in changes.values():
            change(model)
            losses.append(lm.training.train_step(model, x, y))
            params.append([p.data.copy() for p in model.parameters()])
        return losses, params

    fused = build()
    (losses_f, params_f), (losses_p, params_p) = run(fused), layer_by_layer(lambda: run(build()))
    for i, name in enumerate(changes):
        assert losses_f[i] == losses_p[i], f"after '{name}': loss {losses_f[i]!r} != {losses_p[i]!r}"
        for a, b in zip(params_f[i], params_p[i]):
            assert np.array_equal(a, b), f"after '{name}': parameters differ"
    # Switching the fused path off reaches a model whose plan is already built.
    calls = []
    backward = lm.Sequential.backward
    monkeypatch.setattr(lm.Sequential, "backward", lambda self, dy: calls.append(1) or backward(self, dy))
    lm.training.train_step(fused, x, y)
    assert calls == [], "the fused step ran the Python backward"
    layer_by_layer(lambda: lm.training.train_step(fused, x, y))
    assert calls == [1], "with the fused path off, the step did not run layer by layer"


def test_a_trained_model_deep_copies_and_the_copy_trains_on_its_own_arrays():
    model = make("keras softmax + named cross-entropy", "sgd momentum nesterov decay", np.float32)
    x, y = batch("keras softmax + named cross-entropy", 16, np.float32, np.random.default_rng(6))
    model.train_step(x, y)  # the model now holds a native plan
    twin = copy.deepcopy(model)
    before = [p.data.copy() for p in model.parameters()]
    loss_twin = twin.train_step(x, y)
    assert all(np.array_equal(p.data, b) for p, b in zip(model.parameters(), before)), \
        "training the copy changed the original"
    assert loss_twin == model.train_step(x, y)  # same state, same step
    assert_same_state(twin, model, "copy and original after one more step each")


# Each assignment must reach the native plan, which keeps a copy of the settings between steps.
SETTING_CHANGES = {
    "sgd momentum nesterov decay": [("lr", 0.01), ("momentum", 0.5), ("weight_decay", 0.0), ("nesterov", False)],
    "adam": [("lr", 0.1), ("beta1", 0.5), ("beta2", 0.9), ("eps", 1e-3), ("weight_decay", 0.01), ("lr", 0.0)],
}


@pytest.mark.parametrize("optimizer", sorted(SETTING_CHANGES))
def test_setting_changes_between_steps_are_honoured(optimizer, layer_by_layer):
    case = "torch style + CrossEntropyLoss"
    fused, python = make(case, optimizer, np.float32), make(case, optimizer, np.float32)
    rng = np.random.default_rng(4)
    x, y = batch(case, 16, np.float32, rng)
    fused.train_step(x, y)
    layer_by_layer(lambda: python.train_step(x, y))
    for name, value in SETTING_CHANGES[optimizer]:
        setattr(fused.optimizer, name, value)
        setattr(python.optimizer, name, value)
        x, y = batch(case, 16, np.float32, rng)
        fused.train_step(x, y)
        layer_by_layer(lambda: python.train_step(x, y))
        assert_same_state(fused, python, f"after {name} = {value}")
    # load_state_dict assigns the settings too.
    state = python.optimizer.state_dict()
    state["lr"] = 0.2
    fused.optimizer.load_state_dict(state)
    python.optimizer.load_state_dict(state)
    fused.train_step(x, y)
    layer_by_layer(lambda: python.train_step(x, y))
    assert_same_state(fused, python, "after load_state_dict")


def test_bad_targets_raise_and_leave_the_model_untouched():
    model = make("keras softmax + named cross-entropy", "adam", np.float32)
    x = np.ones((3, 8), np.float32)
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match="out of range"):
        model.train_step(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError):
        model.train_step(x, np.array([0, 1]))
    with pytest.raises(ValueError):
        model.train_step(np.ones((3, 7), np.float32), np.array([0, 1, 2]))
    assert model.optimizer.step_count == 0
    for p, b in zip(model.parameters(), before):
        assert np.array_equal(p.data, b)


def test_arrays_a_step_writes_must_not_share_memory(layer_by_layer):
    # A gradient bound to its own parameter's array: no plan, and the step raises as the
    # layer-by-layer path does (the plan would have overwritten the weights mid-step).
    model = make("torch style + CrossEntropyLoss", "adam", np.float32)
    x, y = np.ones((4, 20), np.float32), np.array([0, 1, 2, 3])
    model.train_step(x, y)
    model[0].weight.grad = model[0].weight.data
    assert _plan.lower(model, model.loss, model.optimizer) is None
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match="shares memory"):
        model.train_step(x, y)
    with pytest.raises(ValueError, match="shares memory"):
        layer_by_layer(lambda: model.train_step(x, y))
    for p, b in zip(model.parameters(), before):
        assert np.array_equal(p.data, b), "a rejected step changed the parameters"
    # An input that is an array the step writes (here a gradient) is rejected before any write.
    model[0].weight.grad = np.zeros_like(model[0].weight.data)
    model.train_step(x, y)
    before = [p.data.copy() for p in model.parameters()]
    step_count = model.optimizer.step_count
    with pytest.raises(ValueError, match=r"input shares memory with plan step 0 \(dense\) weight_grad"):
        model.train_step(model[0].weight.grad[:4], y)
    assert model.optimizer.step_count == step_count
    for p, b in zip(model.parameters(), before):
        assert np.array_equal(p.data, b)


@pytest.mark.parametrize("layout", ["float64", "fortran", "every other row", "list"])
def test_inputs_that_need_converting_train_like_their_converted_copy(layout):
    """Arrays go straight to the native call; one it rejects is converted and tried again."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((12, 8)).astype(np.float32)
    y = rng.integers(0, 4, size=6 if layout == "every other row" else 12)
    given = {"float64": x.astype(np.float64), "fortran": np.asfortranarray(x),
             "every other row": x[::2], "list": x.tolist()}[layout]
    converted = np.ascontiguousarray(given, dtype=np.float32)
    a = make("keras softmax + named cross-entropy", "sgd", np.float32)
    b = make("keras softmax + named cross-entropy", "sgd", np.float32)
    assert a.train_step(given, y) == b.train_step(converted, y)
    assert_same_state(a, b, layout)


def _bad_predict_input(kind):
    x = np.ones((2, 20), np.float32)
    if kind == "NaN":
        x[1, 3] = np.nan
    elif kind == "Inf":
        x[0, 0] = -np.inf
    elif kind == "wrong width":
        x = np.ones((2, 19), np.float32)
    elif kind == "1-D":
        x = np.ones(20, np.float32)
    elif kind == "no samples":
        x = np.ones((0, 20), np.float32)
    elif kind == "strings":
        x = np.array([["a"] * 20])
    return x


@pytest.mark.parametrize("kind", ["NaN", "Inf", "wrong width", "1-D", "no samples", "strings"])
def test_predict_rejects_bad_input_like_the_python_path(kind, layer_by_layer):
    model = make("torch style + CrossEntropyLoss", "sgd", np.float32)
    x = _bad_predict_input(kind)
    with pytest.raises((TypeError, ValueError)) as fused:
        model.predict(x)
    with pytest.raises((TypeError, ValueError)) as python:
        layer_by_layer(lambda: model.predict(x))
    assert (type(fused.value), str(fused.value)) == (type(python.value), str(python.value))


def test_unsupported_models_fall_back_to_python():
    class Custom(lm.CrossEntropyLoss):
        pass

    class Doubled(lm.ReLU):  # a user subclass that overrides forward computes what no step does
        def forward(self, x):
            return super().forward(x) * 2

    lm.manual_seed(0)
    model = lm.Sequential(lm.Linear(4, 3), Doubled(), lm.Linear(3, 2))
    model.compile(optimizer=lm.SGD(model.parameters(), lr=0.1), loss=lm.CrossEntropyLoss())
    assert _plan.lower(model, model.loss, model.optimizer) is None  # a layer without a step
    # (two activations in a row had no native form before the core issue; now the second is a step)
    twice = lm.Sequential(lm.Linear(4, 3), lm.ReLU(), lm.ReLU(), lm.Linear(3, 2))
    twice.compile(optimizer=lm.SGD(twice.parameters(), lr=0.1), loss=lm.CrossEntropyLoss())
    assert _plan.lower(twice, twice.loss, twice.optimizer) is not None
    other = lm.Sequential(lm.Linear(4, 2))
    other.compile(optimizer=lm.SGD(other.parameters(), lr=0.1), loss=Custom())
    assert _plan.lower(other, other.loss, other.optimizer) is None  # unknown loss class
    loss = other.train_step(np.ones((2, 4), np.float32), np.array([0, 1]))
    assert np.isfinite(loss)


def test_steady_state_allocates_no_python_memory():
    model = make("keras softmax + named cross-entropy", "sgd momentum nesterov decay", np.float32)
    rng = np.random.default_rng(6)
    x, y = batch("keras softmax + named cross-entropy", 32, np.float32, rng)
    model.train_step(x, y)
    tracemalloc.start()
    try:
        model.train_step(x, y)
        first, _ = tracemalloc.get_traced_memory()
        for _ in range(1000):
            model.train_step(x, y)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - first < 4096, f"Python-visible memory grew by {after - first} bytes over 1000 steps"
