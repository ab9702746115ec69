"""The conv2d plan step, called on lamina._native.Plan directly: a training step (conv2d with its
activation, flatten, dense, NLL, SGD) is bitwise the single native ops composed by hand in the
same order, for both layouts, 2-D and 1-D (rank-2) samples, fused and unfused activations, and
1 and 2 threads; predict is the forward; bad descriptors name the step."""
import numpy as np
import pytest

from lamina import _native

LR = 0.05


def conv_step(W, b, layout, activation, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    return {"kind": "conv2d",
            "arrays": {"weight": W, "bias": b, "weight_grad": np.zeros_like(W),
                       "bias_grad": None if b is None else np.zeros_like(b)},
            "attrs": {"stride_h": stride[0], "stride_w": stride[1], "pad_top": padding[0],
                      "pad_bottom": padding[1], "pad_left": padding[2], "pad_right": padding[3],
                      "dilation_h": dilation[0], "dilation_w": dilation[1], "groups": groups,
                      "layout": layout, "activation": activation, "negative_slope": 0.01}}


def dense_step(W, b):
    return {"kind": "dense", "arrays": {"weight": W, "bias": b, "weight_grad": np.zeros_like(W),
                                       "bias_grad": np.zeros_like(b)},
            "attrs": {"activation": None, "normalize": "log_softmax"}}


def updates(steps):
    return [{"param": s["arrays"][p], "grad": s["arrays"][g], "state": []}
            for s in steps for p, g in (("weight", "weight_grad"), ("bias", "bias_grad"))
            if s["arrays"].get(p) is not None and s["arrays"].get(g) is not None]


# (per-sample input, weight shape, geometry): 2-D channels_first/last and 1-D (H = 1).
SETUPS = {
    "2d-first": ((3, 7, 6), (4, 3, 3, 3), "channels_first", dict(stride=(2, 1), padding=(1, 0, 1, 1))),
    "2d-last": ((7, 6, 4), (3, 2, 2, 6), "channels_last", dict(padding=(1, 1, 0, 2), dilation=(2, 1), groups=2)),
    "1d-first": ((3, 9), (5, 3, 3), "channels_first", dict(stride=(1, 2), padding=(0, 0, 1, 1))),
    "1d-last": ((9, 2), (3, 2, 4), "channels_last", dict(padding=(0, 0, 2, 0))),
}


def build(setup, dtype, activation, seed=0):
    sample, w_shape, layout, geo = SETUPS[setup]
    rng = np.random.default_rng(seed)
    W = (rng.standard_normal(w_shape) * 0.4).astype(dtype)
    cout = w_shape[0] if layout == "channels_first" else w_shape[-1]
    b = (rng.standard_normal(cout) * 0.1).astype(dtype)
    conv = conv_step(W, b, layout, activation, **geo)
    plan0 = _native.Plan([conv], sample, "mse", "sgd", [])
    features = int(np.prod(plan0.output_shape))
    W2 = (rng.standard_normal((5, features)) * 0.3).astype(dtype)
    b2 = (rng.standard_normal(5) * 0.1).astype(dtype)
    steps = [conv, {"kind": "flatten", "arrays": {}, "attrs": {}}, dense_step(W2, b2)]
    return steps, layout, geo


def as_4d(a, layout, rank):
    """A (batch, *sample) array of rank-2 samples as the 2-D op sees it (H = 1), a view."""
    if rank == 3:
        return a
    return a[:, :, None, :] if layout == "channels_first" else a[:, None, :, :]


def by_hand(steps, layout, geo, x, labels, activation):
    conv, dense = steps[0]["arrays"], steps[2]["arrays"]
    W, b = conv["weight"], conv["bias"]
    rank = x.ndim - 1
    W4 = W if W.ndim == 4 else (W[:, :, None, :] if layout == "channels_first" else W[None])
    x4 = as_4d(x, layout, rank)
    args = dict(stride=geo.get("stride", (1, 1)), padding=geo.get("padding", (0, 0, 0, 0)),
                dilation=geo.get("dilation", (1, 1)), groups=geo.get("groups", 1))
    flat = lambda g: (g["stride"][0], g["stride"][1], *g["padding"], g["dilation"][0], g["dilation"][1], g["groups"])
    from_input = activation in ("gelu", "leaky_relu", "gelu_tanh")
    if from_input:
        z = _native.conv2d(x4, W4, b, *flat(args), layout, None)
        y = _native.activation(z, activation, 0.01)
    else:
        y = _native.conv2d(x4, W4, b, *flat(args), layout, activation)
    h = y.reshape(len(x), -1)
    out = _native.activation(_native.linear(h, dense["weight"], dense["bias"], None), "log_softmax")
    loss, g = _native.nll(out, labels)
    g = _native.activation_backward(g, out, "log_softmax")
    for s in steps:
        for name in ("weight_grad", "bias_grad"):
            if s["arrays"].get(name) is not None:
                s["arrays"][name][...] = 0
    g = _native.linear_backward(g, h, dense["weight"], dense["weight_grad"], dense["bias_grad"], True)
    g = g.reshape(y.shape)
    if activation is not None:
        g = _native.activation_backward(g, z if from_input else y, activation, 0.01)
    dW4 = conv["weight_grad"].reshape(W4.shape)
    _native.conv2d_backward(g, x4, W4, dW4, conv["bias_grad"], False, *flat(args), layout)
    for u in updates(steps):
        _native.sgd_step(u["param"], u["grad"], None, LR, 0.0, 0.0, False)
    return loss, out


@pytest.mark.parametrize("setup", sorted(SETUPS))
@pytest.mark.parametrize("activation", [None, "relu", "gelu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_train_step_is_the_single_ops_composed_by_hand(setup, activation, dtype, threads):
    steps_p, layout, geo = build(setup, dtype, activation)
    steps_h, _, _ = build(setup, dtype, activation)
    sample = SETUPS[setup][0]
    plan = _native.Plan(steps_p, sample, "nll", "sgd", updates(steps_p))
    plan.set_hyper(LR, 0.0, 0.0, False, 0.0, 0.0, 0.0)
    rng = np.random.default_rng(1)
    for step, batch in enumerate([4, 4, 3, 1]):
        x = rng.standard_normal((batch, *sample)).astype(dtype)
        labels = rng.integers(0, 5, batch)
        loss_p, out_p = plan.train_step(x, labels, step + 1, True, 0, 0)
        loss_h, out_h = by_hand(steps_h, layout, geo, x, labels, activation)
        assert loss_p == loss_h, f"step {step}: loss {loss_p!r} vs {loss_h!r}"
        np.testing.assert_array_equal(out_p, out_h, err_msg=f"step {step} output")
        for i in (0, 2):
            for name in ("weight", "bias", "weight_grad", "bias_grad"):
                np.testing.assert_array_equal(steps_p[i]["arrays"][name], steps_h[i]["arrays"][name],
                                              err_msg=f"step {step}: plan step {i} {name}")
    # predict runs the same forward (inference: the activation fused)
    x = rng.standard_normal((2, *sample)).astype(dtype)
    plan_h = _native.Plan(steps_h, sample, "nll", "sgd", [])
    np.testing.assert_array_equal(plan.predict(x), plan_h.predict(x))


def test_output_shapes():
    for setup, want in (("2d-first", (4, 3, 6)), ("2d-last", (5, 7, 6)), ("1d-first", (5, 5)), ("1d-last", (9, 4))):
        steps, _, _ = build(setup, np.float64, None)
        assert _native.Plan(steps[:1], SETUPS[setup][0], "mse", "sgd", []).output_shape == want, setup


@pytest.mark.parametrize("change, match", [
    (dict(attrs={"groups": 2}), "groups"),
    (dict(attrs={"stride_h": 0}), "stride"),
    (dict(attrs={"layout": "NCHW"}), "layout"),
    (dict(attrs={"pad_top": -1}), "padding"),
    (dict(attrs={"dilation_w": 5}), "kernel larger"),
    (dict(sample=(3, 7, 6, 1)), "per sample"),
    (dict(bias=np.zeros(3)), "bias"),
    (dict(sample=(3, 7), weight=np.zeros((4, 3, 3)), attrs={"pad_top": 1}), "pad_top"),
])
def test_bad_descriptors_name_the_step(change, match):
    W = change.get("weight", np.zeros((4, 3, 3, 3)))
    step = conv_step(W, change.get("bias", np.zeros(4)), "channels_first", None)
    step["attrs"].update(change.get("attrs", {}))
    with pytest.raises(ValueError, match=match) as info:
        _native.Plan([step], change.get("sample", (3, 7, 6)), "mse", "sgd", [])
    assert "plan step 0 (conv2d)" in str(info.value)
