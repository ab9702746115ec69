"""lamina.keras against the real Keras 3 (JAX backend), where it is installed: the same weights give
the same outputs for Dense on N-D input, Flatten and Activation layers; Dropout scales the same way
in training and is the identity in inference; the container counts parameters as Keras does.
"""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
real = pytest.importorskip("keras")

from lamina import keras  # noqa: E402


def weights_of(layer):
    # Keras's own get_weights() goes through a NumPy 2 deprecation (a warning, an error here).
    return [np.asarray(w.value) for w in layer.weights]


def test_dense_on_nd_input_matches_keras():
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    theirs = real.layers.Dense(5, activation="relu")
    expected = np.asarray(theirs(x))
    ours = keras.layers.Dense(5, activation="relu")
    ours.set_weights(weights_of(theirs))
    np.testing.assert_allclose(ours(x), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("make", [lambda m: m.layers.Flatten(), lambda m: m.layers.LeakyReLU(),
                                  lambda m: m.layers.Softmax(), lambda m: m.layers.Activation("gelu"),
                                  lambda m: m.layers.Activation("leaky_relu")],
                         ids=["Flatten", "LeakyReLU", "Softmax", "Activation gelu", "Activation leaky_relu"])
def test_layers_without_weights_match_keras(make):
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_allclose(make(keras)(x), np.asarray(make(real)(x)), rtol=1e-5, atol=1e-6)


def test_dropout_scales_like_keras_and_is_the_identity_in_inference():
    x = np.random.default_rng(2).standard_normal((64, 32)).astype(np.float32) + 10
    theirs = np.asarray(real.layers.Dropout(0.3)(x, training=True))
    ours = keras.layers.Dropout(0.3)(x)  # a layer outside fit is in training mode, as PyTorch's
    for name, y in (("lamina", ours), ("keras", theirs)):
        kept = y != 0
        np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-6, err_msg=name)
        assert 0.5 < kept.mean() < 0.9, f"{name}: kept {kept.mean():.2f}"
    assert np.array_equal(keras.layers.Dropout(0.3).eval()(x), np.asarray(real.layers.Dropout(0.3)(x, training=False)))


def test_sequential_counts_and_names_like_keras():
    theirs = real.Sequential([real.Input((8,)), real.layers.Dense(6, activation="relu", name="hidden"),
                              real.layers.Dropout(0.5), real.layers.Dense(4)])
    ours = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(6, activation="relu", name="hidden"),
                             keras.layers.Dropout(0.5), keras.layers.Dense(4)])
    assert ours.count_params() == theirs.count_params()
    assert len(ours.layers) == len(theirs.layers)
    assert ours.get_layer("hidden").units == theirs.get_layer("hidden").units
    ours.set_weights(weights_of(theirs))
    x = np.random.default_rng(3).standard_normal((5, 8)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
