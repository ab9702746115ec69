"""The native plan with the core's new families (Flatten, Dropout, LeakyReLU, GELU, LogSoftmax with
NLLLoss) and with frozen parameters, against the layer-by-layer path: bitwise the same losses,
outputs, parameters and optimizer state, dropout masks included, for 1 and 2 threads.
"""
import numpy as np
import pytest

import lamina as lm
from lamina import _plan, keras
from test_plan import (OPTIMIZERS, assert_same_training_on_one_and_two_threads, layer_by_layer,  # noqa: F401 (a fixture)
                       train_both_and_compare)


def dropout_mlp(dtype):
    return lm.Sequential(lm.Linear(12, 16, dtype=dtype), lm.ReLU(), lm.Dropout(0.3), lm.Linear(16, 16, dtype=dtype),
                         lm.GELU(), lm.Dropout(0.5), lm.Linear(16, 4, dtype=dtype))


def keras_dropout(dtype):
    return keras.Sequential([keras.layers.Dense(16, input_shape=(12,), activation="relu", dtype=dtype),
                             keras.layers.Dropout(0.25), keras.layers.Dense(4, activation="softmax", dtype=dtype)])


def image_mlp(dtype):  # (N, 1, 4, 3) images through Flatten
    return lm.Sequential(lm.Flatten(), lm.Linear(12, 10, dtype=dtype), lm.LeakyReLU(0.1), lm.Dropout(0.2),
                         lm.Linear(10, 4, dtype=dtype), lm.LogSoftmax())


def gelu_tanh_net(dtype):
    return lm.Sequential(lm.Linear(12, 8, dtype=dtype), lm.GELU("tanh"), lm.Linear(8, 4, dtype=dtype))


def frozen_first_layer(dtype):
    model = lm.Sequential(lm.Linear(12, 8, dtype=dtype), lm.Tanh(), lm.Dropout(0.1), lm.Linear(8, 4, dtype=dtype))
    model[0].trainable = False
    return model


def frozen_bias(dtype):
    model = lm.Sequential(lm.Linear(12, 8, dtype=dtype), lm.ReLU(), lm.Linear(8, 4, dtype=dtype))
    model[2].bias.requires_grad = False
    return model


# (model factory, loss, per-sample input shape)
CASES = {
    "dropout mlp + CrossEntropyLoss": (dropout_mlp, lm.CrossEntropyLoss, (12,)),
    "keras dropout + named cross-entropy": (keras_dropout, "sparse_categorical_crossentropy", (12,)),
    "flatten images + LogSoftmax + NLLLoss": (image_mlp, lm.NLLLoss, (1, 4, 3)),
    "gelu tanh + CrossEntropyLoss": (gelu_tanh_net, lm.CrossEntropyLoss, (12,)),
    "frozen first layer + CrossEntropyLoss": (frozen_first_layer, lm.CrossEntropyLoss, (12,)),
    "frozen bias + CrossEntropyLoss": (frozen_bias, lm.CrossEntropyLoss, (12,)),
}


def make(case, optimizer, dtype, seed=0):
    factory, loss, _ = CASES[case]
    lm.manual_seed(seed)
    model = factory(dtype)
    model.compile(optimizer=OPTIMIZERS[optimizer](model.parameters()), loss=loss if isinstance(loss, str) else loss())
    return model


def batch(case, n, dtype, rng):
    x = rng.standard_normal((n, *CASES[case][2])).astype(dtype)
    return x, rng.integers(0, 4, n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_plan_equals_layer_by_layer_bitwise(case, optimizer, dtype, threads, layer_by_layer):  # noqa: F811
    fused, python = make(case, optimizer, dtype), make(case, optimizer, dtype)
    rng = np.random.default_rng(1)
    x0, _ = batch(case, 2, dtype, rng)
    assert _plan.cached(fused, fused.loss, fused.optimizer, x0.shape[1:]) is not None, f"{case}: no native plan"
    batches = [batch(case, n, dtype, rng) for n in [32, 32, 7, 1, 32]]
    train_both_and_compare(fused, python, batches, layer_by_layer, case)


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_and_two_threads_train_bitwise_alike(case):
    def train():
        model = make(case, "adam", np.float32)
        rng = np.random.default_rng(3)
        lm.manual_seed(11)
        losses = [model.train_step(*batch(case, 64, np.float32, rng)) for _ in range(3)]
        return losses, model.state_dict()
    assert_same_training_on_one_and_two_threads(train, case)


def test_keras_model_with_dropout_trains_in_one_native_call_per_step(monkeypatch):
    model = make("keras dropout + named cross-entropy", "adam", np.float32)
    calls = []
    original = _plan.NativePlan.train_step
    monkeypatch.setattr(_plan.NativePlan, "train_step", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((96, 12)).astype(np.float32), rng.integers(0, 4, 96)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    assert len(calls) == 2 * 3, "fit did not run its steps through the native plan"


def test_predict_runs_dropout_as_identity_and_train_step_drops():
    model = make("dropout mlp + CrossEntropyLoss", "sgd", np.float64)
    x = np.random.default_rng(0).standard_normal((16, 12))
    first = model.predict(x)
    assert np.array_equal(model.predict(x), first), "inference mode draws no masks"
    model.eval()
    assert np.array_equal(model(x), first), "predict equals the layer-by-layer inference forward"
    model.train()
    lm.manual_seed(0)
    a = model(x)
    b = model(x)
    assert not np.array_equal(a, b), "two training-mode forwards draw two masks"
