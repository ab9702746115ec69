"""Convolutional networks and their layers: one training step of Keras's simple MNIST convnet (batch
128, Adam) and of LeNet-5 (batch 64, SGD), and a 3x3 convolution 64 -> 64 channels on 56x56 images
(batch 8) forward and forward + backward, in both layouts. lamina beside PyTorch and (for the
convnet) Keras, one group per case, 1 and 2 threads; every library starts from the same weights.

Run: python -m pytest benches/bench_conv.py --benchmark-only"""
import numpy as np
import pytest

from lamina.examples.mnist import build_model, torch_model

LR = 0.01


# ---- Keras's simple MNIST convnet -----------------------------------------------------------------

def convnet_flops(batch):
    # forward products: conv1 26x26x32 outputs of 9 terms, conv2 11x11x64 of 288, dense 10 of 1600;
    # a training step does each product three times (forward, dx, dW; conv1 needs no dx: counted anyway)
    macs = 26 * 26 * 32 * 9 + 11 * 11 * 64 * 288 + 1600 * 10
    return 3 * 2 * batch * macs


def keras_convnet_step(lm, lib, rng, build, to_torch, batch=128):
    """One training step (Adam, categorical cross-entropy) of a Keras convnet on MNIST-shaped data:
    `build(keras_module)` makes it in lamina's Keras dialect or in Keras, `to_torch(torch, weights)`
    the same network in PyTorch from Keras-layout weights; all three start from the same weights."""
    x = rng.random((batch, 28, 28, 1), dtype="float32")
    labels = rng.integers(0, 10, size=batch)
    onehot = np.eye(10, dtype=np.float32)[labels]
    lm.manual_seed(0)
    model = build(lm.keras)
    weights = model.get_weights()
    if lib.name == "lamina":
        model.compile(loss="categorical_crossentropy", optimizer="adam")
        return lambda: model.train_step(x, onehot)
    if lib.name == "torch":
        torch = lib.mod
        net = to_torch(torch, weights).train()
        opt, loss_fn = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7), torch.nn.CrossEntropyLoss()
        tx, ty = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), torch.from_numpy(labels)

        def fn():
            opt.zero_grad()
            loss = loss_fn(net(tx), ty)
            loss.backward()
            opt.step()
            return loss
        return fn
    keras = lib.mod  # its thread count is fixed when its backend starts: the threads setting is moot
    net = build(keras)
    net.set_weights(weights)
    net.compile(loss="categorical_crossentropy", optimizer="adam")
    return lambda: net.train_on_batch(x, onehot)


@pytest.mark.parametrize("lib", ["lamina", "torch", "keras"], indirect=True)
def test_mnist_convnet_step(lm, measure, lib, rng):
    fn = keras_convnet_step(lm, lib, rng, build_model, torch_model)
    measure(fn, group="train step Keras MNIST convnet batch 128", flops=convnet_flops(128), batch=128)


# ---- LeNet-5 ---------------------------------------------------------------------------------------

def lenet(nn):
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 4 * 4, 120), nn.ReLU(),
                         nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


@pytest.mark.parametrize("lib", ["lamina", "torch"], indirect=True)
def test_lenet_step(lm, measure, lib, rng):
    batch = 64
    x = rng.random((batch, 1, 28, 28), dtype="float32")
    y = rng.integers(0, 10, size=batch)
    lm.manual_seed(0)
    model = lenet(lm.nn)
    if lib.name == "lamina":
        model.compile(optimizer=lm.SGD(model.parameters(), lr=LR), loss=lm.CrossEntropyLoss())
        fn = lambda: model.train_step(x, y)
    else:
        torch = lib.mod
        net = lenet(torch.nn)
        net.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
        opt, loss_fn = torch.optim.SGD(net.parameters(), lr=LR), torch.nn.CrossEntropyLoss()
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def fn():
            opt.zero_grad()
            loss = loss_fn(net(tx), ty)
            loss.backward()
            opt.step()
            return loss
    macs = 24 * 24 * 6 * 25 + 8 * 8 * 16 * 150 + 256 * 120 + 120 * 84 + 84 * 10
    measure(fn, group="train step LeNet-5 batch 64", flops=3 * 2 * batch * macs, batch=batch)


# ---- one 3x3 convolution ----------------------------------------------------------------------------

CONV = dict(batch=8, channels=64, size=56)


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "forward+backward"])
@pytest.mark.parametrize("lib", ["lamina", "torch"], indirect=True)
def test_conv3x3(lm, measure, lib, rng, layout, backward):
    n, c, s = CONV["batch"], CONV["channels"], CONV["size"]
    x = rng.standard_normal((n, c, s, s), dtype="float32")
    w = (rng.standard_normal((c, c, 3, 3), dtype="float32") * 0.05)
    b = rng.standard_normal(c, dtype="float32")
    dy = rng.standard_normal((n, c, s, s), dtype="float32")
    attrs = dict(stride=(1, 1), padding=(1, 1, 1, 1), dilation=(1, 1), groups=1, layout=layout)
    if lib.name == "lamina":
        ops = lm.ops
        if layout == "channels_last":  # NHWC data, Keras's (kh, kw, in, out) kernel
            x, dy = (np.ascontiguousarray(a.transpose(0, 2, 3, 1)) for a in (x, dy))
            w = np.ascontiguousarray(w.transpose(2, 3, 1, 0))
        dW, db = np.zeros_like(w), np.zeros_like(b)

        def fn():
            y = ops.conv2d(x, w, b, activation="relu", **attrs)
            if backward:
                ops.conv2d_backward(dy, x, w, dW=dW, db=db, **attrs)
            return y
    else:
        torch = lib.mod
        fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
        tx = torch.from_numpy(x).contiguous(memory_format=fmt).requires_grad_(backward)
        tw = torch.from_numpy(w).contiguous(memory_format=fmt).requires_grad_(backward)
        tb = torch.from_numpy(b).requires_grad_(backward)
        tdy = torch.from_numpy(dy).contiguous(memory_format=fmt)

        def fn():
            if not backward:
                with torch.no_grad():
                    return torch.relu(torch.nn.functional.conv2d(tx, tw, tb, padding=1))
            y = torch.relu(torch.nn.functional.conv2d(tx, tw, tb, padding=1))
            y.backward(tdy)
            return y
    flops = 2 * n * s * s * c * c * 9 * (3 if backward else 1)
    name = "forward + backward" if backward else "forward"
    measure(fn, group=f"conv 3x3 64->64 56x56 batch 8 {layout} {name}", flops=flops, layout=layout)
