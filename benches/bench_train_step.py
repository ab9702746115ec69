"""One SGD training step (forward, softmax cross-entropy, backward, update) of the networks users start
from, and predict of one sample: lamina's fused native step beside its layer-by-layer Python path, a
hand-written NumPy step, PyTorch and (when installed) Keras, one group per network, 1 and 2 threads.

Every library starts from the same float32 weights. The last layer gives logits and the softmax lives
in the loss (lamina/PyTorch CrossEntropyLoss, Keras from_logits=True), so all compute the same math.
Run: python -m pytest benches/bench_train_step.py --benchmark-only"""
import numpy as np
import pytest

LR = 0.01
# name: (layer widths, batch, built Keras style with Dense or PyTorch style with Linear + ReLU)
NETWORKS = {
    "8-6-6-4": ([8, 6, 6, 4], 32, True),
    "784-30x9-2": ([784] + [30] * 9 + [2], 64, False),
    "784-1024-1024-10": ([784, 1024, 1024, 10], 256, False),
}
TRAIN_LIBS = ["lamina", "lamina-python", "numpy", "torch", "keras"]


def lamina_model(lm, widths, keras_style, last_activation=None):
    pairs = list(zip(widths[:-1], widths[1:]))
    if keras_style:
        layers = [lm.Dense(units=widths[1], input_shape=(widths[0],), activation="relu")]
        layers += [lm.Dense(units=n_out, activation="relu") for _, n_out in pairs[1:-1]]
        layers.append(lm.Dense(units=widths[-1], activation=last_activation))
        return lm.Sequential(layers)
    layers = []
    for n_in, n_out in pairs[:-1]:
        layers += [lm.Linear(n_in, n_out), lm.ReLU()]
    layers.append(lm.Linear(*pairs[-1]))
    if last_activation == "softmax":
        layers.append(lm.Softmax())
    return lm.Sequential(*layers)


def weights_of(model):
    """[(W (out, in), b (out,)), ...] copied out of a lamina model's state_dict, in layer order."""
    state = model.state_dict()
    indices = sorted({int(key.split(".")[0]) for key in state})
    return [(np.array(state[f"{i}.weight"], dtype=np.float32),
             np.array(state[f"{i}.bias"], dtype=np.float32)) for i in indices]


def torch_model(torch, weights):
    layers = []
    for W, b in weights:
        linear = torch.nn.Linear(W.shape[1], W.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def numpy_forward(weights, x):
    """Activations [x, h1, ..., logits] of the ReLU network."""
    acts = [x]
    for i, (W, b) in enumerate(weights):
        z = acts[-1] @ W.T + b
        acts.append(np.maximum(z, 0) if i < len(weights) - 1 else z)
    return acts


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def numpy_train_step(weights, x, y):
    """The step a NumPy user writes: forward, softmax cross-entropy, backward, SGD, all float32."""
    rows = np.arange(len(y))
    lr = np.float32(LR)

    def step():
        acts = numpy_forward(weights, x)
        p = softmax(acts[-1])
        loss = -np.log(p[rows, y]).mean()
        d = p
        d[rows, y] -= 1
        d /= len(y)
        for i in reversed(range(len(weights))):
            W, b = weights[i]
            dW, db = d.T @ acts[i], d.sum(axis=0)
            if i > 0:
                d = (d @ W) * (acts[i] > 0)  # through the ReLU, from its saved output
            W -= lr * dW
            b -= lr * db
        return loss
    return step


def train_step_fn(lm, lib, widths, keras_style, x, y):
    model = lamina_model(lm, widths, keras_style)
    if lib.name == "lamina":
        model.compile(optimizer=lm.SGD(model.parameters(), lr=LR), loss=lm.CrossEntropyLoss())
        return lambda: model.train_step(x, y)
    if lib.name == "lamina-python":
        opt, loss_fn = lm.SGD(model.parameters(), lr=LR), lm.CrossEntropyLoss()

        def step():
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            model.backward(loss_fn.backward())
            opt.step()
            return loss
        return step
    weights = weights_of(model)
    if lib.name == "numpy":
        return numpy_train_step(weights, x, y)
    if lib.name == "torch":
        torch = lib.mod
        net = torch_model(torch, weights)
        opt, loss_fn = torch.optim.SGD(net.parameters(), lr=LR), torch.nn.CrossEntropyLoss()
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def step():
            opt.zero_grad()
            loss = loss_fn(net(tx), ty)
            loss.backward()
            opt.step()
            return loss
        return step
    keras = lib.mod  # its thread count is fixed when its backend starts: the threads setting is moot
    net = keras.Sequential([keras.Input((widths[0],))]
                           + [keras.layers.Dense(n, activation="relu") for n in widths[1:-1]]
                           + [keras.layers.Dense(widths[-1])])
    net.compile(optimizer=keras.optimizers.SGD(learning_rate=LR),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    net.set_weights([a for W, b in weights for a in (W.T, b)])  # Keras kernels are (in, out)
    return lambda: net.train_on_batch(x, y)


@pytest.mark.parametrize("lib", TRAIN_LIBS, indirect=True)
@pytest.mark.parametrize("network", list(NETWORKS))
def test_train_step(lm, measure, lib, rng, network):
    widths, batch, keras_style = NETWORKS[network]
    x = rng.standard_normal((batch, widths[0]), dtype="float32")
    y = rng.integers(0, widths[-1], size=batch)
    fn = train_step_fn(lm, lib, widths, keras_style, x, y)
    macs = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    # forward one product per layer, backward two (dx, dW), each 2 flops per multiply-add
    measure(fn, group=f"train step {network} batch {batch}", flops=6 * batch * macs,
            network=network, batch=batch)


@pytest.mark.parametrize("lib", ["lamina", "numpy", "torch"], indirect=True)
def test_predict_one(lm, measure, lib, rng):
    widths, _, _ = NETWORKS["8-6-6-4"]
    model = lamina_model(lm, widths, keras_style=True, last_activation="softmax")
    x1 = rng.standard_normal((1, widths[0]), dtype="float32")
    model(x1)  # a Keras-style model builds on its first call; the weights exist from here on
    if lib.name == "lamina":
        fn = lambda: model.predict(x1)
    else:
        weights = weights_of(model)
        if lib.name == "numpy":
            fn = lambda: softmax(numpy_forward(weights, x1)[-1])
        else:
            torch = lib.mod
            net, tx1 = torch_model(torch, weights), torch.from_numpy(x1)

            def fn():
                with torch.no_grad():
                    return torch.softmax(net(tx1), dim=1)
    macs = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    measure(fn, group="predict 8-6-6-4 one sample", flops=2 * macs, network="8-6-6-4", batch=1)
