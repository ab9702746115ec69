"""A dense layer's products at the shapes (batch, in, out) users train: the forward with bias and ReLU,
and the full backward (dx, dW, db). lamina's fused ops beside the NumPy and PyTorch code a user
would write, one group per shape and direction, 1 and 2 threads, float32.

Run: python -m pytest benches/bench_dense.py --benchmark-only"""
import pytest

SHAPES = [
    (64, 784, 30),
    (256, 784, 256),
    (1024, 1024, 1024),
    pytest.param(512, 4096, 4096, marks=pytest.mark.heavy),
]
HEAVY_ROUNDS = 5  # about 0.2-0.4 s per call at (512, 4096, 4096); calibration would take far longer


def _rounds(batch, n_in, n_out):
    return HEAVY_ROUNDS if batch * n_in * n_out >= 512 * 4096 * 4096 else None


def _shape_name(batch, n_in, n_out):
    return f"{batch}x{n_in}x{n_out}"


@pytest.mark.parametrize("batch, n_in, n_out", SHAPES)
def test_dense_forward(measure, lib, rng, batch, n_in, n_out):
    x = rng.standard_normal((batch, n_in), dtype="float32")
    W = rng.standard_normal((n_out, n_in), dtype="float32")
    b = rng.standard_normal(n_out, dtype="float32")
    if lib.name == "lamina":
        linear = lib.mod.ops.linear
        fn = lambda: linear(x, W, b, activation="relu")
    elif lib.name == "numpy":
        maximum = lib.mod.maximum
        fn = lambda: maximum(x @ W.T + b, 0)
    else:
        torch = lib.mod
        tx, tW, tb = torch.from_numpy(x), torch.from_numpy(W), torch.from_numpy(b)
        F = torch.nn.functional
        fn = lambda: torch.relu(F.linear(tx, tW, tb))
    measure(fn, group=f"dense forward {_shape_name(batch, n_in, n_out)}",
            flops=2 * batch * n_in * n_out, size=(batch, n_in, n_out), dtype="float32",
            rounds=_rounds(batch, n_in, n_out))


@pytest.mark.parametrize("batch, n_in, n_out", SHAPES)
def test_dense_backward(measure, lib, rng, batch, n_in, n_out):
    x = rng.standard_normal((batch, n_in), dtype="float32")
    W = rng.standard_normal((n_out, n_in), dtype="float32")
    dy = rng.standard_normal((batch, n_out), dtype="float32")
    if lib.name == "lamina":
        linear_backward = lib.mod.ops.linear_backward
        fn = lambda: linear_backward(dy, x, W)
    elif lib.name == "numpy":
        fn = lambda: (dy @ W, dy.T @ x, dy.sum(0))
    else:
        tdy, tx, tW = (lib.mod.from_numpy(t) for t in (dy, x, W))
        fn = lambda: (tdy @ tW, tdy.T @ tx, tdy.sum(0))
    # dx and dW are one product each of the forward's size; db is negligible.
    measure(fn, group=f"dense backward {_shape_name(batch, n_in, n_out)}",
            flops=4 * batch * n_in * n_out, size=(batch, n_in, n_out), dtype="float32",
            rounds=_rounds(batch, n_in, n_out))
