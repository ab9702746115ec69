"""Batch and layer normalization, forward and backward, native. Same signatures, checks and
results as lamina.reference.normalization (the float64 specification); every array of a call
takes x's dtype (integer inputs are cast to float32), and running statistics are updated in place."""
from .. import _native
from .._checks import channel_view, check_batch_norm, check_channel_vector, check_eps, check_flag, layer_norm_view
from ._core import as_float, inplace

__all__ = ["batch_norm", "batch_norm_backward", "layer_norm", "layer_norm_backward"]


def _like(op, name, a, x):
    """An input of x's dtype (integers cast to it), C-contiguous; None stays None."""
    if a is None:
        return None
    a = as_float(op, name, a, x.dtype)
    if a.dtype != x.dtype:
        raise TypeError(f"{op}: {name} has dtype {a.dtype} but x has dtype {x.dtype}")
    return a


def batch_norm(x, weight=None, bias=None, running_mean=None, running_var=None, *, training=True, momentum=0.1,
               eps=1e-5, axis=1, unbiased=True, activation=None):
    r"""Batch normalization over every axis but `axis` (the channels):

    .. math::
        \mu_c = \frac{1}{m}\sum x, \quad \sigma^2_c = \frac{1}{m}\sum (x - \mu_c)^2, \quad
        y = \mathrm{act}(x \cdot s_c + t_c), \quad s_c = \frac{\gamma_c}{\sqrt{\sigma^2_c + \epsilon}},
        \quad t_c = \beta_c - \mu_c s_c

    (one fused multiply-add per value) with the batch's statistics in training and the running ones
    otherwise. In training, `running_mean` and `running_var` (when given: arrays of x's dtype,
    C-contiguous, writeable) are updated in place:
    :math:`r \leftarrow r (1 - \mathrm{momentum}) + s \cdot \mathrm{momentum}`, the variance entering
    as :math:`\sigma^2 m / (m - 1)` when `unbiased` (PyTorch) and as :math:`\sigma^2` when not (Keras).

    Args:
        x: (N, C, ...) with axis=1, or channels last with axis=-1 (integers are cast to float32).
        weight, bias: (C,) or None (ones and zeros).
        activation: None or "relu", applied to the normalised output.

    Returns (y, mean, invstd): y of x's shape, the statistics used, (C,) each.

    Example::

        >>> y, mean, invstd = batch_norm(np.arange(8.0).reshape(4, 2))
        >>> mean
        array([3., 4.])
    """
    op = "batch_norm"
    x = as_float(op, "x", x)
    weight, bias = _like(op, "weight", weight, x), _like(op, "bias", bias, x)
    running_mean = _running(op, "running_mean", running_mean, x, training)
    running_var = _running(op, "running_var", running_var, x, training)
    check_batch_norm(op, x.shape, axis, weight, bias, running_mean, running_var, training, momentum, eps)
    if activation not in (None, "relu"):
        raise ValueError(f"{op}: activation must be None or 'relu', got {activation!r}")
    return _native.batch_norm(x, weight, bias, running_mean, running_var, bool(training), float(momentum),
                              float(eps), int(axis), bool(unbiased), activation)


def _running(op, name, a, x, training):
    """A running statistic: updated in place in training, so never converted (a copy would take the
    update); read in inference, where it is converted like any input."""
    if a is None or training is False:
        return _like(op, name, a, x)
    return inplace(op, name, a, dtype=x.dtype)


def batch_norm_backward(dy, x, mean, invstd, weight=None, *, training=True, axis=1, relu_output=None):
    r"""Gradients of batch_norm, from the statistics it returned. With g = dy (zero where
    relu_output, the forward's output after a fused ReLU, is not > 0) and
    :math:`\hat x = (x - \mu) \cdot \mathrm{invstd}`, per channel over its m values:

    .. math::
        d\beta = \sum g, \quad d\gamma = \sum g \hat x, \quad
        dx = \gamma\,\mathrm{invstd}\,\Big(g - \frac{d\beta}{m} - \hat x \frac{d\gamma}{m}\Big)

    in training (the statistics depend on x); with training=False the statistics are constants and
    :math:`dx = \gamma\,\mathrm{invstd}\,g`. Returns (dx, dweight, dbias), all in x's dtype.
    """
    op = "batch_norm_backward"
    x = as_float(op, "x", x)
    dy = _like(op, "dy", dy, x)
    if dy.shape != x.shape:
        raise ValueError(f"{op}: dy has shape {dy.shape}, expected x's {x.shape}")
    mean, invstd = _like(op, "mean", mean, x), _like(op, "invstd", invstd, x)
    weight = _like(op, "weight", weight, x)
    _, channels, _ = channel_view(op, x.shape, axis)
    for name, a in (("weight", weight), ("mean", mean), ("invstd", invstd)):
        check_channel_vector(op, name, a, channels)
    relu_output = _like(op, "relu_output", relu_output, x)
    if relu_output is not None and relu_output.shape != x.shape:
        raise ValueError(f"{op}: relu_output has shape {relu_output.shape}, expected x's {x.shape}")
    check_flag(training, f"{op}: training")
    return _native.batch_norm_backward(dy, x, mean, invstd, weight, bool(training), int(axis), relu_output)


def layer_norm(x, normalized_shape, weight=None, bias=None, *, eps=1e-5):
    r"""Layer normalization over the trailing dims `normalized_shape` of x:

    .. math::
        \mu_r = \frac{1}{n}\sum_j x_{rj}, \quad \sigma^2_r = \frac{1}{n}\sum_j (x_{rj} - \mu_r)^2,
        \quad y_{rj} = \frac{x_{rj} - \mu_r}{\sqrt{\sigma^2_r + \epsilon}}\,\gamma_j + \beta_j

    weight and bias (normalized_shape each) None mean 1 and 0. Returns (y, mean, invstd), the
    statistics of shape x.shape[:-len(normalized_shape)].

    Example::

        >>> y, mean, invstd = layer_norm(np.ones((2, 3, 4)), 4)
        >>> mean.shape
        (2, 3)
    """
    op = "layer_norm"
    x = as_float(op, "x", x)
    _, _, dims = layer_norm_view(op, x.shape, normalized_shape)
    eps = check_eps(op, eps)
    weight, bias = (_affine(op, name, a, x, dims) for name, a in (("weight", weight), ("bias", bias)))
    return _native.layer_norm(x, len(dims), weight, bias, eps)


def layer_norm_backward(dy, x, mean, invstd, normalized_shape, weight=None):
    r"""Gradients of layer_norm. With :math:`g = dy\,\gamma` and
    :math:`\hat x = (x - \mu_r)\,\mathrm{invstd}_r`, per row over its n values:

    .. math::
        dx = \mathrm{invstd}_r \big(g - \overline{g} - \hat x\,\overline{g \hat x}\big), \quad
        d\gamma = \sum_r dy\,\hat x, \quad d\beta = \sum_r dy

    Returns (dx, dweight, dbias), the last two of normalized_shape.
    """
    op = "layer_norm_backward"
    x = as_float(op, "x", x)
    dy = _like(op, "dy", dy, x)
    if dy.shape != x.shape:
        raise ValueError(f"{op}: dy has shape {dy.shape}, expected x's {x.shape}")
    _, _, dims = layer_norm_view(op, x.shape, normalized_shape)
    weight = _affine(op, "weight", weight, x, dims)
    lead = x.shape[:x.ndim - len(dims)]
    mean, invstd = _like(op, "mean", mean, x), _like(op, "invstd", invstd, x)
    for name, a in (("mean", mean), ("invstd", invstd)):
        if a.shape != lead:
            raise ValueError(f"{op}: {name} has shape {a.shape}, expected {lead} (one per row)")
    return _native.layer_norm_backward(dy, x, mean, invstd, len(dims), weight)


def _affine(op, name, a, x, dims):
    a = _like(op, name, a, x)
    if a is not None and a.shape != dims:
        raise ValueError(f"{op}: {name} has shape {a.shape}, expected normalized_shape {dims}")
    return a
