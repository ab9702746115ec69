"""The workload tools/valgrind.sh runs under memcheck: every native op on each kernel path, 1 and 2
threads, float32 and float64, at sizes that hit edge tiles; the error paths of the bindings (so
exceptions thrown from C++ are checked for leaks too); a plan of every step kind built from
descriptors; a layer model's forward, backward and optimizer steps; the fused training plan; a
save/load round trip; and a fixed set of inputs of the bindings fuzz target (memcheck also sees
reads of uninitialised memory, which ASan does not).
Small sizes: valgrind runs it about 50 times slower than the CPU.

    python tools/valgrind_subset.py [number of fuzz inputs, default 5000]
"""
import os
import random
import sys
import tempfile

import numpy as np

import lamina as lm
from lamina import _native, ops


def every_op(dtype, rng):
    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    # 7 x 19 x 5 is a partial 6 x 16 (or 6 x 8) tile at both edges; transposed and strided operands.
    a, b = r(7, 5), r(5, 19)
    c = r(7, 19)
    for act in (None, "relu", "sigmoid", "tanh"):
        ops.gemm(a, b, c, beta=1.0, bias=r(19), activation=act)
    ops.gemm(r(5, 7), r(19, 5), trans_a=True, trans_b=True)
    ops.gemm(r(14, 10)[::2, ::2], r(5, 19))
    ops.matmul(r(0, 3), r(3, 4))
    ops.gemm(r(3, 0), r(0, 4), bias=r(4))
    x, W = r(9, 13), r(17, 13)
    y = ops.linear(x, W, r(17), activation="relu")
    ops.linear_backward(y, x, W)
    ops.linear_backward(y, x, W, np.zeros_like(W), np.zeros(17, dtype), need_dx=False)
    for name in ("relu", "sigmoid", "tanh", "softmax"):
        out = getattr(ops, name)(x)
        getattr(ops, name + "_backward")(r(*x.shape), out)
    labels = rng.integers(0, 13, 9)
    ops.cross_entropy(x, labels)
    ops.cross_entropy(x, np.eye(13, dtype=dtype)[labels])
    ops.binary_cross_entropy(x, rng.random(x.shape).astype(dtype))
    ops.mse(x, r(*x.shape))
    probs = ops.softmax(x)
    ops.probability_cross_entropy(probs, labels)
    ops.probability_binary_cross_entropy(ops.sigmoid(x), rng.random(x.shape).astype(dtype))
    for kind in ("leaky_relu", "gelu", "gelu_tanh"):
        _native.activation(x, kind, 0.2)
        _native.activation_backward(r(*x.shape), x, kind, 0.2)
        _native.linear(x, W, r(17), kind, 0.2)
    logp = _native.activation(x, "log_softmax")
    _native.activation_backward(r(*x.shape), logp, "log_softmax")
    _native.nll(logp, labels)
    for p_drop in (0.0, 0.5):
        _native.dropout(x, p_drop, 7, 2**64 - 3)
        _native.dropout_backward(x, p_drop, 7, 2**64 - 3)
    _native.dropout_mask(33, 0.5, 1, 2)
    pooling(dtype, rng)
    normalization(dtype, rng)
    plan_steps(dtype, rng)
    p, g = r(33), r(33)
    v = np.zeros_like(p)
    ops.sgd_step(p, g, v, lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    m, s = np.zeros_like(p), np.zeros_like(p)
    ops.adam_step(p, g, m, s, step=1, lr=0.01, weight_decay=0.01)
    # Large enough to be split across two threads (when they are enabled).
    big = r(160, 200)
    ops.linear(big, r(120, 200))


def pooling(dtype, rng):
    """Every pooling op in both layouts, with padding, dilation and ceil_mode at the edges, and
    once large enough for two threads."""
    for layout in ("channels_first", "channels_last"):
        for shape in ((2, 3, 7, 6), (2, 24, 30, 30)):
            x = rng.standard_normal(shape if layout == "channels_first" else (shape[0], *shape[2:], shape[1]))
            x = x.astype(dtype)
            y, idx = ops.max_pool2d(x, kernel=(3, 2), stride=(2, 2), padding=(1, 1, 0, 1), dilation=(1, 2),
                                    ceil_mode=True, layout=layout)
            ops.max_pool2d_backward(y, idx, x.shape, layout=layout)
            for cip in (True, False):
                a = ops.avg_pool2d(x, kernel=(3, 3), stride=(2, 1), padding=(1, 1, 1, 0), ceil_mode=True,
                                   count_include_pad=cip, layout=layout)
                ops.avg_pool2d_backward(a, x.shape, kernel=(3, 3), stride=(2, 1), padding=(1, 1, 1, 0),
                                        ceil_mode=True, count_include_pad=cip, divisor_override=None if cip else 5,
                                        layout=layout)
            ad = ops.adaptive_avg_pool2d(x, (4, 5), layout=layout)
            ops.adaptive_avg_pool2d_backward(ad, x.shape, layout=layout)


def normalization(dtype, rng):
    """Batch norm in both layouts (long runs and rows of channels, odd sizes: the vector loops'
    tails), training with running statistics and a fused ReLU, inference, backward in both modes;
    layer norm over one and two dims; once large enough for two threads."""
    for shape, axis in (((3, 5, 7, 9), 1), ((3, 7, 9, 5), -1), ((5, 3), 1), ((4, 24, 30, 30), 1),
                        ((4, 30, 30, 24), -1)):
        x = (rng.standard_normal(shape) + 2).astype(dtype)
        c = shape[axis]
        w, b = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
        rm, rv = np.zeros(c, dtype), np.ones(c, dtype)
        y, mean, invstd = ops.batch_norm(x, w, b, rm, rv, axis=axis, activation="relu", unbiased=False)
        dy = rng.standard_normal(shape).astype(dtype)
        ops.batch_norm_backward(dy, x, mean, invstd, w, axis=axis, relu_output=y)
        y, mean, invstd = ops.batch_norm(x, None, None, rm, rv, training=False, axis=axis)
        ops.batch_norm_backward(dy, x, mean, invstd, training=False, axis=axis)
    for shape, dims in (((3, 4, 37), (37,)), ((2, 5, 3, 7), (3, 7)), ((700, 300), (300,))):
        x = rng.standard_normal(shape).astype(dtype)
        w, b = rng.standard_normal(dims).astype(dtype), rng.standard_normal(dims).astype(dtype)
        y, mean, invstd = ops.layer_norm(x, dims, w, b)
        ops.layer_norm_backward(rng.standard_normal(shape).astype(dtype), x, mean, invstd, dims, w)
        ops.layer_norm(x, dims)


def plan_steps(dtype, rng):
    """A plan of every step kind (flatten, dense with a fused GELU and with log_softmax, dropout,
    a standalone activation, a frozen weight), trained with Adam and SGD, and its prediction."""
    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    W1, b1, W2, b2 = r(9, 12), r(9), r(4, 9), r(4)
    steps = [{"kind": "flatten", "arrays": {}, "attrs": {}},
             {"kind": "dense", "arrays": {"weight": W1, "bias": b1, "weight_grad": None, "bias_grad": np.zeros_like(b1)},
              "attrs": {"activation": "gelu"}},
             {"kind": "dropout", "arrays": {}, "attrs": {"p": 0.25}},
             {"kind": "activation", "arrays": {}, "attrs": {"activation": "leaky_relu", "negative_slope": -0.1}},
             {"kind": "dense", "arrays": {"weight": W2, "bias": b2, "weight_grad": np.zeros_like(W2),
                                          "bias_grad": np.zeros_like(b2)},
              "attrs": {"normalize": "log_softmax"}}]
    trained = [(b1, steps[1]["arrays"]["bias_grad"]), (W2, steps[4]["arrays"]["weight_grad"]),
               (b2, steps[4]["arrays"]["bias_grad"])]
    for optimizer, state in (("adam", 2), ("sgd", 1)):
        updates = [{"param": p, "grad": g, "state": [np.zeros_like(p) for _ in range(state)]} for p, g in trained]
        plan = _native.Plan(steps, (3, 4), "nll", optimizer, updates)
        plan.set_hyper(0.01, 0.9 if optimizer == "sgd" else 0.0, 0.0, False, 0.9, 0.999, 1e-8)
        for step, batch in enumerate((5, 5, 2)):
            plan.train_step(r(batch, 3, 4), rng.integers(0, 4, batch), step + 1, step == 0, 11, step * 100)
        plan.predict(r(6, 3, 4))
    # dense on the last axis, then each pooling step, flatten and a dense with its loss.
    for kind, attrs in (("max_pool2d", {"kernel_h": 2, "kernel_w": 3, "stride_h": 2, "stride_w": 1, "pad_left": 1,
                                        "pad_right": 1, "dilation_w": 2, "ceil_mode": True}),
                        ("avg_pool2d", {"kernel_h": 3, "kernel_w": 2, "stride_h": 2, "stride_w": 2, "pad_top": 1,
                                        "pad_bottom": 1, "count_include_pad": False}),
                        ("adaptive_avg_pool2d", {"out_h": 2, "out_w": 3})):
        for layout, shape in (("channels_first", (3, 5, 6)), ("channels_last", (5, 6, 3))):
            W0, b0 = r(shape[-1], shape[-1]), r(shape[-1])
            pool = {"kind": kind, "arrays": {}, "attrs": {**attrs, "layout": layout}}
            probe = _native.Plan([pool], shape, "mse", "sgd", [])
            W3 = r(4, int(np.prod(probe.output_shape)))
            steps = [{"kind": "dense", "arrays": {"weight": W0, "bias": b0, "weight_grad": np.zeros_like(W0),
                                                  "bias_grad": None}, "attrs": {"activation": "relu"}},
                     pool, {"kind": "flatten", "arrays": {}, "attrs": {}},
                     {"kind": "dense", "arrays": {"weight": W3, "bias": None, "weight_grad": np.zeros_like(W3)},
                      "attrs": {}}]
            updates = [{"param": W0, "grad": steps[0]["arrays"]["weight_grad"], "state": []},
                       {"param": W3, "grad": steps[3]["arrays"]["weight_grad"], "state": []}]
            plan = _native.Plan(steps, shape, "cross_entropy", "sgd", updates)
            plan.set_hyper(0.01, 0.0, 0.0, False, 0.9, 0.999, 1e-8)
            for batch in (3, 1):
                plan.train_step(r(batch, *shape), rng.integers(0, 4, batch), 1, False, 0, 0)
            plan.predict(r(2, *shape))
    plan_normalization(dtype, rng)


def plan_normalization(dtype, rng):
    """conv2d + batch norm + ReLU (folded into the convolution in predict, and not), layer norm,
    every stats mode, momentum None; the batch-of-one refusal."""
    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    for layout, shape, axis in (("channels_first", (3, 5, 4), 0), ("channels_last", (5, 4, 3), -1)):
        for stats in ("batch", "batch_always", "running"):
            W = r(4, 3, 3, 3) if layout == "channels_first" else r(3, 3, 3, 4)
            running = stats != "batch_always"
            bn = {"kind": "batch_norm",
                  "arrays": {"weight": r(4) + 1, "bias": r(4), "weight_grad": np.zeros(4, dtype),
                             "bias_grad": np.zeros(4, dtype),
                             "running_mean": r(4) if running else None,
                             "running_var": np.abs(r(4)) + 1 if running else None,
                             "num_batches_tracked": np.zeros((), np.int64) if running else None},
                  "attrs": {"axis": axis, "momentum": None, "stats": stats, "activation": "relu"}}
            ln = {"kind": "layer_norm", "arrays": {"weight": r(4), "bias": None, "weight_grad": np.zeros(4, dtype)},
                  "attrs": {"normalized_dims": 1}}
            W3 = r(3, 4 * 3 * 4)  # (Cout, Ho, Wo) = (4, 3, 4)
            steps = [{"kind": "conv2d", "arrays": {"weight": W, "bias": r(4), "weight_grad": np.zeros_like(W)},
                      "attrs": {"pad_left": 1, "pad_right": 1, "layout": layout}},
                     bn, ln, {"kind": "flatten", "arrays": {}, "attrs": {}},
                     {"kind": "dense", "arrays": {"weight": W3, "bias": None, "weight_grad": np.zeros_like(W3)},
                      "attrs": {"normalize": "log_softmax"}}]
            updates = [{"param": s["arrays"][p], "grad": s["arrays"][p + "_grad"], "state": []}
                       for s in steps for p in ("weight", "bias")
                       if s["arrays"].get(p) is not None and s["arrays"].get(p + "_grad") is not None]
            for fuse in (True, False):
                plan = _native.Plan(steps, shape, "nll", "sgd", updates, fuse=fuse)
                plan.set_hyper(0.01, 0.0, 0.0, False, 0.9, 0.999, 1e-8)
                for batch in (3, 2):
                    plan.train_step(r(batch, *shape), rng.integers(0, 3, batch), 1, False, 0, 0)
                plan.predict(r(2, *shape))
    bn = {"kind": "batch_norm", "arrays": {"running_mean": np.zeros(3, dtype), "running_var": np.ones(3, dtype)},
          "attrs": {}}
    plan = _native.Plan([bn], (3,), "mse", "sgd", [])
    plan.set_hyper(0.01, 0.0, 0.0, False, 0.9, 0.999, 1e-8)
    try:
        plan.train_step(r(1, 3), r(1, 3), 1, False, 0, 0)
        raise AssertionError("a batch of one value per channel was not refused")
    except ValueError:
        pass


def error_paths():
    """Calls the bindings refuse: each throws from C++ through pybind11."""
    f = np.ones((3, 4))
    bad = [
        lambda: _native.gemm(np.ones((3, 3)), f, f, None, 1.0, 0.0, None),
        lambda: _native.gemm(np.zeros((2, 2), "V0"), np.zeros((2, 2), "V0"), np.zeros((2, 2), "V0"), None, 1.0, 0.0, None),
        lambda: _native.linear(f, np.ones((2, 5)), None, "gelu"),
        lambda: _native.linear(np.ones((4, 6))[:, ::2], np.ones((2, 3)), None, None),
        lambda: _native.activation(np.frombuffer(bytes(33), np.uint8)[1:].view(np.float64).reshape(4, 1), "relu"),
        lambda: _native.cross_entropy(f, np.array([0, 9, 1])),
        lambda: _native.sgd_step(f, f, None, 0.1, 0.9, 0.0, False),
        lambda: _native.adam_step(f, f, f, f, 0, 0.1, 0.9, 0.999, 1e-8, 0.0),
        lambda: _native.Plan([{"kind": "dense", "arrays": {"weight": f, "weight_grad": np.zeros_like(f)}}], (4,), "mse",
                             "adam", [{"param": f, "grad": np.zeros_like(f), "state": [f.copy(), None]}]),
        lambda: _native.Plan([{"kind": "conv", "arrays": {}, "attrs": {}}], (4,), "mse", "sgd", []),
        lambda: _native.dropout(f, 1.0, 0, 0),
        lambda: _native.nll(f, np.array([0, 9, 1])),
        lambda: _native.set_num_threads(0),
        lambda: _native.set_isa("sse9"),
        lambda: _native.max_pool2d(np.ones((1, 1, 3, 3)), (4, 4), (1, 1), (0, 0, 0, 0), (1, 1), False, "channels_first"),
        lambda: _native.max_pool2d_backward(np.ones((1, 1, 1, 1)), np.full((1, 1, 1, 1), 9), (1, 1, 3, 3),
                                            "channels_first"),
        lambda: _native.avg_pool2d(np.ones((1, 1, 3, 3)), (2, 2), (1, 1), (0, 0, 0, 3), False, True, None,
                                   "channels_last"),
        lambda: _native.adaptive_avg_pool2d_backward(np.ones((1, 1, 2, 2)), (1, 1, 3), "channels_first"),
        lambda: _native.batch_norm(f, None, None, None, None, True, 0.1, 0.0, 1, True, None),
        lambda: _native.batch_norm(f, None, None, np.zeros(4), None, True, 0.1, 1e-5, 1, True, None),
        lambda: _native.batch_norm_backward(f, f, np.zeros(3), np.ones(4), None, True, 1, None),
        lambda: _native.layer_norm(f, 3, None, None, 1e-5),
        lambda: _native.layer_norm_backward(f, f, np.zeros(3), np.ones(3), 1, np.ones(3)),
        lambda: _native.Plan([{"kind": "max_pool2d", "arrays": {}, "attrs": {"kernel_h": 9, "kernel_w": 1,
                                                                            "stride_h": 1, "stride_w": 1}}],
                             (1, 3, 3), "mse", "sgd", []),
    ]
    for i, call in enumerate(bad):
        try:
            call()
        except (TypeError, ValueError):
            pass
        else:
            raise AssertionError(f"bad call {i} was accepted")


def model_round_trip(tmp):
    lm.manual_seed(0)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((24, 8)).astype(np.float32), rng.integers(0, 4, 24)
    model = lm.Sequential(lm.Linear(8, 6), lm.ReLU(), lm.Linear(6, 6), lm.Tanh(), lm.Linear(6, 4))
    loss_fn = lm.CrossEntropyLoss()
    for opt in (lm.SGD(model.parameters(), lr=0.1, momentum=0.9), lm.Adam(model.parameters())):
        for _ in range(3):
            model.zero_grad()
            loss_fn(model(x), y)
            model.backward(loss_fn.backward())
            opt.step()
    keras = lm.Sequential([lm.Dense(6, input_shape=(8,), activation="relu"), lm.Dense(4, activation="softmax")])
    keras.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    keras.fit(x, y, epochs=2, batch_size=8, verbose=0)  # the fused native plan
    keras.predict(x)
    path = os.path.join(tmp, "model.npz")
    lm.save(keras, path, optimizer=keras.optimizer)
    again, opt = lm.load(path, with_optimizer=True)
    np.testing.assert_array_equal(again.predict(x), keras.predict(x))
    again.fit(x, y, epochs=1, batch_size=8, verbose=0)
    with open(path, "r+b") as f:  # a damaged file must fail cleanly
        f.seek(100)
        f.write(b"\xff" * 16)
    try:
        lm.load(path)
    except ValueError:
        pass


def fuzz_inputs(count):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "fuzz"))
    from fuzz_targets import bindings_target

    rng = random.Random(0)
    for _ in range(count):
        bindings_target(bytes(rng.randrange(256) for _ in range(rng.randrange(300))))


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    rng = np.random.default_rng(0)
    # Under valgrind the CPU reports no AVX-512 (valgrind cannot run it), so that path drops out.
    info = _native.build_info()
    paths = [isa for isa, flag in (("avx512", "cpu_avx512"), ("avx2", "cpu_avx2_fma"), ("generic", None))
             if flag is None or info.get(flag)]
    for isa in paths:
        _native.set_isa(isa)
        for threads in (1, 2):
            lm.set_num_threads(threads)
            for dtype in (np.float32, np.float64):
                every_op(dtype, rng)
    error_paths()
    with tempfile.TemporaryDirectory() as tmp:
        model_round_trip(tmp)
    fuzz_inputs(count)
    print(f"valgrind subset: done ({', '.join(paths)} kernels, {count} fuzz inputs, lamina from {_native.__file__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
