"""Recurrent layers on their native ops (lamina.ops, time-major) beside torch.nn.LSTM / GRU (oneDNN
or its own CPU kernels), the same weights, 1 and 2 threads: LSTM and GRU with input 256, hidden 256,
batch 16, 150 steps, forward + backward (the gradients of x, h0 and every parameter), and an LSTM
with hidden 512, batch 16, 25 steps, inference.

Run: python -m pytest benches/bench_recurrent.py --benchmark-only"""
import numpy as np
import pytest

GATES = {"lstm": 4, "gru": 3}


def layer_flops(cell, T, N, I, H, backward):
    """2 * multiply-adds of the products: forward x W_ih^T and h W_hh^T; backward the same two
    through W (dx, dh) and the two weight gradients."""
    macs = T * N * GATES[cell] * H * (I + H)
    return 2 * macs * (3 if backward else 1)


def setup(lib, rng, cell, T, N, I, H, backward):
    G = GATES[cell]
    scale = 1.0 / np.sqrt(H)
    x = rng.standard_normal((T, N, I), dtype="float32")
    w_ih = (rng.standard_normal((G * H, I)) * scale).astype("float32")
    w_hh = (rng.standard_normal((G * H, H)) * scale).astype("float32")
    b_ih = (rng.standard_normal(G * H) * scale).astype("float32")
    b_hh = (rng.standard_normal(G * H) * scale).astype("float32")
    dy = rng.standard_normal((T, N, H), dtype="float32")
    if lib.name == "lamina":
        ops = lib.mod.ops
        grads = [np.zeros_like(a) for a in (w_ih, w_hh, b_ih, b_hh)]
        named = dict(zip(("dW_ih", "dW_hh", "db_ih", "db_hh"), grads))
        if cell == "lstm":
            def fn():
                y, h_n, c_n, ws = ops.lstm(x, None, None, w_ih, w_hh, b_ih, b_hh)
                if backward:
                    ops.lstm_backward(dy, None, None, x, None, None, w_ih, w_hh, y, ws, **named)
                return y
        else:
            def fn():
                y, h_n, ws = ops.gru(x, None, w_ih, w_hh, b_ih, b_hh)
                if backward:
                    ops.gru_backward(dy, None, x, None, w_ih, w_hh, y, ws, **named)
                return y
        return fn
    torch = lib.mod
    module = getattr(torch.nn, cell.upper())(I, H)
    with torch.no_grad():
        for name, a in (("weight_ih_l0", w_ih), ("weight_hh_l0", w_hh), ("bias_ih_l0", b_ih),
                        ("bias_hh_l0", b_hh)):
            getattr(module, name).copy_(torch.from_numpy(a))
    tx, tdy = torch.from_numpy(x).requires_grad_(backward), torch.from_numpy(dy)

    def fn():
        if not backward:
            with torch.no_grad():
                return module(tx)[0]
        y = module(tx)[0]
        y.backward(tdy)
        return y
    return fn


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("lib", ["lamina", "torch"], indirect=True)
def test_recurrent_training(measure, lib, rng, cell):
    T, N, I, H = 150, 16, 256, 256
    fn = setup(lib, rng, cell, T, N, I, H, backward=True)
    measure(fn, group=f"{cell.upper()} input 256 hidden 256 batch 16 150 steps forward + backward",
            flops=layer_flops(cell, T, N, I, H, True), rounds=10)


@pytest.mark.parametrize("lib", ["lamina", "torch"], indirect=True)
def test_lstm_inference(measure, lib, rng):
    T, N, I, H = 25, 16, 512, 512
    fn = setup(lib, rng, "lstm", T, N, I, H, backward=False)
    measure(fn, group="LSTM hidden 512 batch 16 25 steps inference",
            flops=layer_flops("lstm", T, N, I, H, False), rounds=30)
