"""Normalization layers' kernels: batch norm in training (batch statistics, running statistics
updated, forward then backward) on a ResNet-sized activation (8, 64, 56, 56) in both layouts, and
layer norm forward then backward on a transformer-sized one (64, 128, 768): lamina.ops beside
torch.nn.functional, float32, 1 and 2 threads, one group per case. Then whole models: a conv 3x3 +
BatchNorm + ReLU block in inference (64 channels, 56x56, batch 8; lamina folds the batch norm into the
convolution's write-back) beside PyTorch in eval mode, and one training step of Keras's simple MNIST
convnet with a BatchNormalization after each convolution (batch 128, Adam) beside PyTorch and Keras.

Run: python -m pytest benches/bench_normalization.py --benchmark-only"""
import numpy as np
import pytest
from bench_conv import keras_convnet_step

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


# ---- models with batch norm -------------------------------------------------------------------------

BLOCK = dict(batch=8, channels=64, size=56)


def conv_bn_relu(nn, channels):
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU())


@pytest.mark.parametrize("lib", ["lamina", "torch"], indirect=True)
def test_conv_bn_relu_inference(lm, measure, lib, rng):
    n, c, s = BLOCK["batch"], BLOCK["channels"], BLOCK["size"]
    x = rng.standard_normal((n, c, s, s), dtype="float32")
    lm.manual_seed(0)
    model = conv_bn_relu(lm.nn, c)
    model.train()  # running statistics that are not the initial ones: a few training-mode batches
    for _ in range(3):
        model(x)
    model.eval()
    if lib.name == "lamina":
        fn = lambda: model.predict(x)
    else:
        torch = lib.mod
        net = conv_bn_relu(torch.nn, c).eval()
        net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in model.state_dict().items()})
        tx = torch.from_numpy(x)

        def fn():
            with torch.no_grad():
                return net(tx)
    flops = 2 * n * s * s * c * c * 9
    measure(fn, group="conv 3x3 + BatchNorm + ReLU block 64ch 56x56 batch 8, inference", flops=flops)


def keras_bn_convnet(k):
    """Keras's simple MNIST convnet with a BatchNormalization after each convolution."""
    return k.Sequential([
        k.Input(shape=(28, 28, 1)),
        k.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"), k.layers.BatchNormalization(),
        k.layers.MaxPooling2D(pool_size=(2, 2)),
        k.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"), k.layers.BatchNormalization(),
        k.layers.MaxPooling2D(pool_size=(2, 2)),
        k.layers.Flatten(), k.layers.Dropout(0.5), k.layers.Dense(10, activation="softmax"),
    ])


def torch_bn_convnet(torch, weights):
    """The same network in PyTorch (NCHW), from Keras-layout weights; Keras's epsilon and momentum."""
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.BatchNorm2d(32, eps=1e-3, momentum=0.01), nn.MaxPool2d(2),
                        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.BatchNorm2d(64, eps=1e-3, momentum=0.01), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Dropout(0.5), nn.Linear(1600, 10))
    k1, b1, g1, be1, _, _, k2, b2, g2, be2, _, _, k3, b3 = weights
    dense = k3.reshape(5, 5, 64, 10).transpose(3, 2, 0, 1).reshape(10, 1600)
    params = (k1.transpose(3, 2, 0, 1), b1, g1, be1, k2.transpose(3, 2, 0, 1), b2, g2, be2, dense, b3)
    with torch.no_grad():
        for p, w in zip(net.parameters(), params):
            p.copy_(torch.from_numpy(np.ascontiguousarray(w)))
    return net


@pytest.mark.parametrize("lib", ["lamina", "torch", "keras"], indirect=True)
def test_mnist_bn_convnet_step(lm, measure, lib, rng):
    fn = keras_convnet_step(lm, lib, rng, keras_bn_convnet, torch_bn_convnet)
    measure(fn, group="train step Keras MNIST convnet + BatchNormalization batch 128", batch=128)
