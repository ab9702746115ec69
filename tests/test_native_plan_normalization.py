"""The batch_norm and layer_norm plan steps, called on lamina._native.Plan directly.

A training step (a convolution or dense layer, the normalization, flatten, dense + log_softmax, NLL,
SGD) is bitwise the single ops composed by hand in the same order, over several batches: running
statistics and num_batches_tracked (momentum, None: the cumulative average, unbiased or not), the
three stats modes, a fused ReLU, frozen or absent parameters, every per-sample layout. predict is
the inference forward of the same ops, with the batch norm folded into the GEMM before it where it
can be (Plan.folded), bitwise the unfused plan (fuse=False) and the ops; 1 and 2 threads agree
bitwise; bad descriptors name the step; a batch too small for batch statistics is refused before
anything is written.
"""
import numpy as np
import pytest

import lamina
from lamina import _native, ops

LR = 0.05
CLASSES = 5


def zeros_like_or_none(a, grads=True):
    return np.zeros_like(a) if a is not None and grads else None


def bn_step(channels, dtype, rng, *, axis=0, stats="batch", activation=None, momentum=0.1, unbiased=True,
            affine=True, frozen=False, counter_shape=()):
    """A batch_norm descriptor with random parameters and running statistics (momentum "absent"
    leaves the attr out)."""
    w = (1 + 0.3 * rng.standard_normal(channels)).astype(dtype) if affine else None
    b = (0.2 * rng.standard_normal(channels)).astype(dtype) if affine else None
    running = stats != "batch_always"
    arrays = {"weight": w, "bias": b,
              "weight_grad": zeros_like_or_none(w, not frozen), "bias_grad": zeros_like_or_none(b, not frozen),
              "running_mean": (0.1 * rng.standard_normal(channels)).astype(dtype) if running else None,
              "running_var": (1 + 0.5 * rng.random(channels)).astype(dtype) if running else None,
              "num_batches_tracked": np.zeros(counter_shape, np.int64) if running else None}
    attrs = {"axis": axis, "eps": 1e-3, "unbiased": unbiased, "stats": stats, "activation": activation}
    if momentum != "absent":
        attrs["momentum"] = momentum
    return {"kind": "batch_norm", "arrays": arrays, "attrs": attrs}


def ln_step(shape, dtype, rng, *, affine=True, frozen=False):
    w = (1 + 0.3 * rng.standard_normal(shape)).astype(dtype) if affine else None
    b = (0.2 * rng.standard_normal(shape)).astype(dtype) if affine else None
    return {"kind": "layer_norm",
            "arrays": {"weight": w, "bias": b, "weight_grad": zeros_like_or_none(w, not frozen),
                       "bias_grad": zeros_like_or_none(b, not frozen)},
            "attrs": {"eps": 1e-5, "normalized_dims": len(shape)}}


def dense_step(W, b, normalize=None):
    return {"kind": "dense", "arrays": {"weight": W, "bias": b, "weight_grad": np.zeros_like(W),
                                       "bias_grad": None if b is None else np.zeros_like(b)},
            "attrs": {"activation": None, "normalize": normalize}}


def conv_step(W, b, layout):
    return {"kind": "conv2d", "arrays": {"weight": W, "bias": b, "weight_grad": np.zeros_like(W),
                                        "bias_grad": np.zeros_like(b)},
            "attrs": {"pad_top": 1, "pad_bottom": 1, "pad_left": 1, "pad_right": 1, "layout": layout}}


def updates(steps):
    return [{"param": s["arrays"][p], "grad": s["arrays"][g], "state": []}
            for s in steps for p, g in (("weight", "weight_grad"), ("bias", "bias_grad"))
            if s["arrays"].get(p) is not None and s["arrays"].get(g) is not None]


# The first layer, by name: (per-sample input, kind, layout, the normalization's per-sample axis).
# Every batch norm whose axis is the first layer's output channels is folded in inference; a dense
# layer on (C, L) normalised over C is not (its features are L).
SETUPS = {
    "conv-first": ((3, 5, 4), "conv2d", "channels_first", 0),
    "conv-last": ((5, 4, 3), "conv2d", "channels_last", -1),
    "conv1d-first": ((3, 6), "conv2d", "channels_first", 0),
    "dense-c": ((6,), "dense", None, 0),
    "dense-lc": ((3, 6), "dense", None, -1),
    "dense-cl": ((3, 6), "dense", None, 0),
    "dense-chw": ((2, 3, 6), "dense", None, 0),
}
FEATURES = 4  # the first layer's output channels / features


def first_layer(setup, dtype, rng):
    sample, kind, layout, _ = SETUPS[setup]
    if kind == "dense":
        W = (rng.standard_normal((FEATURES, sample[-1])) * 0.5).astype(dtype)
        b = (rng.standard_normal(FEATURES) * 0.1).astype(dtype)
        return dense_step(W, b), sample[:-1] + (FEATURES,)
    cin = sample[0] if layout == "channels_first" else sample[-1]
    if len(sample) == 3:
        w_shape = (FEATURES, cin, 3, 3) if layout == "channels_first" else (3, 3, cin, FEATURES)
    else:
        w_shape = (FEATURES, cin, 3) if layout == "channels_first" else (3, cin, FEATURES)
    W = (rng.standard_normal(w_shape) * 0.3).astype(dtype)
    b = (rng.standard_normal(FEATURES) * 0.1).astype(dtype)
    step = conv_step(W, b, layout)
    if len(sample) == 2:  # 1-D: no vertical padding
        step["attrs"].update(pad_top=0, pad_bottom=0)
    out = (FEATURES,) + sample[1:] if layout == "channels_first" else sample[:-1] + (FEATURES,)
    return step, out


def network(setup, dtype, seed, norm):
    """[first layer, normalization, flatten, dense + log_softmax]; norm(out_shape, rng) builds the
    normalization's descriptor."""
    rng = np.random.default_rng(seed)
    first, out = first_layer(setup, dtype, rng)
    features = int(np.prod(out))
    last = dense_step((rng.standard_normal((CLASSES, features)) * 0.3).astype(dtype),
                      (rng.standard_normal(CLASSES) * 0.1).astype(dtype), normalize="log_softmax")
    return [first, norm(out, rng), {"kind": "flatten", "arrays": {}, "attrs": {}}, last]


# ---- the same computation from single ops ------------------------------------------------------

def first_forward(step, x):
    a = step["arrays"]
    if step["kind"] == "dense":
        return _native.linear(x.reshape(-1, x.shape[-1]), a["weight"], a["bias"], None).reshape(
            x.shape[:-1] + (a["weight"].shape[0],))
    layout = step["attrs"]["layout"]
    x4, W4 = as_4d(x, a["weight"], layout)
    pt = step["attrs"]["pad_top"]
    z = _native.conv2d(x4, W4, a["bias"], 1, 1, pt, pt, 1, 1, 1, 1, 1, layout, None)
    return z.reshape((x.shape[0],) + (z.shape[1:] if x.ndim == 4 else squeeze_h(z, layout).shape[1:]))


def squeeze_h(a, layout):
    return a[:, :, 0, :] if layout == "channels_first" else a[:, 0, :, :]


def as_4d(x, W, layout):
    if x.ndim == 4:
        return x, W
    if layout == "channels_first":
        return x[:, :, None, :], W[:, :, None, :]
    return x[:, None, :, :], W[None]


def first_backward(step, g, x):
    a = step["arrays"]
    a["weight_grad"][...] = 0
    a["bias_grad"][...] = 0
    if step["kind"] == "dense":
        _native.linear_backward(g.reshape(-1, g.shape[-1]), x.reshape(-1, x.shape[-1]), a["weight"],
                                a["weight_grad"], a["bias_grad"], False)
        return
    layout = step["attrs"]["layout"]
    x4, W4 = as_4d(x, a["weight"], layout)
    g4, dW4 = as_4d(g, a["weight_grad"], layout)
    pt = step["attrs"]["pad_top"]
    _native.conv2d_backward(np.ascontiguousarray(g4), x4, W4, dW4, a["bias_grad"], False, 1, 1, pt, pt, 1, 1,
                            1, 1, 1, layout)


def norm_forward(step, z, training):
    """The normalization's forward from the ops, updating its running statistics as the plan does;
    returns (y, saved) with what backward needs."""
    a, at = step["arrays"], step["attrs"]
    if step["kind"] == "layer_norm":
        dims = z.shape[z.ndim - at["normalized_dims"]:]
        y, mean, invstd = ops.layer_norm(z, dims, a["weight"], a["bias"], eps=at["eps"])
        return y, (mean, invstd, dims)
    axis = at["axis"] + 1 if at["axis"] >= 0 else at["axis"]
    stats = at["stats"]
    batch_stats = stats == "batch_always" or (stats == "batch" and training)
    momentum = at.get("momentum", 0.1)  # PyTorch's default when absent
    if training and stats == "batch":
        a["num_batches_tracked"][...] += 1
        if momentum is None:  # the cumulative average
            momentum = 1.0 / float(a["num_batches_tracked"].reshape(-1)[0])
    if momentum is None:  # not used
        momentum = 0.1
    y, mean, invstd = ops.batch_norm(
        z, a["weight"], a["bias"],
        a["running_mean"] if training and stats == "batch" or not batch_stats else None,
        a["running_var"] if training and stats == "batch" or not batch_stats else None,
        training=batch_stats, momentum=momentum, eps=at["eps"], axis=axis, unbiased=at["unbiased"],
        activation=at["activation"])
    return y, (mean, invstd, batch_stats, axis)


def norm_backward(step, g, z, y, saved):
    a = step["arrays"]
    if step["kind"] == "layer_norm":
        mean, invstd, dims = saved
        dz, dw, db = ops.layer_norm_backward(g, z, mean, invstd, dims, a["weight"])
    else:
        mean, invstd, batch_stats, axis = saved
        relu = y if step["attrs"]["activation"] == "relu" else None
        dz, dw, db = ops.batch_norm_backward(g, z, mean, invstd, a["weight"], training=batch_stats, axis=axis,
                                             relu_output=relu)
    for name, value in (("weight_grad", dw), ("bias_grad", db)):
        if a.get(name) is not None:
            a[name][...] = value
    return dz


def by_hand_train(steps, x, labels):
    first, norm, _, last = steps
    z = first_forward(first, x)
    y, saved = norm_forward(norm, z, True)
    h = y.reshape(len(x), -1)
    out = _native.activation(_native.linear(h, last["arrays"]["weight"], last["arrays"]["bias"], None),
                             "log_softmax")
    loss, g = _native.nll(out, labels)
    g = _native.activation_backward(g, out, "log_softmax")
    g = _linear_backward_overwrite(g, h, last)
    dz = norm_backward(norm, g.reshape(y.shape), z, y, saved)
    first_backward(first, dz, x)
    for u in updates(steps):
        _native.sgd_step(u["param"], u["grad"], None, LR, 0.0, 0.0, False)
    return loss, out


def _linear_backward_overwrite(g, h, step):
    a = step["arrays"]
    a["weight_grad"][...] = 0
    a["bias_grad"][...] = 0
    return _native.linear_backward(g, h, a["weight"], a["weight_grad"], a["bias_grad"], True)


def by_hand_predict(steps, x):
    first, norm, _, last = steps
    y, _ = norm_forward(norm, first_forward(first, x), False)
    return _native.activation(_native.linear(y.reshape(len(x), -1), last["arrays"]["weight"],
                                             last["arrays"]["bias"], None), "log_softmax")


STATE = ("weight", "bias", "weight_grad", "bias_grad", "running_mean", "running_var", "num_batches_tracked")


def assert_same_state(steps_p, steps_h, what):
    for i, (sp, sh) in enumerate(zip(steps_p, steps_h)):
        for name in STATE:
            a, b = sp["arrays"].get(name), sh["arrays"].get(name)
            if a is None:
                assert b is None
                continue
            np.testing.assert_array_equal(a, b, err_msg=f"{what}: step {i} {name}")


def check_against_ops(setup, dtype, norm, batches=(4, 3, 4), expect_folded=None):
    steps_p = network(setup, dtype, 0, norm)
    steps_h = network(setup, dtype, 0, norm)
    sample = SETUPS[setup][0]
    plan = _native.Plan(steps_p, sample, "nll", "sgd", updates(steps_p))
    plan.set_hyper(LR, 0.0, 0.0, False, 0.0, 0.0, 0.0)
    unfused = _native.Plan(steps_p, sample, "nll", "sgd", [], fuse=False)
    assert unfused.folded == ()
    if expect_folded is not None:
        assert plan.folded == expect_folded, f"{setup}: folded {plan.folded}"
    rng = np.random.default_rng(1)
    for step, batch in enumerate(batches):
        x = rng.standard_normal((batch, *sample)).astype(dtype)
        labels = rng.integers(0, CLASSES, batch)
        loss_p, out_p = plan.train_step(x, labels, step + 1, True, 0, 0)
        loss_h, out_h = by_hand_train(steps_h, x, labels)
        assert loss_p == loss_h, f"step {step}: loss {loss_p!r} vs {loss_h!r}"
        np.testing.assert_array_equal(out_p, out_h, err_msg=f"step {step} output")
        assert_same_state(steps_p, steps_h, f"after step {step}")
        # predict with the statistics as they are now, folded or not
        x = rng.standard_normal((3, *sample)).astype(dtype)
        y = plan.predict(x)
        np.testing.assert_array_equal(y, by_hand_predict(steps_h, x), err_msg=f"step {step} predict vs ops")
        np.testing.assert_array_equal(y, unfused.predict(x), err_msg=f"step {step} predict vs unfused")
        assert_same_state(steps_p, steps_h, f"after predict {step}")
    return plan


# ---- batch norm ----------------------------------------------------------------------------------

def folded_for(setup, stats):
    sample, kind, layout, axis = SETUPS[setup]
    if stats == "batch_always":
        return ()
    if kind == "dense":
        return (1,) if axis == -1 or len(sample) == 1 else ()
    return (1,)


@pytest.mark.parametrize("setup", sorted(SETUPS))
@pytest.mark.parametrize("stats", ["batch", "batch_always", "running"])
@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_trains_and_predicts_as_its_ops(setup, stats, activation, dtype):
    axis = SETUPS[setup][3]

    def norm(out, rng):
        return bn_step(out[axis], dtype, rng, axis=axis, stats=stats, activation=activation)

    check_against_ops(setup, dtype, norm, expect_folded=folded_for(setup, stats))


@pytest.mark.parametrize("momentum", [None, 0.0, 1.0, "absent"])
@pytest.mark.parametrize("unbiased", [True, False])
@pytest.mark.parametrize("counter_shape", [(), (1,)])
def test_running_statistics_momentum_and_the_batch_count(momentum, unbiased, counter_shape):
    def norm(out, rng):
        return bn_step(out[0], np.float64, rng, momentum=momentum, unbiased=unbiased, counter_shape=counter_shape,
                       activation="relu")

    plan = check_against_ops("conv-first", np.float64, norm, batches=(4, 2, 3, 5), expect_folded=(1,))
    del plan
    # the count: one per training batch, whatever the momentum
    steps = network("conv-first", np.float64, 0, norm)
    p = _native.Plan(steps, (3, 5, 4), "nll", "sgd", updates(steps))
    p.set_hyper(LR, 0.0, 0.0, False, 0.0, 0.0, 0.0)
    x = np.random.default_rng(2).standard_normal((2, 3, 5, 4))
    for _ in range(3):
        p.train_step(x, np.zeros(2, np.int64), 1, False, 0, 0)
        p.predict(x)
    assert int(steps[1]["arrays"]["num_batches_tracked"].reshape(-1)[0]) == 3


def test_cumulative_average_is_the_mean_of_the_batches():
    """momentum None: after n batches the running mean is the average of their means (PyTorch)."""
    rng = np.random.default_rng(3)
    step = bn_step(3, np.float64, rng, momentum=None, affine=False)
    plan = _native.Plan([step], (3,), "mse", "sgd", [])
    plan.set_hyper(LR, 0.0, 0.0, False, 0.0, 0.0, 0.0)
    means = []
    for _ in range(4):
        x = rng.standard_normal((6, 3)) + 2
        plan.train_step(x, np.zeros((6, 3)), 1, False, 0, 0)
        means.append(x.mean(axis=0))
    np.testing.assert_allclose(step["arrays"]["running_mean"], np.mean(means, axis=0), rtol=1e-12)
    assert int(step["arrays"]["num_batches_tracked"]) == 4


@pytest.mark.parametrize("affine, frozen", [(False, False), (True, True)])
@pytest.mark.parametrize("stats", ["batch", "running"])
def test_without_or_with_frozen_parameters(affine, frozen, stats):
    def norm(out, rng):
        return bn_step(out[0], np.float32, rng, stats=stats, activation="relu", affine=affine, frozen=frozen)

    check_against_ops("conv-first", np.float32, norm, expect_folded=(1,))


def test_a_batch_norm_only_plan_has_the_dtype_of_its_statistics():
    rng = np.random.default_rng(4)
    step = bn_step(3, np.float32, rng, affine=False)
    plan = _native.Plan([step], (3,), "mse", "sgd", [])
    y = plan.predict(np.ones((2, 3), np.float32))
    assert y.dtype == np.float32
    with pytest.raises(TypeError, match="dtype"):
        plan.predict(np.ones((2, 3)))
    # batch_always without parameters holds no array: either dtype runs
    plan = _native.Plan([bn_step(3, np.float32, rng, affine=False, stats="batch_always")], (3,), "mse", "sgd", [])
    x = rng.standard_normal((4, 3))
    for dtype in (np.float32, np.float64):
        y = plan.predict(x.astype(dtype))
        expected, _, _ = ops.batch_norm(x.astype(dtype), eps=1e-3)
        np.testing.assert_array_equal(y, expected)


# ---- layer norm ----------------------------------------------------------------------------------

@pytest.mark.parametrize("setup, dims", [("dense-c", 1), ("dense-lc", 1), ("dense-lc", 2), ("dense-chw", 2),
                                         ("conv-last", 3)])
@pytest.mark.parametrize("affine, frozen", [(True, False), (False, False), (True, True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm_trains_and_predicts_as_its_ops(setup, dims, affine, frozen, dtype):
    def norm(out, rng):
        return ln_step(out[len(out) - dims:], dtype, rng, affine=affine, frozen=frozen)

    check_against_ops(setup, dtype, norm, expect_folded=())


# ---- threads -------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_and_two_threads_agree_bitwise(layout, dtype):
    """Big enough for the convolution, the batch norm and the folded predict to split."""
    C, H, Cout = 16, 16, 32
    sample = (C, H, H) if layout == "channels_first" else (H, H, C)
    axis = 0 if layout == "channels_first" else -1
    results = []
    before = lamina.get_num_threads()
    try:
        for threads in (1, 2):
            lamina.set_num_threads(threads)
            rng = np.random.default_rng(5)
            w_shape = (Cout, C, 3, 3) if layout == "channels_first" else (3, 3, C, Cout)
            conv = conv_step((rng.standard_normal(w_shape) * 0.1).astype(dtype),
                             (rng.standard_normal(Cout) * 0.1).astype(dtype), layout)
            steps = [conv, bn_step(Cout, dtype, rng, axis=axis, activation="relu", momentum=None),
                     {"kind": "flatten", "arrays": {}, "attrs": {}},
                     dense_step((rng.standard_normal((CLASSES, Cout * H * H)) * 0.01).astype(dtype),
                                np.zeros(CLASSES, dtype), normalize="log_softmax")]
            plan = _native.Plan(steps, sample, "nll", "sgd", updates(steps))
            plan.set_hyper(LR, 0.0, 0.0, False, 0.0, 0.0, 0.0)
            assert plan.folded == (1,)
            out = []
            for step in range(2):
                x = rng.standard_normal((8, *sample)).astype(dtype)
                out.append(plan.train_step(x, rng.integers(0, CLASSES, 8), step + 1, True, 0, 0))
            out.append(plan.predict(x))
            out.append(_native.Plan(steps, sample, "nll", "sgd", [], fuse=False).predict(x))
            results.append((out, [{k: v.copy() for k, v in s["arrays"].items() if v is not None} for s in steps]))
    finally:
        lamina.set_num_threads(before)
    (out1, state1), (out2, state2) = results
    for a, b in zip(out1[:2], out2[:2]):
        assert a[0] == b[0]
        np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(out1[2], out2[2], err_msg="predict, 2 threads vs 1")
    np.testing.assert_array_equal(out1[2], out1[3], err_msg="folded predict vs unfused")
    for s1, s2 in zip(state1, state2):
        for k in s1:
            np.testing.assert_array_equal(s1[k], s2[k], err_msg=k)


# ---- batches too small for batch statistics ------------------------------------------------------

@pytest.mark.parametrize("stats", ["batch", "batch_always"])
def test_a_batch_of_one_value_per_channel_is_refused_before_anything_is_written(stats):
    rng = np.random.default_rng(6)
    W = (rng.standard_normal((4, 3)) * 0.5).astype(np.float32)
    first = dense_step(W, np.zeros(4, np.float32))
    norm = bn_step(4, np.float32, rng, stats=stats, activation="relu")
    steps = [first, norm]
    plan = _native.Plan(steps, (3,), "mse", "sgd", updates(steps))
    plan.set_hyper(LR, 0.0, 0.0, False, 0.0, 0.0, 0.0)
    before = {(i, k): v.copy() for i, s in enumerate(steps) for k, v in s["arrays"].items() if v is not None}
    x = np.ones((1, 3), np.float32)
    with pytest.raises(ValueError, match=r"plan step 1 \(batch_norm\) needs a batch of 2 or more in training"):
        plan.train_step(x, np.zeros((1, 4), np.float32), 1, False, 0, 0)
    for (i, k), v in before.items():
        np.testing.assert_array_equal(steps[i]["arrays"][k], v, err_msg=f"step {i} {k} was written")
    if stats == "batch":  # inference uses the running statistics: one sample is fine
        plan.predict(x)
    else:
        with pytest.raises(ValueError, match="in inference"):
            plan.predict(x)
    # two samples of one value per channel, or one sample of several, are fine
    plan.train_step(np.ones((2, 3), np.float32), np.zeros((2, 4), np.float32), 1, False, 0, 0)
    steps = [bn_step(4, np.float32, rng, axis=0, stats=stats), {"kind": "flatten", "arrays": {}, "attrs": {}}]
    plan = _native.Plan(steps, (4, 2), "mse", "sgd", updates(steps))
    plan.set_hyper(LR, 0.0, 0.0, False, 0.0, 0.0, 0.0)
    x = rng.standard_normal((1, 4, 2)).astype(np.float32)
    plan.train_step(x, np.zeros((1, 8), np.float32), 1, False, 0, 0)
    plan.predict(x)


# ---- bad descriptors -----------------------------------------------------------------------------

def _bn(**change):
    step = bn_step(4, np.float32, np.random.default_rng(7))
    for k, v in change.pop("arrays", {}).items():
        step["arrays"][k] = v
    step["attrs"].update(change)
    return step


def _ln(**change):
    step = ln_step((4,), np.float32, np.random.default_rng(7))
    for k, v in change.pop("arrays", {}).items():
        step["arrays"][k] = v
    step["attrs"].update(change)
    return step


BAD = {
    "axis out of range": (_bn(axis=2), ValueError, "axis"),
    "axis not an int": (_bn(axis=0.0), TypeError, "axis"),
    "eps zero": (_bn(eps=0.0), ValueError, "eps"),
    "eps nan": (_bn(eps=float("nan")), ValueError, "eps"),
    "momentum above one": (_bn(momentum=1.5), ValueError, "momentum"),
    "momentum negative": (_bn(momentum=-0.1), ValueError, "momentum"),
    "momentum a string": (_bn(momentum="0.1"), TypeError, "momentum"),
    "unbiased not a bool": (_bn(unbiased=1), TypeError, "unbiased"),
    "unknown stats": (_bn(stats="moving"), ValueError, "stats"),
    "gelu": (_bn(activation="gelu"), ValueError, "activation"),
    "unknown attr": (_bn(normalized_dims=1), ValueError, "unknown attr"),
    "weight of the wrong length": (_bn(arrays={"weight": np.ones(3, np.float32)}), ValueError, "weight"),
    "weight of another dtype": (_bn(arrays={"weight": np.ones(4)}), TypeError, "weight"),
    "grad without weight": (_bn(arrays={"weight": None}), ValueError, "weight_grad"),
    "running_var missing": (_bn(arrays={"running_var": None}), ValueError, "running"),
    "running_mean read-only": (_bn(arrays={"running_mean": np.ones(4, np.float32)[::-1][::-1]}), None, None),
    "running_mean of the wrong shape": (_bn(arrays={"running_mean": np.ones((4, 1), np.float32)}), ValueError,
                                        "running_mean"),
    "running_var not contiguous": (_bn(arrays={"running_var": np.ones(8, np.float32)[::2]}), ValueError,
                                   "running_var"),
    "running stats with batch_always": (_bn(stats="batch_always"), ValueError, "batch_always"),
    "no running stats with batch": (_bn(arrays={"running_mean": None, "running_var": None}), ValueError,
                                    "running"),
    "counter of floats": (_bn(arrays={"num_batches_tracked": np.zeros(())}), TypeError, "num_batches_tracked"),
    "counter of two": (_bn(arrays={"num_batches_tracked": np.zeros(2, np.int64)}), ValueError,
                       "num_batches_tracked"),
    "momentum None without a counter": (_bn(momentum=None, arrays={"num_batches_tracked": None}), ValueError,
                                        "num_batches_tracked"),
    "running stats shared": (None, ValueError, "shares memory"),
    "ln dims zero": (_ln(normalized_dims=0), ValueError, "normalized_dims"),
    "ln dims past the rank": (_ln(normalized_dims=2), ValueError, "normalized_dims"),
    "ln weight of the wrong shape": (_ln(arrays={"weight": np.ones((1, 4), np.float32)}), ValueError, "weight"),
    "ln eps negative": (_ln(eps=-1.0), ValueError, "eps"),
    "ln unknown array": (_ln(arrays={"running_mean": np.ones(4, np.float32)}), ValueError, "unknown array"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_descriptors_raise_naming_the_step(case):
    step, error, match = BAD[case]
    if case == "running_mean read-only":
        step = _bn()
        step["arrays"]["running_mean"].setflags(write=False)
        error, match = ValueError, "running_mean"
    if case == "running stats shared":
        step = _bn()
        step["arrays"]["running_var"] = step["arrays"]["running_mean"]
    with pytest.raises(error, match=match) as info:
        _native.Plan([step], (4,), "mse", "sgd", [])
    kind = step["kind"]
    assert f"plan step 0 ({kind})" in str(info.value) or "shares memory" in str(info.value), str(info.value)



def test_statistics_held_fixed_may_be_read_only_arrays():
    """stats "running" (a frozen Keras layer) never writes its statistics: read-only ones serve."""
    step = _bn(stats="running")
    for k in ("running_mean", "running_var", "num_batches_tracked"):
        step["arrays"][k].setflags(write=False)
    plan = _native.Plan([step], (4,), "mse", "sgd", updates([step]))
    plan.set_hyper(LR, 0.0, 0.0, False, 0.0, 0.0, 0.0)
    plan.train_step(np.ones((1, 4), np.float32), np.zeros((1, 4), np.float32), 1, False, 0, 0)
    with pytest.raises(ValueError, match="running_mean"):  # but stats "batch" writes them
        _native.Plan([dict(step, attrs=dict(step["attrs"], stats="batch"))], (4,), "mse", "sgd", [])
