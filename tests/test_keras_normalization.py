"""lamina.keras's BatchNormalization and LayerNormalization against the real Keras 3 (JAX backend),
where it is installed: the same weights give the same outputs in training and inference calls, the
same moving statistics after several training calls, and get_weights in the same order."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
real = pytest.importorskip("keras")

from lamina import keras  # noqa: E402

RNG = np.random.default_rng(17)


def weights_of(layer):
    return [np.asarray(w.value) for w in layer.weights]


@pytest.mark.parametrize("shape, kwargs", [
    ((8, 5), {}),
    ((4, 5, 5, 3), dict(momentum=0.9, epsilon=1e-4)),
    ((3, 4, 6, 6), dict(axis=1)),
    ((6, 7, 2), dict(center=False)),
    ((5, 3), dict(scale=False)),
])
def test_batch_normalization_matches_keras(shape, kwargs):
    theirs = real.layers.BatchNormalization(**kwargs)
    ours = keras.layers.BatchNormalization(**kwargs)
    x0 = RNG.standard_normal(shape).astype(np.float32)
    theirs(x0)
    ours(x0)
    c = weights_of(theirs)[0].shape[0]
    start = [RNG.uniform(0.5, 1.5, c).astype(np.float32) for _ in weights_of(theirs)]
    theirs.set_weights(start)
    ours.set_weights(start)
    for _ in range(3):
        x = (RNG.standard_normal(shape) * 2 + 1).astype(np.float32)
        np.testing.assert_allclose(ours(x), np.asarray(theirs(x, training=True)), rtol=1e-4, atol=1e-4)
    for mine, want in zip(ours.get_weights(), weights_of(theirs)):
        np.testing.assert_allclose(mine, want, rtol=1e-5, atol=1e-6)
    ours.eval()
    x = RNG.standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(ours(x), np.asarray(theirs(x, training=False)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape, axis", [((4, 6), -1), ((2, 3, 5), [1, 2]), ((2, 3, 5), 1), ((2, 3, 4, 5), [1, 3])])
def test_layer_normalization_matches_keras(shape, axis):
    theirs = real.layers.LayerNormalization(axis=axis)
    ours = keras.layers.LayerNormalization(axis=axis)
    x = (RNG.standard_normal(shape) * 3 + 1).astype(np.float32)
    theirs(x)
    ours(x)
    w = [RNG.standard_normal(a.shape).astype(np.float32) for a in weights_of(theirs)]
    theirs.set_weights(w)
    ours.set_weights(w)
    np.testing.assert_allclose(ours(x), np.asarray(theirs(x)), rtol=1e-4, atol=1e-4)
