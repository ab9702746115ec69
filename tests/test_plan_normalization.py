"""Models with normalization layers in the native plan against the layer-by-layer path: bitwise the
same losses, outputs, parameters, running statistics (num_batches_tracked included) and optimizer
state, in training and in predict (where a batch norm after a convolution or dense layer runs in
that layer's epilogue); every statistics mode (PyTorch's running averages and cumulative average,
no running statistics, a frozen Keras layer), both layouts, BN + ReLU fused; 1 and 2 threads alike;
a batch the plan cannot normalise is refused before anything changes."""
import numpy as np
import pytest

import lamina as lm
from lamina import _plan, keras
from lamina.keras import layers as kl
from test_plan import (OPTIMIZERS, assert_same_training_on_one_and_two_threads, layer_by_layer,  # noqa: F401 (a fixture)
                       train_both_and_compare)

nn = lm.nn


def torch_conv_bn(dtype):
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, dtype=dtype), nn.BatchNorm2d(4, dtype=dtype), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(4, 3, 3, bias=False, dtype=dtype),
                         nn.BatchNorm2d(3, momentum=None, dtype=dtype), nn.Flatten(),
                         nn.Linear(3 * 2 * 2, 6, dtype=dtype), nn.BatchNorm1d(6, affine=False, dtype=dtype), nn.Tanh(),
                         nn.Linear(6, 4, dtype=dtype))


def torch_dense_bn(dtype):
    return nn.Sequential(nn.Linear(5, 8, dtype=dtype), nn.BatchNorm1d(8, momentum=0.3, eps=1e-3, dtype=dtype),
                         nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 6, dtype=dtype),
                         nn.BatchNorm1d(6, track_running_stats=False, dtype=dtype), nn.ReLU(),
                         nn.Linear(6, 4, dtype=dtype))


def torch_conv1d_bn(dtype):
    model = nn.Sequential(nn.Conv1d(3, 4, 3, dtype=dtype), nn.BatchNorm1d(4, dtype=dtype), nn.ReLU(), nn.Flatten(),
                          nn.LayerNorm(4 * 7, dtype=dtype), nn.Linear(28, 4, dtype=dtype))
    model[1].requires_grad_(False)  # frozen affine parameters; the batch statistics still move
    return model


def keras_convnet_bn(dtype):
    return keras.Sequential([kl.Conv2D(4, 3, activation="relu", dtype=dtype), kl.BatchNormalization(dtype=dtype),
                             kl.MaxPooling2D(2), kl.Conv2D(6, 3, dtype=dtype),
                             kl.BatchNormalization(momentum=0.9, center=False, dtype=dtype), kl.Activation("relu"),
                             kl.Flatten(), kl.Dropout(0.3), kl.Dense(4, activation="softmax", dtype=dtype)])


def keras_channels_first_bn(dtype):
    return keras.Sequential([kl.Conv2D(5, 3, data_format="channels_first", dtype=dtype),
                             kl.BatchNormalization(axis=1, scale=False, dtype=dtype),
                             kl.GlobalAveragePooling2D(data_format="channels_first"),
                             kl.LayerNormalization(dtype=dtype), kl.Dense(4, dtype=dtype)])


def keras_frozen_bn(dtype):
    model = keras.Sequential([kl.Dense(6, dtype=dtype), kl.BatchNormalization(dtype=dtype), kl.Activation("relu"),
                              kl.Dense(5, dtype=dtype), kl.LayerNormalization(epsilon=1e-5, dtype=dtype),
                              kl.Dense(4, dtype=dtype)])
    model.layers[1].trainable = False
    return model


# (model factory, loss, per-sample input shape)
CASES = {
    "torch conv-bn-relu, cumulative average, affine off": (torch_conv_bn, lm.CrossEntropyLoss, (2, 9, 8)),
    "torch dense-bn-relu, dropout, no running stats": (torch_dense_bn, lm.CrossEntropyLoss, (5,)),
    "torch conv1d-bn frozen, layer norm": (torch_conv1d_bn, lm.CrossEntropyLoss, (3, 9)),
    "keras convnet with batch norm and dropout": (keras_convnet_bn, "sparse_categorical_crossentropy", (10, 9, 2)),
    "keras channels_first batch norm, layer norm": (keras_channels_first_bn, lm.CrossEntropyLoss, (3, 8, 7)),
    "keras frozen batch norm": (keras_frozen_bn, lm.CrossEntropyLoss, (7,)),
}


def make(case, optimizer, dtype, seed=0):
    factory, loss, shape = CASES[case]
    lm.manual_seed(seed)
    model = factory(dtype)
    model.build((None, *shape))
    model.compile(optimizer=OPTIMIZERS[optimizer](model.parameters()), loss=loss if isinstance(loss, str) else loss())
    return model


def batch(case, n, dtype, rng):
    x = (rng.standard_normal((n, *CASES[case][2])) * 2 + 0.5).astype(dtype)
    return x, rng.integers(0, 4, n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_normalization_plan_equals_layer_by_layer_bitwise(case, optimizer, dtype, threads, layer_by_layer):  # noqa: F811
    fused, python = make(case, optimizer, dtype), make(case, optimizer, dtype)
    rng = np.random.default_rng(1)
    x0, _ = batch(case, 2, dtype, rng)
    assert _plan.cached(fused, fused.loss, fused.optimizer, x0.shape[1:]) is not None, f"{case}: no native plan"
    batches = [batch(case, n, dtype, rng) for n in [16, 5, 2, 33, 16]]
    train_both_and_compare(fused, python, batches, layer_by_layer, case)
    for layer in fused:  # the running statistics moved (or stayed, where they must)
        if getattr(layer, "running_mean", None) is not None:
            assert layer.trainable != np.array_equal(layer.running_mean, np.zeros_like(layer.running_mean)), \
                f"{case}: {layer!r} running_mean"
        if getattr(layer, "num_batches_tracked", None) is not None:
            assert int(layer.num_batches_tracked) == len(batches)


@pytest.mark.parametrize("case", sorted(CASES))
def test_normalization_plans_train_bitwise_alike_on_one_and_two_threads(case):
    def train():
        model = make(case, "adam", np.float32)
        rng = np.random.default_rng(3)
        lm.manual_seed(11)
        losses = [model.train_step(*batch(case, 33, np.float32, rng)) for _ in range(3)]
        return losses, model.state_dict()
    assert_same_training_on_one_and_two_threads(train, case)


def test_batch_norm_and_relu_lower_to_one_step():
    model = make("torch conv-bn-relu, cumulative average, affine off", "sgd", np.float32)
    steps = _plan._steps(model, (2, 9, 8))
    kinds = [kind for kind, *_ in steps]
    assert kinds == ["conv2d", "batch_norm", "max_pool2d", "conv2d", "batch_norm", "flatten", "dense", "batch_norm",
                     "activation", "dense"]
    assert steps[1][2]["activation"] == "relu" and steps[1][2]["axis"] == 0
    assert steps[4][2]["momentum"] is None and "num_batches_tracked" in steps[4][3]
    k = make("keras frozen batch norm", "sgd", np.float32)
    assert _plan._steps(k, (7,))[1][2]["stats"] == "running"


def test_a_batch_the_plan_cannot_normalise_is_refused_and_changes_nothing():
    model = make("torch dense-bn-relu, dropout, no running stats", "sgd", np.float32)
    rng = np.random.default_rng(0)
    model.train_step(*batch("torch dense-bn-relu, dropout, no running stats", 4, np.float32, rng))
    before = model.state_dict()
    with pytest.raises(ValueError, match="more than one value per channel"):
        model.train_step(*batch("torch dense-bn-relu, dropout, no running stats", 1, np.float32, rng))
    for key, value in model.state_dict().items():
        assert np.array_equal(value, before[key]), key
