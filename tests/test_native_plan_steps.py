"""The native plan built from named step descriptors, called on lamina._native directly.

A training step of the plan must be bitwise what the single native ops give when composed by hand
in the same order: forward (dropout masks drawn from the same counters), loss, backward, optimizer
update. Also: inference treats dropout as the identity, frozen parameters stay put while the others
train, N-D inputs go through flatten and dense on the last axis, 1 and 2 threads agree bitwise, and
bad descriptors raise ValueError or TypeError naming the step.
"""
import math

import numpy as np
import pytest

import lamina
from lamina import _native

KEY, COUNTER = 0x5EED, 2 ** 40 + 7


def dense(W, b=None, grads=True, activation=None, negative_slope=0.01, normalize=None):
    """A dense step descriptor on W (out, in) and b, with fresh gradient arrays unless frozen."""
    arrays = {"weight": W, "bias": b,
              "weight_grad": np.zeros_like(W) if grads in (True, "weight") else None,
              "bias_grad": np.zeros_like(b) if b is not None and grads in (True, "bias") else None}
    return {"kind": "dense", "arrays": arrays,
            "attrs": {"activation": activation, "negative_slope": negative_slope, "normalize": normalize}}


def updates_for(steps, optimizer="sgd", momentum=False):
    """One update per trainable parameter, in step order, with fresh state arrays."""
    out = []
    for s in steps:
        a = s.get("arrays", {})
        for p, g in (("weight", "weight_grad"), ("bias", "bias_grad")):
            if a.get(p) is not None and a.get(g) is not None:
                state = [] if optimizer == "sgd" and not momentum else \
                    [np.zeros_like(a[p])] if optimizer == "sgd" else [np.zeros_like(a[p]), np.zeros_like(a[p])]
                out.append({"param": a[p], "grad": a[g], "state": state})
    return out


def params(rng, shape, dtype):
    return (rng.standard_normal(shape) * 0.5).astype(dtype)


def assert_same(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    if not np.array_equal(a, b):
        idx = tuple(int(i) for i in np.argwhere(a != b)[0])
        pytest.fail(f"{what}: shape {a.shape}, {int((a != b).sum())} elements differ; first at {idx}: "
                    f"{a[idx]!r} vs {b[idx]!r}")


# ---- the network of most tests: flatten, dense+relu, dropout, gelu, dropout, dense+log_softmax, nll

def network(dtype, rng, frozen=None):
    """Steps for inputs (batch, 1, 4, 4) -> 5 log-probabilities, and their parameter arrays.
    frozen: None, "weight" (the first dense's weight) or "all" (the whole first dense)."""
    W1, b1 = params(rng, (8, 16), dtype), params(rng, (8,), dtype)
    W2, b2 = params(rng, (5, 8), dtype), params(rng, (5,), dtype)
    first = dense(W1, b1, grads={"weight": "bias", "all": False}.get(frozen, True), activation="relu")
    steps = [{"kind": "flatten", "arrays": {}, "attrs": {"start_dim": 1, "end_dim": -1}},
             first,
             {"kind": "dropout", "arrays": {}, "attrs": {"p": 0.3}},
             {"kind": "activation", "arrays": {}, "attrs": {"activation": "gelu"}},
             {"kind": "dropout", "arrays": {}, "attrs": {"p": 0.2}},
             dense(W2, b2, normalize="log_softmax")]
    return steps


def by_hand(steps, x, labels, optimizer, hyper, step_count, key, counter):
    """The plan's training step from single native ops, in the plan's order; returns (loss, output)
    and updates the parameters (and fills the gradients) in place, as the plan does."""
    flat_in, d1, act, d2, d2_out = None, None, None, None, None
    W1, b1 = steps[1]["arrays"]["weight"], steps[1]["arrays"]["bias"]
    W2, b2 = steps[5]["arrays"]["weight"], steps[5]["arrays"]["bias"]
    batch = x.shape[0]
    flat_in = x.reshape(batch, -1)
    h1 = _native.linear(flat_in, W1, b1, "relu")
    d1 = _native.dropout(h1, 0.3, key, counter)
    act = _native.activation(d1, "gelu")
    d2 = _native.dropout(act, 0.2, key, counter + batch * 8)  # after the first dropout's batch * 8
    z2 = _native.linear(d2, W2, b2, None)
    y = _native.activation(z2, "log_softmax")
    loss, g = _native.nll(y, labels)
    g = _native.activation_backward(g, y, "log_softmax")
    grads = {}
    for name in ("weight_grad", "bias_grad"):
        for s in (steps[1], steps[5]):
            if s["arrays"][name] is not None:
                s["arrays"][name][...] = 0  # the plan overwrites: zero_grad, then accumulate
    dW2, db2 = steps[5]["arrays"]["weight_grad"], steps[5]["arrays"]["bias_grad"]
    g = _native.linear_backward(g, d2, W2, dW2, db2, True)
    g = _native.dropout_backward(g, 0.2, key, counter + batch * 8)
    g = _native.activation_backward(g, d1, "gelu")  # from its input
    g = _native.dropout_backward(g, 0.3, key, counter)
    g = _native.activation_backward(g, h1, "relu")
    dW1, db1 = steps[1]["arrays"]["weight_grad"], steps[1]["arrays"]["bias_grad"]
    if dW1 is not None or db1 is not None:
        scratch_dW = dW1 if dW1 is not None else np.zeros_like(W1)  # linear_backward always writes a dW
        _native.linear_backward(g, flat_in, W1, scratch_dW, db1 if db1 is not None else None, False)
    for u in updates_for_cache[id(steps)]:
        if optimizer == "sgd":
            _native.sgd_step(u["param"], u["grad"], u["state"][0] if u["state"] else None, hyper["lr"],
                             hyper["momentum"], 0.0, False)
        else:
            _native.adam_step(u["param"], u["grad"], u["state"][0], u["state"][1], step_count, hyper["lr"],
                              0.9, 0.999, 1e-8, 0.0)
    return loss, y


updates_for_cache = {}


def twins(dtype, optimizer, frozen=None, seed=0):
    """Two identical networks (same values, separate arrays) with their updates."""
    out = []
    for _ in range(2):
        steps = network(dtype, np.random.default_rng(seed), frozen)
        ups = updates_for(steps, optimizer, momentum=optimizer == "sgd")
        updates_for_cache[id(steps)] = ups
        out.append((steps, ups))
    return out


HYPER = {"lr": 0.05, "momentum": 0.9}


def set_hyper(plan, optimizer):
    if optimizer == "sgd":
        plan.set_hyper(HYPER["lr"], HYPER["momentum"], 0.0, False, 0.0, 0.0, 0.0)
    else:
        plan.set_hyper(HYPER["lr"], 0.0, 0.0, False, 0.9, 0.999, 1e-8)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_train_step_is_the_single_ops_composed_by_hand(dtype, optimizer, threads):
    (steps_p, ups_p), (steps_h, _) = twins(dtype, optimizer)
    plan = _native.Plan(steps_p, (1, 4, 4), "nll", optimizer, ups_p)
    set_hyper(plan, optimizer)
    assert plan.output_shape == (5,)
    assert plan.random_per_sample == 8 + 8, f"random_per_sample {plan.random_per_sample}"
    rng = np.random.default_rng(1)
    counter = COUNTER
    for step, batch in enumerate([6, 6, 3, 1]):  # the batch size changes resize the workspace
        x = rng.standard_normal((batch, 1, 4, 4)).astype(dtype)
        labels = rng.integers(0, 5, batch)
        loss_p, out_p = plan.train_step(x, labels, step + 1, True, KEY, counter)
        loss_h, out_h = by_hand(steps_h, x, labels, optimizer, HYPER, step + 1, KEY, counter)
        assert loss_p == loss_h, f"step {step}: loss {loss_p!r} vs {loss_h!r}"
        assert_same(out_p, out_h, f"step {step} output")
        for i in (1, 5):
            for name in ("weight", "bias", "weight_grad", "bias_grad"):
                assert_same(steps_p[i]["arrays"][name], steps_h[i]["arrays"][name], f"step {step} plan step {i} {name}")
        counter += batch * plan.random_per_sample


def test_dropout_masks_follow_the_counter():
    # Same x, counters a train step apart: different masks, so different losses; the same counter
    # twice (on a copy of the model): the same loss.
    (steps_a, ups_a), (steps_b, ups_b) = twins(np.float64, "sgd")
    plans = [_native.Plan(s, (1, 4, 4), "nll", "sgd", u) for s, u in ((steps_a, ups_a), (steps_b, ups_b))]
    for p in plans:
        p.set_hyper(0.0, 0.0, 0.0, False, 0.0, 0.0, 0.0)  # lr 0: the parameters stay, only masks change
    x = np.random.default_rng(2).standard_normal((4, 1, 4, 4))
    labels = np.array([0, 1, 2, 3])
    a = plans[0].train_step(x, labels, 1, False, KEY, 0)
    b = plans[1].train_step(x, labels, 1, False, KEY, 0)
    c = plans[0].train_step(x, labels, 1, False, KEY, 4 * plans[0].random_per_sample)
    assert a == b, f"same counter, different losses {a!r} {b!r}"
    assert a != c, f"different counters gave the same loss {a!r}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_is_identity_through_dropout(dtype):
    rng = np.random.default_rng(3)
    W1, b1, W2 = params(rng, (7, 16), dtype), params(rng, (7,), dtype), params(rng, (3, 7), dtype)
    steps = [{"kind": "flatten", "arrays": {}, "attrs": {}},
             {"kind": "dropout", "arrays": {}, "attrs": {"p": 0.5}},
             dense(W1, b1, activation="tanh"),
             {"kind": "dropout", "arrays": {}, "attrs": {"p": 0.9}},
             dense(W2, None, normalize="softmax")]
    plan = _native.Plan(steps, (4, 4), "mse", "sgd", [])
    x = rng.standard_normal((5, 4, 4)).astype(dtype)
    want = _native.activation(_native.linear(_native.linear(x.reshape(5, 16), W1, b1, "tanh"), W2, None, None), "softmax")
    assert_same(plan.predict(x), want, "predict through dropout")
    # Only views: the output is the input, reshaped, bit for bit.
    views = _native.Plan([{"kind": "dropout", "arrays": {}, "attrs": {"p": 0.5}},
                          {"kind": "flatten", "arrays": {}, "attrs": {}}], (4, 4), "mse", "sgd", [])
    assert_same(views.predict(x), x.reshape(5, 16), "predict of dropout + flatten")


@pytest.mark.parametrize("frozen", ["weight", "all"])
def test_frozen_parameters_stay_and_the_others_train(frozen):
    (steps_p, ups_p), (steps_h, _) = twins(np.float64, "sgd", frozen=frozen)
    plan = _native.Plan(steps_p, (1, 4, 4), "nll", "sgd", ups_p)
    set_hyper(plan, "sgd")
    W1_before = steps_p[1]["arrays"]["weight"].copy()
    b1_before = steps_p[1]["arrays"]["bias"].copy()
    W2_before = steps_p[5]["arrays"]["weight"].copy()
    x = np.random.default_rng(4).standard_normal((6, 1, 4, 4))
    labels = np.arange(6) % 5
    loss_p, _ = plan.train_step(x, labels, 1, True, KEY, COUNTER)
    loss_h, _ = by_hand(steps_h, x, labels, "sgd", HYPER, 1, KEY, COUNTER)
    assert loss_p == loss_h
    assert_same(steps_p[1]["arrays"]["weight"], W1_before, "frozen weight")
    if frozen == "weight":
        assert not np.array_equal(steps_p[1]["arrays"]["bias"], b1_before), "the trainable bias did not train"
    else:
        assert_same(steps_p[1]["arrays"]["bias"], b1_before, "frozen bias")
    assert not np.array_equal(steps_p[5]["arrays"]["weight"], W2_before), "the last weight did not train"
    for i in (1, 5):
        for name in ("weight", "bias"):
            assert_same(steps_p[i]["arrays"][name], steps_h[i]["arrays"][name], f"plan step {i} {name}")


FROM_INPUT = {"leaky_relu", "gelu", "gelu_tanh"}


@pytest.mark.parametrize("activation, slope, normalize", [
    ("relu", 0.01, None), ("leaky_relu", -0.3, None), ("gelu", 0.01, None), ("gelu_tanh", 0.01, "log_softmax"),
    ("sigmoid", 0.01, "softmax"), ("leaky_relu", 0.2, "log_softmax"), (None, 0.01, "softmax")])
def test_dense_on_the_last_axis_of_nd_inputs_trains_like_its_ops(activation, slope, normalize):
    # A dense step with each kind of activation (from its output, from its input) and normalisation
    # on (batch, 3, 4) inputs, then flatten, then a dense step: one training step against the ops.
    rng = np.random.default_rng(5)
    W1, b1 = params(rng, (5, 4), np.float64), params(rng, (5,), np.float64)
    W2 = params(rng, (2, 15), np.float64)
    steps = [dense(W1, b1, activation=activation, negative_slope=slope, normalize=normalize),
             {"kind": "flatten", "arrays": {}, "attrs": {"start_dim": -2}},
             dense(W2, None)]
    plan = _native.Plan(steps, (3, 4), "mse", "sgd", updates_for(steps))
    plan.set_hyper(0.1, 0.0, 0.0, False, 0.0, 0.0, 0.0)
    x = rng.standard_normal((7, 3, 4))
    x2 = x.reshape(21, 4)
    h = _native.linear(x2, W1, b1, activation, slope)
    hn = _native.activation(h, normalize) if normalize else h
    want = _native.linear(hn.reshape(7, 15), W2, None, None)
    assert plan.output_shape == (2,)
    assert_same(plan.predict(x), want, f"predict, dense+{activation}+{normalize} on (batch, 3, 4) then flatten")
    target = rng.standard_normal((7, 2))
    # Backward by hand first (the step updates W1, b1, W2 in place): dense 2, flatten (a view), the
    # normalisation from its output, the activation from its input or output, dense 1.
    loss_h, g = _native.mse(want, target)
    dW2 = np.zeros_like(W2)
    g = _native.linear_backward(g, hn.reshape(7, 15), W2, dW2, None, True).reshape(21, 5)
    if normalize:
        g = _native.activation_backward(g, hn, normalize)
    if activation:
        saved = _native.linear(x2, W1, b1, None) if activation in FROM_INPUT else h
        g = _native.activation_backward(g, saved, activation, slope)
    dW1, db1 = np.zeros_like(W1), np.zeros_like(b1)
    _native.linear_backward(g, x2, W1, dW1, db1, False)
    loss, out = plan.train_step(x, target, 0, True, 0, 0)
    assert_same(out, want, "training output")
    assert loss == loss_h, f"loss {loss!r} vs {loss_h!r}"
    assert_same(steps[0]["arrays"]["weight_grad"], dW1, "dW1")
    assert_same(steps[0]["arrays"]["bias_grad"], db1, "db1")
    assert_same(steps[2]["arrays"]["weight_grad"], dW2, "dW2")


@pytest.mark.parametrize("shape, start, end", [
    ((2, 3, 4), 1, -1), ((2, 3, 4), 2, 3), ((2, 3, 4), 1, 2), ((2, 3, 4), -2, -1), ((2, 3, 4), 0, 0),
    ((2, 3, 4), 3, 3), ((5,), 1, 1), ((1, 28, 28), 1, -1)])
def test_flatten_shapes_follow_pytorch(shape, start, end):
    full = (9,) + shape
    s, e = start % len(full), end % len(full)
    want = full[:s] + (math.prod(full[s:e + 1]),) + full[e + 1:]
    plan = _native.Plan([{"kind": "flatten", "arrays": {}, "attrs": {"start_dim": start, "end_dim": end}}],
                        shape, "mse", "sgd", [])
    assert plan.output_shape == want[1:], f"flatten({start}, {end}) of {full}: {plan.output_shape}, expected {want[1:]}"
    x = np.arange(math.prod(full), dtype=np.float64).reshape(full)
    assert_same(plan.predict(x), x.reshape(want), "flattened values")


def test_one_and_two_threads_agree_bitwise():
    def run(threads):
        before = lamina.get_num_threads()
        lamina.set_num_threads(threads)
        try:
            rng = np.random.default_rng(6)
            W1, b1 = params(rng, (512, 256), np.float32), params(rng, (512,), np.float32)
            W2, b2 = params(rng, (10, 512), np.float32), params(rng, (10,), np.float32)
            steps = [dense(W1, b1, activation="gelu_tanh"), {"kind": "dropout", "arrays": {}, "attrs": {"p": 0.5}},
                     dense(W2, b2, normalize="log_softmax")]
            plan = _native.Plan(steps, (256,), "nll", "adam", updates_for(steps, "adam"))
            plan.set_hyper(1e-3, 0.0, 0.0, False, 0.9, 0.999, 1e-8)
            x = rng.standard_normal((128, 256)).astype(np.float32)
            labels = rng.integers(0, 10, 128)
            losses = [plan.train_step(x, labels, k + 1, False, KEY, k * 128 * plan.random_per_sample) for k in range(2)]
            return losses, [steps[i]["arrays"][n].copy() for i in (0, 2) for n in ("weight", "bias")]
        finally:
            lamina.set_num_threads(before)
    (l1, p1), (l2, p2) = run(1), run(2)
    assert l1 == l2, f"losses {l1} (1 thread) vs {l2} (2 threads)"
    for a, b, name in zip(p1, p2, ["W1", "b1", "W2", "b2"]):
        assert_same(a, b, f"{name} after two steps, 1 vs 2 threads")


def test_labels_targets_and_inputs_are_checked():
    rng = np.random.default_rng(7)
    steps = network(np.float64, rng)
    plan = _native.Plan(steps, (1, 4, 4), "nll", "sgd", updates_for(steps))
    plan.set_hyper(0.1, 0.0, 0.0, False, 0.0, 0.0, 0.0)
    x = rng.standard_normal((3, 1, 4, 4))
    with pytest.raises(ValueError, match=r"labels\[1\] = 5 is out of range for 5 classes"):
        plan.train_step(x, np.array([0, 5, 1]), 0, False, 0, 0)
    with pytest.raises(TypeError, match="nll loss takes int64 class labels"):
        plan.train_step(x, np.zeros((3, 5)), 0, False, 0, 0)
    with pytest.raises(ValueError, match=r"input has shape \(3, 16\) but the plan takes \(batch, \*\(1, 4, 4\)\)"):
        plan.train_step(x.reshape(3, 16), np.array([0, 1, 2]), 0, False, 0, 0)
    with pytest.raises(TypeError, match="float32"):
        plan.train_step(x.astype(np.float32), np.array([0, 1, 2]), 0, False, 0, 0)
    with pytest.raises(ValueError, match="at least one sample"):
        plan.train_step(x[:0], np.array([], np.int64), 0, False, 0, 0)
    with pytest.raises(ValueError, match="key must be in"):
        plan.train_step(x, np.array([0, 1, 2]), 0, False, -1, 0)
    with pytest.raises(ValueError, match="NaN or Inf"):
        plan.predict(np.full((2, 1, 4, 4), np.nan))
    # An input that is an array the step writes.
    grad = steps[1]["arrays"]["weight_grad"]
    with pytest.raises(ValueError, match=r"input shares memory with plan step 1 \(dense\) weight_grad"):
        plan.train_step(grad.reshape(-1)[:16].reshape(1, 1, 4, 4), np.array([0]), 0, False, 0, 0)
    # The loss needs (batch, classes) outputs.
    nd = _native.Plan([dense(params(rng, (2, 4), np.float64))], (3, 4), "mse", "sgd", [])
    nd.set_hyper(0.1, 0.0, 0.0, False, 0.0, 0.0, 0.0)
    assert nd.predict(rng.standard_normal((5, 3, 4))).shape == (5, 3, 2)
    with pytest.raises(ValueError, match=r"2-D \(batch, classes\) output.*\(3, 2\)"):
        nd.train_step(rng.standard_normal((5, 3, 4)), rng.standard_normal((5, 3, 2)), 0, False, 0, 0)


def _plan_of(steps, input_shape=(4,), loss="mse", optimizer="sgd", updates=None):
    return lambda: _native.Plan(steps, input_shape, loss, optimizer, [] if updates is None else updates)


def _overlapping_grad():
    W = np.ones((3, 4))
    first = dense(W)
    second = dense(np.ones((2, 3)))
    second["arrays"]["weight_grad"] = W[:2, :3].copy()
    first["arrays"]["weight_grad"] = W  # the gradient is the weight itself
    return _plan_of([first, second])


def _tied_grads():
    a, b = dense(np.ones((4, 4))), dense(np.ones((4, 4)))
    b["arrays"]["weight_grad"] = a["arrays"]["weight_grad"]
    return _plan_of([a, b])


def _update_not_a_parameter():
    s = dense(np.ones((3, 4)))
    return _plan_of([s], updates=[{"param": np.ones((3, 4)), "grad": s["arrays"]["weight_grad"], "state": []}])


def _update_of_frozen():
    s = dense(np.ones((3, 4)), grads=False)
    return _plan_of([s], updates=[{"param": s["arrays"]["weight"], "grad": np.zeros((3, 4)), "state": []}])


def _update_with_wrong_grad():
    s = dense(np.ones((3, 4)))
    return _plan_of([s], updates=[{"param": s["arrays"]["weight"], "grad": np.zeros((3, 4)), "state": []}])


def _adam_one_state():
    s = dense(np.ones((3, 4)))
    return _plan_of([s], optimizer="adam",
                    updates=[{"param": s["arrays"]["weight"], "grad": s["arrays"]["weight_grad"], "state": [np.zeros((3, 4))]}])


def _state_overlapping_param():
    s = dense(np.ones((3, 4)))
    return _plan_of([s], updates=[{"param": s["arrays"]["weight"], "grad": s["arrays"]["weight_grad"],
                                   "state": [s["arrays"]["weight"]]}])


BAD = {
    "unknown kind": (_plan_of([{"kind": "attention", "arrays": {}, "attrs": {}}]), ValueError,
                     r"plan step 0: unknown kind 'attention'"),
    "missing weight": (_plan_of([{"kind": "dense", "arrays": {"bias": np.ones(3)}, "attrs": {}}]), ValueError,
                       r"plan step 0 \(dense\) needs arrays\['weight'\]"),
    "unknown array": (_plan_of([{"kind": "dense", "arrays": {"weight": np.ones((3, 4)), "kernel": np.ones(3)},
                                 "attrs": {}}]), ValueError, r"plan step 0 \(dense\) has an unknown array 'kernel'"),
    "unknown attr": (_plan_of([{"kind": "dropout", "arrays": {}, "attrs": {"p": 0.5, "rate": 0.5}}]), ValueError,
                     r"plan step 0 \(dropout\) has an unknown attr 'rate'"),
    "unknown key": (_plan_of([{"kind": "flatten", "params": {}}]), ValueError, r"plan step 0 has an unknown key 'params'"),
    "wrong in_features": (_plan_of([dense(np.ones((3, 4))), dense(np.ones((2, 5)))]), ValueError,
                          r"plan step 1 \(dense\) takes inputs of shape \(\*, 5\).*gets \(3,\)"),
    "weight not 2-D": (_plan_of([dense(np.ones(4))]), ValueError, r"plan step 0 \(dense\) weight must be 2-D"),
    "bias of the wrong length": (_plan_of([dense(np.ones((3, 4)), np.ones(4))]), ValueError,
                                 r"plan step 0 \(dense\) bias has shape \(4,\)"),
    "grad of the wrong shape": (_plan_of([{"kind": "dense", "arrays": {"weight": np.ones((3, 4)),
                                                                      "weight_grad": np.ones((4, 3))}}]),
                                ValueError, r"plan step 0 \(dense\) weight_grad has shape \(4, 3\)"),
    "float32 grad of a float64 weight": (_plan_of([{"kind": "dense", "arrays": {"weight": np.ones((3, 4)),
                                                                               "weight_grad": np.ones((3, 4), np.float32)}}]),
                                         TypeError, r"plan step 0 \(dense\) weight_grad has dtype float32"),
    "weight is a list": (_plan_of([{"kind": "dense", "arrays": {"weight": [[1.0] * 4] * 3}}]), TypeError,
                         r"plan step 0 \(dense\) weight must be a NumPy array"),
    "gradient is the weight": (_overlapping_grad(), ValueError,
                               r"plan step 0 \(dense\) weight_grad shares memory with plan step 0 \(dense\) weight"),
    "two steps share a gradient": (_tied_grads(), ValueError,
                                   r"plan step 1 \(dense\) weight_grad shares memory with plan step 0 \(dense\) weight_grad"),
    "unknown activation": (_plan_of([dense(np.ones((3, 4)), activation="swish")]), ValueError,
                           r"plan step 0 \(dense\) activation must be None"),
    "activation not a string": (_plan_of([dense(np.ones((3, 4)), activation=3)]), TypeError,
                                r"plan step 0 \(dense\) attrs\['activation'\] must be None or a string"),
    "activation and normalize both": (_plan_of([{"kind": "activation", "attrs": {"activation": "relu", "normalize": "softmax"}}]),
                                      ValueError, r"plan step 0 \(activation\).*exactly one"),
    "activation step with neither": (_plan_of([{"kind": "activation"}]), ValueError, r"plan step 0 \(activation\).*exactly one"),
    "dropout without p": (_plan_of([{"kind": "dropout"}]), ValueError, r"plan step 0 \(dropout\) needs attrs\['p'\]"),
    "dropout p = 1": (_plan_of([{"kind": "dropout", "attrs": {"p": 1.0}}]), ValueError, r"plan step 0 \(dropout\) p must be in \[0, 1\)"),
    "dropout p a string": (_plan_of([{"kind": "dropout", "attrs": {"p": "0.5"}}]), TypeError, r"plan step 0 \(dropout\) attrs\['p'\] must be a number"),
    "flatten out of range": (_plan_of([{"kind": "flatten", "attrs": {"start_dim": 1, "end_dim": 5}}]), ValueError,
                             r"plan step 0 \(flatten\) start_dim 1, end_dim 5 out of range"),
    "flatten the batch": (_plan_of([{"kind": "flatten", "attrs": {"start_dim": 0}}]), ValueError,
                          r"plan step 0 \(flatten\).*batch dimension"),
    "flatten start after end": (_plan_of([{"kind": "flatten", "attrs": {"start_dim": 2, "end_dim": 1}}], input_shape=(2, 3)),
                                ValueError, r"plan step 0 \(flatten\).*start_dim comes after end_dim"),
    "start_dim past int64": (_plan_of([{"kind": "flatten", "attrs": {"start_dim": 2 ** 70}}]), ValueError,
                             r"plan step 0 \(flatten\) attrs\['start_dim'\] is out of int64's range"),
    "p past double": (_plan_of([{"kind": "dropout", "attrs": {"p": 10 ** 400}}]), ValueError,
                      r"plan step 0 \(dropout\) attrs\['p'\] is out of double's range"),
    "step not a dict": (_plan_of([("dense", np.ones((3, 4)))]), TypeError, r"plan step 0 must be a dict"),
    "no steps": (_plan_of([]), ValueError, "at least one step"),
    "bad input_shape": (_plan_of([{"kind": "flatten"}], input_shape=(0, 3)), ValueError, "input_shape dims must be >= 1"),
    "unknown loss": (_plan_of([{"kind": "flatten"}], loss="hinge"), ValueError, "unknown loss 'hinge'"),
    "unknown optimizer": (_plan_of([{"kind": "flatten"}], optimizer="rmsprop"), ValueError, "unknown optimizer 'rmsprop'"),
    "update of no parameter": (_update_not_a_parameter(), ValueError, r"updates\[0\] param is not the weight or bias"),
    "update of a frozen parameter": (_update_of_frozen(), ValueError, r"updates\[0\] \(plan step 0 \(dense\) weight\) is frozen"),
    "update with another grad": (_update_with_wrong_grad(), ValueError,
                                 r"updates\[0\] \(plan step 0 \(dense\) weight\) grad is not plan step 0 \(dense\) weight_grad"),
    "adam with one state array": (_adam_one_state(), ValueError, r"adam takes \[m, v\]"),
    "state overlapping its parameter": (_state_overlapping_param(), ValueError,
                                        r"updates\[0\] \(plan step 0 \(dense\) weight\) state\[0\] shares memory with plan step 0 \(dense\) weight"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_descriptors_raise_naming_the_step(case):
    call, exc, pattern = BAD[case]
    with pytest.raises(exc, match=pattern):
        call()


def test_train_step_takes_keywords_and_checks_its_arguments():
    rng = np.random.default_rng(8)
    W = params(rng, (3, 4), np.float64)
    plan = _native.Plan([dense(W)], (4,), "cross_entropy", "sgd", [])
    plan.set_hyper(0.1, 0.0, 0.0, False, 0.0, 0.0, 0.0)
    x, labels = rng.standard_normal((2, 4)), np.array([0, 2])
    a = plan.train_step(x=x, target=labels, step=0, want_output=False, key=0, counter=0)
    b = plan.train_step(x, labels, 0, False, counter=0, key=0)
    assert isinstance(a, float) and a == b
    for args, kwargs, pattern in [((x, labels, 0, False, 0), {}, "missing argument 'counter'"),
                                  ((x, labels, 0, False, 0, 0, 0), {}, "takes 6 arguments"),
                                  ((x, labels, 0, False, 0, 0), {"key": 1}, "multiple values for argument 'key'"),
                                  ((x, labels, 0, False, 0), {"seed": 0}, "unexpected keyword argument 'seed'"),
                                  ((x.tolist(), labels, 0, False, 0, 0), {}, "x must be a NumPy array"),
                                  ((x, labels, 0.5, False, 0, 0), {}, "step must be an int"),
                                  ((x, labels, 2 ** 63, False, 0, 0), {}, "out of int64"),
                                  ((x, labels, 0, None, 0, 0), {}, "want_output must be True or False"),
                                  ((x, labels, 0, False, 0.5, 0), {}, "key must be an int")]:
        with pytest.raises(TypeError, match=pattern):
            plan.train_step(*args, **kwargs)
