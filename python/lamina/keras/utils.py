"""`keras.utils`: `to_categorical`, and `weights_from_torch`, which turns a PyTorch model's
`state_dict` into the `get_weights()` list of the same architecture written in the Keras dialect."""
import numpy as np

from .._checks import check_int, numeric_array

__all__ = ["to_categorical", "weights_from_torch"]


def to_categorical(y, num_classes=None, dtype="float32"):
    """Class labels (any shape) as one-hot rows, Keras's `to_categorical`."""
    labels = numeric_array(y, "to_categorical", "y")
    if labels.dtype.kind == "f" and np.any(labels != np.round(labels)):
        raise ValueError("to_categorical: labels must be whole numbers")
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"to_categorical: labels must be >= 0, got {labels.min()}")
    n = int(labels.max()) + 1 if num_classes is None and labels.size else check_int(num_classes or 0, "num_classes", 1)
    if labels.size and labels.max() >= n:
        raise ValueError(f"to_categorical: label {labels.max()} does not fit num_classes={n}")
    shape = labels.shape[:-1] if labels.ndim > 1 and labels.shape[-1] == 1 else labels.shape
    out = np.zeros((labels.size, n), dtype=dtype)
    out[np.arange(labels.size), labels.ravel()] = 1
    return out.reshape(*shape, n)


def weights_from_torch(model, state_dict):
    """The `get_weights()` list for `model` (a Keras-dialect Sequential, built) from the
    `state_dict` of the same layers in PyTorch: conv weights (out, in, *k) become kernels
    (*k, in, out), linear weights (out, in) become (in, out), and the rows of a Dense that follows a
    Flatten of channels_last feature maps are reordered from PyTorch's C,H,W order to H,W,C.

    Entries are taken in order, as many per layer as its `get_weights()` returns (a batch norm's
    weight, bias, running_mean and running_var are gamma, beta, moving_mean and moving_variance);
    num_batches_tracked is skipped.
    """
    arrays = [numeric_array(v, f"state_dict[{k!r}]", "value") for k, v in state_dict.items()
              if not k.endswith("num_batches_tracked")]  # PyTorch's counter: Keras has none
    out, shape, flat_from = [], model._input_shape(), None
    for layer in model:
        n = layer._num_weights()
        taken, arrays = arrays[:n], arrays[n:]
        if len(taken) != n:
            raise ValueError(f"weights_from_torch: the state_dict has too few entries for {layer!r}")
        for arr in taken:
            if arr.ndim >= 3:  # a conv weight (out, in, *k)
                arr = arr.transpose(*range(2, arr.ndim), 1, 0)
            elif arr.ndim == 2:
                arr = arr.T
                if flat_from is not None:  # rows of C,H,W order -> H,W,C
                    *spatial, channels = flat_from
                    order = np.arange(arr.shape[0]).reshape(channels, *spatial)
                    arr = arr[order.transpose(*range(1, len(spatial) + 1), 0).ravel()]
            out.append(np.ascontiguousarray(arr))
        if type(layer).__name__ == "Flatten" and len(shape) > 2 and getattr(layer, "start_dim", 1) == 1:
            flat_from = tuple(shape[1:])
        elif n:
            flat_from = None
        shape = layer.output_shape(shape)
    if arrays:
        raise ValueError(f"weights_from_torch: {len(arrays)} state_dict entries are left over")
    return out
