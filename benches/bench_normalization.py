"""Normalization layers' kernels: batch norm in training (batch statistics, running statistics
updated, forward then backward) on a ResNet-sized activation (8, 64, 56, 56) in both layouts, and
layer norm forward then backward on a transformer-sized one (64, 128, 768): lamina.ops beside
torch.nn.functional, float32, 1 and 2 threads, one group per case.

Run: python -m pytest benches/bench_normalization.py --benchmark-only"""
import numpy as np
import pytest

BN = dict(batch=8, channels=64, size=56)
LN = (64, 128, 768)


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
@pytest.mark.parametrize("lib", ["lamina", "torch"], indirect=True)
def test_batch_norm2d_training_forward_backward(lm, measure, lib, rng, layout):
    n, c, s = BN["batch"], BN["channels"], BN["size"]
    x = rng.standard_normal((n, c, s, s), dtype="float32") * 2 + 1
    dy = rng.standard_normal((n, c, s, s), dtype="float32")
    w, b = rng.standard_normal(c, dtype="float32"), rng.standard_normal(c, dtype="float32")
    rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)
    if lib.name == "lamina":
        ops = lm.ops
        axis = 1
        if layout == "channels_last":
            x, dy = (np.ascontiguousarray(a.transpose(0, 2, 3, 1)) for a in (x, dy))
            axis = -1

        def fn():
            y, mean, invstd = ops.batch_norm(x, w, b, rm, rv, training=True, axis=axis)
            return y, ops.batch_norm_backward(dy, x, mean, invstd, w, axis=axis)
    else:
        torch = lib.mod
        fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
        tx = torch.from_numpy(x).contiguous(memory_format=fmt).requires_grad_()
        tdy = torch.from_numpy(dy).contiguous(memory_format=fmt)
        tw, tb = torch.from_numpy(w).requires_grad_(), torch.from_numpy(b).requires_grad_()
        trm, trv = torch.from_numpy(rm), torch.from_numpy(rv)

        def fn():
            tx.grad = tw.grad = tb.grad = None  # fresh gradients, as lamina returns them
            y = torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, training=True, momentum=0.1, eps=1e-5)
            y.backward(tdy)
            return y
    measure(fn, group=f"batch norm 2d training (8, 64, 56, 56) {layout} forward + backward", layout=layout)


@pytest.mark.parametrize("lib", ["lamina", "torch"], indirect=True)
def test_layer_norm_forward_backward(lm, measure, lib, rng):
    x = rng.standard_normal(LN, dtype="float32")
    dy = rng.standard_normal(LN, dtype="float32")
    d = LN[-1]
    w, b = rng.standard_normal(d, dtype="float32"), rng.standard_normal(d, dtype="float32")
    if lib.name == "lamina":
        ops = lm.ops

        def fn():
            y, mean, invstd = ops.layer_norm(x, d, w, b)
            return y, ops.layer_norm_backward(dy, x, mean, invstd, d, w)
    else:
        torch = lib.mod
        tx = torch.from_numpy(x).requires_grad_()
        tdy = torch.from_numpy(dy)
        tw, tb = torch.from_numpy(w).requires_grad_(), torch.from_numpy(b).requires_grad_()

        def fn():
            tx.grad = tw.grad = tb.grad = None
            y = torch.nn.functional.layer_norm(tx, (d,), tw, tb, eps=1e-5)
            y.backward(tdy)
            return y
    measure(fn, group="layer norm (64, 128, 768) forward + backward")
