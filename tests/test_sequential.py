"""Sequential: the two seed models (counts and summary), forward and backward of whole chains against
an MLP written out in NumPy float64, gradient accumulation, PyTorch state_dict keys and interop,
the Keras weight layout, lazy building, the container protocol, configs and bad input.
"""

import json
import re
import zlib

import numpy as np
import pytest

import lamina as lm

DTYPES = [np.float32, np.float64]


@pytest.fixture
def rng(request):
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


def keras_seed_model():
    return lm.Sequential([
        lm.Dense(units=6, input_shape=(8,), activation="relu"),
        lm.Dense(units=6, activation="relu"),
        lm.Dense(units=4, activation="softmax"),
    ])


def pytorch_seed_model():
    hidden = [m for _ in range(8) for m in (lm.Linear(30, 30), lm.ReLU())]
    return lm.Sequential(lm.Linear(784, 30), lm.ReLU(), *hidden, lm.Linear(30, 1))


# ------------------------------------------------------------------------------------------------
# An MLP written out by hand in float64, reading only the model's weights.

ACTS = {
    None: (lambda z: z, lambda dy, y: dy),
    "linear": (lambda z: z, lambda dy, y: dy),
    "relu": (lambda z: np.maximum(z, 0), lambda dy, y: dy * (y > 0)),
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda dy, y: dy * y * (1 - y)),
    "tanh": (np.tanh, lambda dy, y: dy * (1 - y**2)),
    "softmax": (
        lambda z: np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True),
        lambda dy, y: y * (dy - (dy * y).sum(1, keepdims=True)),
    ),
}
ACT_NAMES = {lm.ReLU: "relu", lm.Sigmoid: "sigmoid", lm.Tanh: "tanh", lm.Softmax: "softmax"}


def numpy_mlp(model, x, dy):
    """Returns (y, dx, {"i.weight": dW, "i.bias": db}) for `model` computed in float64 NumPy."""
    steps = []
    for i, layer in enumerate(model):
        if isinstance(layer, (lm.Linear, lm.Dense)):
            W = np.asarray(layer.weight.data, dtype=np.float64)
            b = None if layer.bias is None else np.asarray(layer.bias.data, dtype=np.float64)
            steps.append((i, W, b, getattr(layer, "activation", None)))
        else:
            steps.append((i, None, None, ACT_NAMES[type(layer)]))
    h = np.asarray(x, dtype=np.float64)
    saved = []
    for i, W, b, act in steps:
        inp = h
        if W is not None:
            h = h @ W.T + (0 if b is None else b)
        h = ACTS[act][0](h)
        saved.append((inp, h))
    y = h
    g = np.asarray(dy, dtype=np.float64)
    grads = {}
    for (i, W, b, act), (inp, out) in zip(reversed(steps), reversed(saved)):
        g = ACTS[act][1](g, out)
        if W is not None:
            grads[f"{i}.weight"] = g.T @ inp
            if b is not None:
                grads[f"{i}.bias"] = g.sum(axis=0)
            g = g @ W
    return y, g, grads


def all_activations_models(dtype):
    torch_style = lm.Sequential(
        lm.Linear(6, 8, dtype=dtype), lm.ReLU(), lm.Linear(8, 8, dtype=dtype), lm.Tanh(),
        lm.Linear(8, 5, dtype=dtype), lm.Sigmoid(), lm.Linear(5, 4, bias=False, dtype=dtype), lm.Softmax(),
    )
    keras_style = lm.Sequential([
        lm.Dense(8, input_shape=(6,), activation="relu", dtype=dtype),
        lm.Dense(8, activation="tanh", dtype=dtype),
        lm.Dense(5, activation="sigmoid", dtype=dtype),
        lm.Dense(4, activation="softmax", use_bias=False, dtype=dtype),
        lm.Dense(3, dtype=dtype),
    ])
    return {"pytorch": torch_style, "keras": keras_style}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("style", ["pytorch", "keras"])
def test_forward_backward_match_numpy_mlp(style, dtype, rng, close):
    model = all_activations_models(dtype)[style]
    for p in model.parameters():
        if p.data.ndim == 1:  # Keras biases start at zero: give them values so they are tested
            p.data[:] = rng.uniform(-0.5, 0.5, p.shape)
    x = rng.standard_normal((9, 6)).astype(dtype)
    y = model(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = model.backward(dy)
    y_ref, dx_ref, grads_ref = numpy_mlp(model, x, dy)
    # Depth of the longest chain of sums: every layer's fan-in forward and back, plus the batch.
    k = 2 * (6 + 8 + 8 + 5 + 4) + 9
    assert y.dtype == dtype and dx.dtype == dtype, (y.dtype, dx.dtype)
    close(y, y_ref, dtype, k, f"{style} output")
    close(dx, dx_ref, dtype, k, f"{style} dx")
    names = [n for n, _ in model.named_parameters()]
    assert sorted(names) == sorted(grads_ref), f"parameter names {names}, expected {sorted(grads_ref)}"
    for name, p in model.named_parameters():
        assert p.grad.dtype == dtype
        close(p.grad, grads_ref[name], dtype, k, f"{style} grad of {name}")


def test_gradients_accumulate_and_zero_grad(rng, close):
    model = all_activations_models(np.float64)["pytorch"]
    x1, x2 = rng.standard_normal((4, 6)), rng.standard_normal((3, 6))
    dy1, dy2 = rng.standard_normal((4, 4)), rng.standard_normal((3, 4))
    grad_arrays = [p.grad for p in model.parameters()]
    model(x1)
    model.backward(dy1)
    first = {n: p.grad.copy() for n, p in model.named_parameters()}
    model(x2)
    model.backward(dy2)
    _, _, second = numpy_mlp(model, x2, dy2)
    for name, p in model.named_parameters():
        close(p.grad, first[name] + second[name], np.float64, 40, f"accumulated grad of {name}")
    assert all(p.grad is g for p, g in zip(model.parameters(), grad_arrays)), "grad arrays were rebound"
    model.zero_grad()
    for name, p in model.named_parameters():
        assert not p.grad.any(), f"{name}.grad not zero after zero_grad"


# ------------------------------------------------------------------------------------------------
# The seed models


def test_seed_models_parameter_counts():
    keras = keras_seed_model()
    assert keras.num_parameters() == 124, keras.num_parameters()
    assert [layer.num_parameters() for layer in keras] == [54, 42, 28]
    torch_style = pytorch_seed_model()
    assert torch_style.num_parameters() == 31_021, torch_style.num_parameters()
    assert len(torch_style) == 19


def summary_rows(text):
    """The table rows between the two '=' rules, split on runs of 2+ spaces."""
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if set(line) == {"="}]
    assert len(rules) == 2, f"expected two '=' rules in:\n{text}"
    return [re.split(r"\s{2,}", line.strip()) for line in lines[rules[0] + 1:rules[1]]]


def test_keras_seed_summary():
    text = keras_seed_model().summary()
    assert text.splitlines()[0] == "Model: Sequential"
    assert re.search(r"Layer \(type\)\s+Output Shape\s+Param #", text), text
    assert summary_rows(text) == [
        ["0 (Dense)", "(None, 6)", "54"],
        ["1 (Dense)", "(None, 6)", "42"],
        ["2 (Dense)", "(None, 4)", "28"],
    ], text
    for line in ("Total params: 124", "Trainable params: 124", "Non-trainable params: 0"):
        assert line in text.splitlines(), f"{line!r} missing from:\n{text}"


def test_pytorch_seed_summary():
    text = pytorch_seed_model().summary()
    rows = summary_rows(text)
    expected = [["0 (Linear)", "(None, 30)", "23,550"], ["1 (ReLU)", "(None, 30)", "0"]]
    for i in range(1, 9):
        expected += [[f"{2 * i} (Linear)", "(None, 30)", "930"], [f"{2 * i + 1} (ReLU)", "(None, 30)", "0"]]
    expected.append(["18 (Linear)", "(None, 1)", "31"])
    assert rows == expected, text
    assert "Total params: 31,021" in text.splitlines(), text


def test_summary_of_a_lazy_model_marks_unbuilt_layers():
    text = lm.Sequential([lm.Dense(5, activation="relu"), lm.Dense(2)]).summary()
    assert summary_rows(text) == [["0 (Dense)", "(None, 5)", "0 (unbuilt)"],
                                  ["1 (Dense)", "(None, 2)", "0 (unbuilt)"]], text
    assert "Total params: 0" in text


def test_both_dialects_build_the_same_model():
    lm.manual_seed(3)
    a = lm.Sequential(lm.Linear(4, 3), lm.ReLU())
    lm.manual_seed(3)
    b = lm.Sequential([lm.Linear(4, 3), lm.ReLU()])
    assert repr(a) == repr(b) and a.get_config() == b.get_config()
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and np.array_equal(pa.data, pb.data)


# ------------------------------------------------------------------------------------------------
# state_dict, PyTorch conventions


def test_state_dict_keys_and_shapes_follow_pytorch():
    model = lm.Sequential(lm.Linear(784, 30), lm.ReLU(), lm.Linear(30, 10), lm.Softmax())
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes == {"0.weight": (30, 784), "0.bias": (30,), "2.weight": (10, 30), "2.bias": (10,)}, shapes
    assert list(shapes) == ["0.weight", "0.bias", "2.weight", "2.bias"], "order must follow the layers"
    keras = keras_seed_model()
    assert {k: v.shape for k, v in keras.state_dict().items()} == {
        "0.weight": (6, 8), "0.bias": (6,), "1.weight": (6, 6), "1.bias": (6,), "2.weight": (4, 6), "2.bias": (4,)}


def test_state_dict_round_trip_reproduces_outputs(rng):
    source, target = keras_seed_model(), keras_seed_model()
    x = rng.standard_normal((5, 8)).astype(np.float32)
    arrays = [p.data for p in target.parameters()]
    assert not np.array_equal(source(x), target(x))
    target.load_state_dict(source.state_dict())
    assert np.array_equal(source(x), target(x))
    assert all(p.data is a for p, a in zip(target.parameters(), arrays)), "load_state_dict rebound .data"


@pytest.mark.parametrize(
    "change, exc, pattern",
    [
        (lambda d: d.pop("2.bias"), KeyError, r"missing keys \['2.bias'\]"),
        (lambda d: d.update({"3.weight": np.ones((2, 2))}), KeyError, r"unexpected keys \['3.weight'\]"),
        (lambda d: d.update({"1.weight": np.ones((6, 5))}), ValueError, r"'1.weight'.*\(6, 5\).*\(6, 6\)"),
        (lambda d: d.update({"0.weight": np.ones((8, 6))}), ValueError, r"'0.weight'.*\(8, 6\).*\(6, 8\)"),
    ],
    ids=["missing", "unexpected", "wrong-shape", "transposed"],
)
def test_load_state_dict_rejects_mismatches_without_writing(change, exc, pattern):
    model = keras_seed_model()
    before = model.state_dict()
    bad = keras_seed_model().state_dict()
    change(bad)
    with pytest.raises(exc, match=pattern):
        model.load_state_dict(bad)
    for k, v in model.state_dict().items():
        assert np.array_equal(v, before[k]), f"{k} changed by a failed load"


def test_load_state_dict_builds_lazy_layers_and_checks_the_chain(rng):
    source = keras_seed_model()
    lazy = lm.Sequential([lm.Dense(6, activation="relu"), lm.Dense(6, activation="relu"),
                          lm.Dense(4, activation="softmax")])
    assert not lazy.built
    lazy.load_state_dict(source.state_dict())
    x = rng.standard_normal((3, 8)).astype(np.float32)
    assert lazy.built and np.array_equal(lazy(x), source(x))
    # Layer 0 built from the file decides layer 1's input (6); a layer 1 weight of (6, 5) then fails.
    bad = source.state_dict()
    bad["1.weight"] = np.ones((6, 5))
    with pytest.raises(ValueError, match=r"'1.weight'.*\(6, 5\).*\(6, 6\)"):
        lm.Sequential([lm.Dense(6), lm.Dense(6), lm.Dense(4)]).load_state_dict(bad)


def test_pytorch_state_dict_into_lamina_and_back(rng):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    for dtype, tdtype in ((np.float32, torch.float32), (np.float64, torch.float64)):
        torch.manual_seed(0)
        tmodel = nn.Sequential(nn.Linear(7, 9), nn.ReLU(), nn.Linear(9, 9), nn.Tanh(), nn.Linear(9, 5),
                               nn.Sigmoid(), nn.Linear(5, 3)).to(tdtype)
        model = lm.Sequential(lm.Linear(7, 9, dtype=dtype), lm.ReLU(), lm.Linear(9, 9, dtype=dtype), lm.Tanh(),
                              lm.Linear(9, 5, dtype=dtype), lm.Sigmoid(), lm.Linear(5, 3, dtype=dtype))
        model.load_state_dict(tmodel.state_dict())  # torch tensors, through __array__
        x = rng.standard_normal((6, 7)).astype(dtype)
        dy = rng.standard_normal((6, 3)).astype(dtype)
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = tmodel(xt)
        yt.backward(torch.from_numpy(dy))
        y = model(x)
        dx = model.backward(dy)
        eps = np.finfo(dtype).eps
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=64 * eps, atol=64 * eps,
                                   err_msg=f"{np.dtype(dtype)} output vs torch")
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=64 * eps, atol=64 * eps,
                                   err_msg=f"{np.dtype(dtype)} dx vs torch")
        tgrads = {n: p.grad.numpy() for n, p in tmodel.named_parameters()}
        assert list(tgrads) == [n for n, _ in model.named_parameters()]
        for name, p in model.named_parameters():
            np.testing.assert_allclose(p.grad, tgrads[name], rtol=64 * eps, atol=64 * eps,
                                       err_msg=f"{np.dtype(dtype)} grad of {name} vs torch")
        # and back: torch accepts lamina's state_dict as is
        back = nn.Sequential(nn.Linear(7, 9), nn.ReLU(), nn.Linear(9, 9), nn.Tanh(), nn.Linear(9, 5),
                             nn.Sigmoid(), nn.Linear(5, 3)).to(tdtype)
        back.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
        np.testing.assert_array_equal(back(torch.from_numpy(x)).detach().numpy(), yt.detach().numpy())


def test_pytorch_seed_model_matches_torch_count_and_keys():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    hidden = [m for _ in range(8) for m in (nn.Linear(30, 30), nn.ReLU())]
    tmodel = nn.Sequential(nn.Linear(784, 30), nn.ReLU(), *hidden, nn.Linear(30, 1))
    model = pytorch_seed_model()
    assert sum(p.numel() for p in tmodel.parameters()) == model.num_parameters() == 31_021
    assert list(tmodel.state_dict()) == list(model.state_dict())
    model.load_state_dict(tmodel.state_dict())
    x = np.random.default_rng(0).standard_normal((4, 784)).astype(np.float32)
    np.testing.assert_allclose(model(x), tmodel(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# Keras weights


def test_get_set_weights_use_keras_layout_across_layers(rng):
    model = lm.Sequential([lm.Dense(5, input_shape=(3,), activation="tanh"), lm.ReLU(),
                           lm.Dense(2, use_bias=False)])
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(3, 5), (5,), (5, 2)], [w.shape for w in weights]
    assert np.array_equal(weights[0], model[0].weight.data.T)
    new = [rng.standard_normal(w.shape) for w in weights]
    model.set_weights(new)
    for got, want in zip(model.get_weights(), new):
        assert np.array_equal(got, want.astype(np.float32))
    before = model.get_weights()
    with pytest.raises(ValueError, match="expects 3 arrays, got 2"):
        model.set_weights(new[:2])
    with pytest.raises(ValueError, match=r"layer 2.*\(2, 5\).*\(5, 2\)"):
        model.set_weights(new[:2] + [np.ones((2, 5))])
    for got, want in zip(model.get_weights(), before):
        assert np.array_equal(got, want), "a failed set_weights changed the model"


def test_set_weights_builds_a_lazy_model():
    model = lm.Sequential([lm.Dense(4), lm.Dense(2)])
    model.set_weights([np.ones((3, 4)), np.zeros(4), np.ones((4, 2)), np.zeros(2)])
    assert model.built and model.num_parameters() == 3 * 4 + 4 + 4 * 2 + 2
    np.testing.assert_array_equal(model(np.ones((1, 3))), [[12.0, 12.0]])


# ------------------------------------------------------------------------------------------------
# Lazy building and shapes


def test_lazy_layers_build_when_the_input_size_is_known():
    model = lm.Sequential([lm.Dense(6, input_shape=(8,)), lm.Dense(6), lm.Dense(4)])
    assert model.built and model.num_parameters() == 124 and model[2].weight.shape == (4, 6)
    lazy = lm.Sequential([lm.Dense(5), lm.ReLU(), lm.Dense(2)])
    assert not lazy.built and lazy.num_parameters() == 0
    y = lazy(np.ones((3, 7)))
    assert y.shape == (3, 2) and lazy.built
    assert [p.shape for p in lazy.parameters()] == [(5, 7), (5,), (2, 5), (2,)]
    assert lazy.output_shape((None, 7)) == (None, 2)


def test_mismatched_chain_is_rejected_at_construction():
    with pytest.raises(ValueError, match=r"Sequential layer 2: Linear\(in_features=20.*\(batch, 20\).*\(None, 30\)"):
        lm.Sequential(lm.Linear(10, 30), lm.ReLU(), lm.Linear(20, 5))


def test_wrong_input_names_the_layer_position():
    model = keras_seed_model()
    with pytest.raises(ValueError) as info:
        model(np.ones((2, 7)))
    msg = str(info.value)
    for part in ("Sequential layer 0", "Dense(units=6", "(batch, 8)", "(2, 7)"):
        assert part in msg, f"{part!r} missing from {msg!r}"
    with pytest.raises(TypeError, match="dtype bool"):
        model(np.ones((2, 8), dtype=bool))
    with pytest.raises(ValueError, match="2-D input"):
        model(np.ones(8))


def test_backward_before_forward_and_wrong_gradient_shape():
    model = keras_seed_model()
    with pytest.raises(RuntimeError, match="before forward"):
        model.backward(np.ones((2, 4)))
    model(np.ones((2, 8)))
    with pytest.raises(ValueError, match=r"Sequential layer 2.*\(2, 4\).*\(2, 3\)"):
        model.backward(np.ones((2, 3)))


def test_empty_batch_through_a_model():
    model = keras_seed_model()
    y = model(np.zeros((0, 8)))
    assert y.shape == (0, 4) and y.dtype == np.float32
    assert model.backward(np.zeros((0, 4))).shape == (0, 8)
    assert not any(p.grad.any() for p in model.parameters())


# ------------------------------------------------------------------------------------------------
# Container protocol


def test_indexing_length_iteration_and_append():
    layers = [lm.Linear(4, 3), lm.ReLU(), lm.Linear(3, 2)]
    model = lm.Sequential(*layers)
    assert len(model) == 3 and list(model) == layers
    assert model[0] is layers[0] and model[-1] is layers[2]
    head = model[:2]
    assert isinstance(head, lm.Sequential) and list(head) == layers[:2] and head[0] is layers[0]
    with pytest.raises(IndexError):
        model[3]
    tail = lm.Linear(2, 5)
    assert model.append(tail) is model and len(model) == 4 and model[3] is tail
    assert list(model.state_dict())[-2:] == ["3.weight", "3.bias"]
    lazy = lm.Dense(7)
    model.append(lazy)
    assert lazy.built and lazy.weight.shape == (7, 5), "append builds a layer whose input is known"
    with pytest.raises(ValueError, match="Sequential layer 5"):
        model.append(lm.Linear(3, 1))
    assert len(model) == 5, "a rejected append must not stay in the model"


def test_rejects_non_layers_and_repeated_layers():
    with pytest.raises(TypeError, match="Module"):
        lm.Sequential(lm.Linear(2, 2), np.eye(2))
    relu = lm.ReLU()
    with pytest.raises(ValueError, match="appears twice"):
        lm.Sequential(lm.Linear(2, 2), relu, lm.Linear(2, 2), relu)


def test_train_eval_propagate_to_layers():
    model = keras_seed_model()
    assert model.eval() is model
    assert not model.training and not any(layer.training for layer in model)
    model.train()
    assert model.training and all(layer.training for layer in model)


def test_repr_like_pytorch():
    model = lm.Sequential(lm.Linear(784, 30), lm.ReLU(), lm.Linear(30, 1))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=784, out_features=30, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Linear(in_features=30, out_features=1, bias=True)\n"
        ")"
    )


def test_config_round_trip_through_json(rng):
    model = keras_seed_model()
    cfg = json.loads(json.dumps(model.get_config()))
    assert cfg["class"] == "Sequential" and [c["class"] for c in cfg["layers"]] == ["Dense"] * 3
    rebuilt = lm.Sequential.from_config(cfg)
    assert rebuilt.get_config() == cfg and rebuilt.num_parameters() == 124
    rebuilt.load_state_dict(model.state_dict())
    x = rng.standard_normal((2, 8)).astype(np.float32)
    assert np.array_equal(rebuilt(x), model(x))
    # a model built lazily records the input size it was built with
    lazy = lm.Sequential([lm.Dense(3), lm.Dense(2)])
    lazy(np.ones((1, 5)))
    assert lm.Sequential.from_config(lazy.get_config()).num_parameters() == lazy.num_parameters() == 26
    with pytest.raises(ValueError, match="unknown layer class"):
        lm.Sequential.from_config({"class": "Sequential", "layers": [{"class": "Lambda"}]})
    with pytest.raises(ValueError, match="not a Sequential config"):
        lm.Sequential.from_config({"class": "Dense", "units": 2})


def test_nested_sequential_uses_dotted_keys():
    inner = lm.Sequential(lm.Linear(3, 4), lm.Tanh())
    model = lm.Sequential(inner, lm.Linear(4, 2))
    assert list(model.state_dict()) == ["0.0.weight", "0.0.bias", "1.weight", "1.bias"]
    rebuilt = lm.Sequential.from_config(json.loads(json.dumps(model.get_config())))
    assert list(rebuilt.state_dict()) == list(model.state_dict())


# ------------------------------------------------------------------------------------------------
# Keras-style training methods delegate to lamina.training


def test_training_methods_delegate_to_lamina_training(monkeypatch):
    import lamina.training as training

    calls = []

    def recorder(name):
        def fn(*args, **kwargs):
            calls.append((name, args, kwargs))
            return name
        return fn

    assert lm.Sequential.train_step is training.train_step  # bound directly: no wrapper frame per step
    for name in ("compile", "fit", "evaluate", "predict"):
        monkeypatch.setattr(training, name, recorder(name))
    model = keras_seed_model()
    opt, loss, x, y = object(), object(), np.ones((2, 8)), np.zeros(2)
    assert model.compile(optimizer=opt, loss=loss, metrics=["accuracy"]) == "compile"
    assert model.fit(x, y, epochs=3, batch_size=1) == "fit"
    assert model.evaluate(x, y, batch_size=2) == "evaluate"
    assert model.predict(x, batch_size=4) == "predict"
    assert calls[0] == ("compile", (model, opt, loss, ["accuracy"]), {})
    assert calls[1][0] == "fit" and calls[1][1][0] is model and calls[1][2] == {"epochs": 3, "batch_size": 1}
    assert calls[2][0] == "evaluate" and calls[2][2] == {"batch_size": 2}
    assert calls[3] == ("predict", (model, x), {"batch_size": 4})
