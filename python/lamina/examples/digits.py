"""Handwritten digits end to end: an MLP (64 -> 64 relu -> 10) trained with lamina's Keras-style fit on
scikit-learn's bundled 8x8 digits (no download), then the same run on lamina.reference (NumPy) and, when
installed, PyTorch and Keras, from the same initial weights and batch order; finally the two seed networks.

    python -m lamina.examples.digits [--epochs 20] [--batch-size 32] [--threads N] [--seed 0] [--no-compare]
"""

import argparse
import sys
import time

import numpy as np

import lamina as lm
from lamina import reference
from lamina.training import Callback
from lamina.training.loop import format_seconds

LR, MOMENTUM = 0.05, 0.9


def load_data(seed):
    """Digits split 75/25 with a fixed seed, features standardised with the training statistics."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("this example needs scikit-learn: pip install scikit-learn (or lamina[examples])")
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    n_train = int(0.75 * len(x))
    return _standardised(x[:n_train], x[n_train:]) + (y[:n_train], y[n_train:])


def _standardised(train, test):
    mean, std = train.mean(0), train.std(0) + 1e-6  # constant border pixels have std 0
    return ((train - mean) / std).astype(np.float32), ((test - mean) / std).astype(np.float32)


def epoch_orders(n, epochs, seed):
    """The shuffles `fit(..., seed=seed)` uses, so the comparison runs see the same batches."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(epochs)]


class EpochTimer(Callback):
    """Wall time of each epoch; the median is robust to a slow first epoch or a busy machine."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


# ---------------------------------------------------------------------------------------------
# The three runs of the same network


def run_lamina(x_train, y_train, x_test, y_test, args):
    lm.manual_seed(args.seed)
    model = lm.Sequential([
        lm.Dense(64, input_shape=(64,), activation="relu"),
        lm.Dense(10),
    ])
    initial = model.get_weights()
    model.compile(optimizer=lm.SGD(model.parameters(), lr=LR, momentum=MOMENTUM), loss=lm.CrossEntropyLoss(),
                  metrics=["accuracy"])
    clock = EpochTimer()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, verbose=1,
              callbacks=[clock])
    _, accuracy = model.evaluate(x_test, y_test)
    return accuracy, float(np.median(clock.times)), initial


def run_reference(x_train, y_train, x_test, y_test, initial, args):
    """The same training loop written directly on lamina.reference's float64 NumPy ops."""
    k1, b1, k2, b2 = (np.array(w, dtype=np.float64) for w in initial)
    params = [k1.T.copy(), b1, k2.T.copy(), b2]  # (out, in) layout, as the ops take it
    velocity = [np.zeros_like(p) for p in params]
    times = []
    for order in epoch_orders(len(x_train), args.epochs, args.seed):
        start = time.perf_counter()
        for s in range(0, len(order), args.batch_size):
            rows = order[s : s + args.batch_size]
            x, y = x_train[rows], y_train[rows]
            W1, c1, W2, c2 = params
            h = reference.linear(x, W1, c1, activation="relu")
            _, dz = reference.cross_entropy(reference.linear(h, W2, c2), y)
            dh, dW2, dc2 = reference.linear_backward(dz, h, W2)
            _, dW1, dc1 = reference.linear_backward(reference.relu_backward(dh, h), x, W1, need_dx=False)
            for p, g, v in zip(params, (dW1, dc1, dW2, dc2), velocity):
                reference.sgd_step(p, g, v, lr=LR, momentum=MOMENTUM)
        times.append(time.perf_counter() - start)
    W1, c1, W2, c2 = params
    logits = reference.linear(reference.linear(x_test, W1, c1, activation="relu"), W2, c2)
    return float(np.mean(logits.argmax(1) == y_test)), float(np.median(times))


def run_torch(x_train, y_train, x_test, y_test, initial, args):
    import torch

    torch.set_num_threads(args.threads or lm.get_num_threads())
    net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    with torch.no_grad():
        for p, w in zip(net.parameters(), initial):
            p.copy_(torch.from_numpy(np.ascontiguousarray(w.T if w.ndim == 2 else w)))
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    times = []
    for order in epoch_orders(len(x_train), args.epochs, args.seed):
        start = time.perf_counter()
        order = torch.from_numpy(order)
        for s in range(0, len(order), args.batch_size):
            rows = order[s : s + args.batch_size]
            opt.zero_grad()
            loss_fn(net(xt[rows]), yt[rows]).backward()
            opt.step()
        times.append(time.perf_counter() - start)
    with torch.no_grad():
        predicted = net(torch.from_numpy(x_test)).argmax(1).numpy()
    return float(np.mean(predicted == y_test)), float(np.median(times)), torch.__version__


def run_keras(x_train, y_train, x_test, y_test, initial, args):
    """The same network and batches in Keras 3 (train_on_batch), on JAX unless a backend is set."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    net = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
    net.set_weights([np.asarray(w) for w in initial])  # lamina's get_weights is Keras's layout
    net.compile(optimizer=keras.optimizers.SGD(learning_rate=LR, momentum=MOMENTUM),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    times = []
    for order in epoch_orders(len(x_train), args.epochs, args.seed):
        start = time.perf_counter()
        for s in range(0, len(order), args.batch_size):
            rows = order[s : s + args.batch_size]
            net.train_on_batch(x_train[rows], y_train[rows])
        times.append(time.perf_counter() - start)
    predicted = np.asarray(net.predict(x_test, verbose=0)).argmax(1)
    return float(np.mean(predicted == y_test)), float(np.median(times)), f"{keras.__version__} ({keras.backend.backend()})"


# ---------------------------------------------------------------------------------------------
# The seed networks of the design, on tasks made from the same digits


def seed_networks(args):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    images = x.reshape(-1, 8, 8)
    order = np.random.default_rng(args.seed).permutation(len(x))
    results = []

    # Keras's 8 -> 6 -> 6 -> 4: digits 0-3 from the mean ink of each of the 8 image rows.
    keep = order[y[order] < 4]
    features, labels = images[keep].mean(axis=2), y[keep]
    n = int(0.75 * len(keep))
    x_train, x_test = _standardised(features[:n], features[n:])
    lm.manual_seed(args.seed)
    keras_net = lm.Sequential([
        lm.Dense(units=6, input_shape=(8,), activation="relu"),
        lm.Dense(units=6, activation="relu"),
        lm.Dense(units=4, activation="softmax"),
    ])
    keras_net.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    keras_net.fit(x_train, labels[:n], epochs=60, batch_size=16, seed=args.seed, verbose=0)
    results.append(("8-6-6-4 softmax, digits 0-3 from 8 row means", keras_net, keras_net.evaluate(x_test, labels[n:])[1]))

    # The PyTorch-style seed: Linear(784, 30), ReLU, eight times (Linear(30, 30), ReLU), Linear(30, 1),
    # ten Linear layers and 31,021 parameters; MSE on even or odd digit, images scaled up to 28 x 28.
    big = np.pad(np.kron(images[order], np.ones((3, 3))), ((0, 0), (2, 2), (2, 2))).reshape(len(x), 784)
    parity = (y[order] % 2).astype(np.float32).reshape(-1, 1)
    n = int(0.75 * len(x))
    x_train, x_test = (big[:n] / 16.0).astype(np.float32), (big[n:] / 16.0).astype(np.float32)
    lm.manual_seed(args.seed)
    layers = [lm.Linear(784, 30), lm.ReLU()]
    for _ in range(8):
        layers += [lm.Linear(30, 30), lm.ReLU()]
    deep_net = lm.Sequential(*layers, lm.Linear(30, 1))
    deep_net.compile(optimizer=lm.Adam(deep_net.parameters(), lr=1e-3), loss=lm.MSELoss(), metrics=["accuracy"])
    deep_net.fit(x_train, parity[:n], epochs=15, batch_size=32, seed=args.seed, verbose=0)
    results.append(("784-30x9-1 (ten Linear) MSE, even vs odd at 28x28", deep_net, deep_net.evaluate(x_test, parity[n:])[1]))
    return results


# ---------------------------------------------------------------------------------------------


def positive_int(text):
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def training_arguments(prog, description, epochs, batch_size, compare_help):
    """The options every example takes: epochs, batch size, threads, seed, and skipping the peers."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--epochs", type=positive_int, default=epochs, help=f"training epochs (default {epochs})")
    parser.add_argument("--batch-size", type=positive_int, default=batch_size,
                        help=f"samples per step (default {batch_size})")
    parser.add_argument("--threads", type=positive_int, default=None, help="threads for lamina (and PyTorch)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the split, initialisation and shuffling")
    parser.add_argument("--no-compare", action="store_true", help=compare_help)
    return parser


def threads_text():
    threads = lm.get_num_threads()
    return f"{threads} thread{'' if threads == 1 else 's'}"


def parse_args(argv):
    description = " ".join(__doc__.split("\n\n")[0].split())  # the docstring's first paragraph, whole
    parser = training_arguments("python -m lamina.examples.digits", description, 20, 32,
                                "skip the reference, PyTorch and seed-network runs")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        lm.set_num_threads(args.threads)
    x_train, x_test, y_train, y_test = load_data(args.seed)
    print(f"lamina {lm.__version__} ({lm.build_info()['isa']}, {threads_text()}): digits, "
          f"{len(x_train)} train / {len(x_test)} test, 64 -> 64 relu -> 10, SGD lr {LR} momentum {MOMENTUM}, "
          f"batch {args.batch_size}, {args.epochs} epochs")

    accuracy, per_epoch, initial = run_lamina(x_train, y_train, x_test, y_test, args)
    rows = [("lamina", accuracy, per_epoch)]
    if not args.no_compare:
        rows.append(("lamina.reference (NumPy float64)",) + run_reference(x_train, y_train, x_test, y_test, initial, args))
        try:
            accuracy_t, per_epoch_t, version = run_torch(x_train, y_train, x_test, y_test, initial, args)
            rows.append((f"PyTorch {version}", accuracy_t, per_epoch_t))
        except ImportError:
            rows.append(("PyTorch (not installed)", None, None))
        try:
            accuracy_k, per_epoch_k, version = run_keras(x_train, y_train, x_test, y_test, initial, args)
            rows.append((f"Keras {version}", accuracy_k, per_epoch_k))
        except ImportError:
            rows.append(("Keras (not installed)", None, None))

    print(f"\n{'run':<34} {'test accuracy':>13} {'time/epoch (median)':>20}")
    for name, acc, t in rows:
        if acc is None:
            print(f"{name:<34} {'-':>13} {'-':>20}")
        else:
            print(f"{name:<34} {acc:>13.4f} {format_seconds(t):>20}")

    if not args.no_compare:
        print("\nseed networks:")
        for name, model, acc in seed_networks(args):
            print(f"  {name:<48} {model.num_parameters():>6} parameters   test accuracy {acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
