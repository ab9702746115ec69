"""lamina.keras's convolution and pooling layers against the real Keras 3 (JAX backend), where it is
installed: the same kernel and bias give the same outputs, for both data formats, every padding,
strides, dilation and groups; the initialisers have Keras's shapes; Flatten keeps H,W,C order.
"""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
real = pytest.importorskip("keras")

from lamina import keras  # noqa: E402

RNG = np.random.default_rng(5)


def weights_of(layer):
    # Keras's own get_weights() goes through a NumPy 2 deprecation (a warning, an error here).
    return [np.asarray(w.value) for w in layer.weights]


def _same(make, shape, weights=True):
    x = RNG.standard_normal(shape).astype(np.float32)
    theirs = make(real)
    y_real = np.asarray(theirs(x))
    ours = make(keras)
    ours(x)
    if weights:
        ours.set_weights(weights_of(theirs))
    np.testing.assert_allclose(ours(x), y_real, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("args", [
    dict(filters=4, kernel_size=3),
    dict(filters=4, kernel_size=3, strides=2, padding="same"),
    dict(filters=6, kernel_size=(2, 3), strides=(3, 2), padding="same", activation="tanh"),
    dict(filters=4, kernel_size=3, dilation_rate=2, padding="same", activation="relu"),
    dict(filters=6, kernel_size=3, groups=3, padding="valid", use_bias=False),
    dict(filters=4, kernel_size=4, strides=2, padding="same", data_format="channels_first"),
])
def test_conv2d_matches_keras(args):
    shape = (2, 3, 9, 8) if args.get("data_format") == "channels_first" else (2, 9, 8, 3)
    _same(lambda k: k.layers.Conv2D(**args), shape)


@pytest.mark.parametrize("args", [
    dict(filters=4, kernel_size=3), dict(filters=4, kernel_size=3, padding="causal", dilation_rate=2),
    dict(filters=4, kernel_size=2, strides=2, padding="same", activation="relu"),
])
def test_conv1d_matches_keras(args):
    _same(lambda k: k.layers.Conv1D(**args), (2, 11, 3))


@pytest.mark.parametrize("cls,args", [
    ("MaxPooling2D", dict(pool_size=2)), ("MaxPooling2D", dict(pool_size=3, strides=2, padding="same")),
    ("AveragePooling2D", dict(pool_size=2, padding="same")), ("AveragePooling2D", dict(pool_size=3, strides=2, padding="same")),
    ("MaxPooling2D", dict(pool_size=2, data_format="channels_first")),
    ("MaxPooling1D", dict(pool_size=3, strides=2, padding="same")), ("AveragePooling1D", dict(pool_size=2, padding="same")),
    ("GlobalAveragePooling2D", {}), ("GlobalMaxPooling2D", dict(keepdims=True)), ("GlobalAveragePooling1D", {}),
    ("GlobalMaxPooling1D", {}),
])
def test_pooling_matches_keras(cls, args):
    shape = (2, 7, 9, 3) if "2D" in cls else (2, 11, 3)
    if args.get("data_format") == "channels_first":
        shape = (2, 3, 7, 9)
    _same(lambda k: getattr(k.layers, cls)(**args), shape, weights=False)


def test_convnet_with_flatten_matches_keras_end_to_end():
    def make(k):
        L = k.layers
        return k.Sequential([k.Input(shape=(12, 12, 1)), L.Conv2D(4, 3, activation="relu"), L.MaxPooling2D(2),
                             L.Conv2D(8, 3, padding="same", activation="relu"), L.MaxPooling2D(2), L.Flatten(),
                             L.Dense(5, activation="softmax")])
    theirs, ours = make(real), make(keras)
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in weights_of(theirs)]
    assert ours.count_params() == theirs.count_params()
    ours.set_weights(weights_of(theirs))
    x = RNG.standard_normal((3, 12, 12, 1)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x, verbose=0), np.asarray(theirs.predict(x, verbose=0)), rtol=1e-5, atol=1e-6)
