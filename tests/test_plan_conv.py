"""Convnets in the native plan against the layer-by-layer path: bitwise the same losses, outputs,
parameters and optimizer state (dropout masks included) for every conv and pooling step kind, both
layouts, 1-D and 2-D, fused and separate activations, frozen layers; and one native call per step.
"""
import numpy as np
import pytest

import lamina as lm
from lamina import _plan, keras
from lamina.keras import layers as kl
from test_plan import (OPTIMIZERS, assert_same_training_on_one_and_two_threads, layer_by_layer,  # noqa: F401 (a fixture)
                       train_both_and_compare)

nn = lm.nn


def keras_convnet(dtype):
    return keras.Sequential([kl.Conv2D(4, 3, activation="relu", dtype=dtype), kl.MaxPooling2D(2),
                             kl.Conv2D(6, 3, strides=2, padding="same", dtype=dtype),
                             kl.AveragePooling2D(2, strides=1, padding="same"), kl.Flatten(), kl.Dropout(0.3),
                             kl.Dense(4, activation="softmax", dtype=dtype)])


def torch_convnet(dtype):
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, dtype=dtype), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1),
                         nn.Conv2d(4, 6, 3, dilation=2, groups=2, bias=False, dtype=dtype), nn.Tanh(),
                         nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False), nn.Flatten(),
                         nn.Linear(6 * 2 * 1, 4, dtype=dtype))


def torch_conv1d(dtype):
    return nn.Sequential(nn.Conv1d(2, 5, 3, stride=2, dtype=dtype), nn.LeakyReLU(0.1), nn.AvgPool1d(2),
                         nn.Conv1d(5, 5, 1, groups=5, dtype=dtype), nn.AdaptiveAvgPool1d(3), nn.Flatten(),
                         nn.Linear(15, 4, dtype=dtype))


def keras_conv1d(dtype):
    return keras.Sequential([kl.Conv1D(6, 3, padding="causal", dilation_rate=2, activation="gelu", dtype=dtype),
                             kl.MaxPooling1D(2, padding="same"), kl.Conv1D(5, 2, activation="sigmoid", dtype=dtype),
                             kl.GlobalMaxPooling1D(), kl.Dense(4, dtype=dtype)])


def channels_first(dtype):
    model = keras.Sequential([kl.Conv2D(5, (3, 2), data_format="channels_first", activation="relu", dtype=dtype),
                              kl.MaxPooling2D(2, data_format="channels_first"),
                              kl.GlobalAveragePooling2D(data_format="channels_first"), kl.Dense(4, dtype=dtype)])
    return model


def frozen_conv(dtype):
    model = nn.Sequential(nn.Conv2d(2, 3, 3, dtype=dtype), nn.ReLU(), nn.AdaptiveAvgPool2d((2, 3)), nn.Flatten(),
                          nn.Linear(18, 4, dtype=dtype))
    model[0].trainable = False
    return model


# (model factory, loss, per-sample input shape)
CASES = {
    "keras convnet + dropout": (keras_convnet, "sparse_categorical_crossentropy", (10, 9, 2)),
    "torch convnet, groups, dilation, ceil_mode": (torch_convnet, lm.CrossEntropyLoss, (2, 13, 12)),
    "torch conv1d, depthwise, adaptive": (torch_conv1d, lm.CrossEntropyLoss, (2, 25)),
    "keras conv1d causal gelu, global max": (keras_conv1d, lm.CrossEntropyLoss, (13, 3)),
    "keras channels_first, global average": (channels_first, lm.CrossEntropyLoss, (3, 8, 7)),
    "frozen conv": (frozen_conv, lm.CrossEntropyLoss, (2, 7, 8)),
}


def make(case, optimizer, dtype, seed=0):
    factory, loss, shape = CASES[case]
    lm.manual_seed(seed)
    model = factory(dtype)
    model.build((None, *shape))
    model.compile(optimizer=OPTIMIZERS[optimizer](model.parameters()), loss=loss if isinstance(loss, str) else loss())
    return model


def batch(case, n, dtype, rng):
    x = rng.standard_normal((n, *CASES[case][2])).astype(dtype)
    return x, rng.integers(0, 4, n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_conv_plan_equals_layer_by_layer_bitwise(case, optimizer, dtype, threads, layer_by_layer):  # noqa: F811
    fused, python = make(case, optimizer, dtype), make(case, optimizer, dtype)
    rng = np.random.default_rng(1)
    x0, _ = batch(case, 2, dtype, rng)
    assert _plan.cached(fused, fused.loss, fused.optimizer, x0.shape[1:]) is not None, f"{case}: no native plan"
    batches = [batch(case, n, dtype, rng) for n in [16, 5, 1, 16]]
    train_both_and_compare(fused, python, batches, layer_by_layer, case)


@pytest.mark.parametrize("case", sorted(CASES))
def test_conv_plans_train_bitwise_alike_on_one_and_two_threads(case):
    def train():
        model = make(case, "adam", np.float32)
        rng = np.random.default_rng(3)
        lm.manual_seed(11)
        losses = [model.train_step(*batch(case, 33, np.float32, rng)) for _ in range(3)]
        return losses, model.state_dict()
    assert_same_training_on_one_and_two_threads(train, case)


def test_the_keras_mnist_convnet_lowers_to_one_native_plan():
    model = keras.Sequential([keras.Input(shape=(28, 28, 1)), kl.Conv2D(32, (3, 3), activation="relu"),
                              kl.MaxPooling2D((2, 2)), kl.Conv2D(64, (3, 3), activation="relu"), kl.MaxPooling2D((2, 2)),
                              kl.Flatten(), kl.Dropout(0.5), kl.Dense(10, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    assert _plan.cached(model, model.loss, model.optimizer, (28, 28, 1)) is not None
    steps = _plan._steps(model, (28, 28, 1))
    assert [kind for kind, *_ in steps] == ["conv2d", "max_pool2d", "conv2d", "max_pool2d", "flatten", "dropout", "dense"]
    assert steps[0][2]["activation"] == "relu" and steps[0][2]["layout"] == "channels_last"
