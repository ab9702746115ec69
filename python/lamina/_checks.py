"""Argument checks shared by lamina.ops and lamina.reference, so both reject the same bad input
with the same message. Messages name the op, the argument, the expected and the given shape.
"""

import numpy as np

ACTIVATIONS = (None, "relu", "sigmoid", "tanh")

# The ops that lamina.ops (native) and lamina.reference (NumPy) both define, name for name.
OP_NAMES = (
    "matmul",
    "gemm",
    "linear",
    "linear_backward",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "softmax",
    "softmax_backward",
    "cross_entropy",
    "binary_cross_entropy",
    "mse",
    "probability_cross_entropy",
    "probability_binary_cross_entropy",
    "sgd_step",
    "adam_step",
)


def as_array(op, name, x):
    arr = np.asarray(x)
    # bool, complex, object and string arrays would be cast silently (or fail deep inside NumPy);
    # integers are accepted and cast, as the layers do.
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{op}: {name} must be an integer or floating-point array, got dtype {arr.dtype}")
    # A big-endian float64 is still float64: convert it rather than let it fall to the float32
    # default; a misaligned view (carved from a byte buffer) cannot be read by the kernels.
    if not arr.dtype.isnative or not arr.flags.aligned:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def check_ndim(op, name, arr, ndim, what):
    if arr.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D {what}, got shape {arr.shape}")


def check_shape(op, name, arr, expected, why=""):
    if arr.shape != tuple(expected):
        suffix = f" {why}" if why else ""
        raise ValueError(f"{op}: {name} has shape {arr.shape}, expected {tuple(expected)}{suffix}")


def check_output(op, name, arr):
    """An array the op writes into: it must be a writeable floating-point ndarray."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{op}: {name} must be a NumPy array (it is updated in place), got {type(arr).__name__}")
    if arr.dtype.kind != "f":
        # Writing float results back into an integer array would truncate them silently.
        raise TypeError(f"{op}: {name} must be a floating-point array (it is updated in place), got dtype {arr.dtype}")
    if not arr.flags.writeable:
        raise ValueError(f"{op}: {name} is read-only but is updated in place")


def check_activation(op, activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"{op}: activation must be one of None, 'relu', 'sigmoid', 'tanh', got {activation!r}")


def check_nonempty(op, name, arr):
    # A mean over zero elements has no value; say so rather than return NaN.
    if arr.size == 0:
        raise ValueError(f"{op}: {name} has shape {arr.shape}; a loss needs at least one element")


def check_unit_interval(op, t):
    bad = ~((t >= 0) & (t <= 1))  # NaN is outside too
    if bad.any():
        i = tuple(int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"{op}: target{list(i)} = {float(t[i])!r} is outside [0, 1]")


def check_nonnegative(op, **values):
    for name, value in values.items():
        if not value >= 0.0:  # also rejects NaN
            raise ValueError(f"{op}: {name} must be >= 0, got {value!r}")


def check_labels(op, t, batch, classes):
    """1-D class labels: integers in [0, classes), one per row of the logits."""
    if t.dtype.kind not in "iu":
        # A float 1.5 is no class; casting it would hide the mistake.
        raise TypeError(f"{op}: 1-D target holds class labels and must be integers, got dtype {t.dtype}")
    check_shape(op, "target", t, (batch,), f"(one label per row of logits of shape {(batch, classes)})")
    bad = (t < 0) | (t >= classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{op}: target[{i}] = {int(t[i])} is out of range; labels must be in [0, {classes})")


def check_sgd_hyper(op, lr, momentum, weight_decay, nesterov, velocity):
    check_nonnegative(op, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if nesterov and momentum == 0:
        raise ValueError(f"{op}: nesterov momentum needs momentum > 0")
    if momentum != 0 and velocity is None:
        raise ValueError(f"{op}: momentum={momentum!r} needs a velocity array (zeros before the first step)")


def check_adam_hyper(op, step, lr, beta1, beta2, eps, weight_decay):
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)) or not 1 <= step < 2**63:
        raise ValueError(f"{op}: step must be an integer in [1, 2**63) (the first step is 1), got {step!r}")
    check_nonnegative(op, lr=lr, eps=eps, weight_decay=weight_decay)
    for name, beta in (("beta1", beta1), ("beta2", beta2)):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"{op}: {name} must be in [0, 1), got {beta!r}")
