"""Batch and layer normalization in NumPy float64: the specification of lamina.ops.normalization.

Batch norm normalises each channel (the `axis` of x) over every other axis; layer norm each row
over its trailing `normalized_shape` dims. Variances are biased (divided by the count) where they
normalise; PyTorch's running variance takes the unbiased one (`unbiased=True`), Keras's the biased.
"""
import numpy as np

from .._checks import channel_view, check_batch_norm, check_channel_vector, check_eps, check_output, layer_norm_view
from ._core import as_f64

__all__ = ["batch_norm", "batch_norm_backward", "layer_norm", "layer_norm_backward"]


def _channels(a, outer, channels, inner):
    return a.reshape(outer, channels, inner)


def _vector(op, name, a):
    return None if a is None else as_f64(op, name, a)


def batch_norm(x, weight=None, bias=None, running_mean=None, running_var=None, *, training=True, momentum=0.1,
               eps=1e-5, axis=1, unbiased=True, activation=None):
    r"""Batch normalization over every axis but `axis` (the channels):

    .. math::
        \mu_c = \frac{1}{m}\sum x, \quad \sigma^2_c = \frac{1}{m}\sum (x - \mu_c)^2, \quad
        y = \mathrm{act}\Big(\frac{x - \mu_c}{\sqrt{\sigma^2_c + \epsilon}}\,\gamma_c + \beta_c\Big)

    with the batch's statistics in training and the running ones otherwise. In training,
    `running_mean` and `running_var` (when given) are updated in place:
    :math:`r \leftarrow r (1 - \mathrm{momentum}) + s \cdot \mathrm{momentum}`, the variance entering
    as :math:`\sigma^2 m / (m - 1)` when `unbiased` (PyTorch) and as :math:`\sigma^2` when not
    (Keras, whose momentum is 1 - this one). weight and bias None mean 1 and 0; activation is None or
    "relu".

    Returns (y, mean, invstd): the statistics used, (C,) each, which backward takes.
    """
    op = "batch_norm"
    x = as_f64(op, "x", x)
    weight, bias = _vector(op, "weight", weight), _vector(op, "bias", bias)
    outer, channels, inner = check_batch_norm(op, x.shape, axis, weight, bias, running_mean, running_var,
                                              training, momentum, eps)
    if activation not in (None, "relu"):
        raise ValueError(f"{op}: activation must be None or 'relu', got {activation!r}")
    v = _channels(x, outer, channels, inner)
    m = outer * inner
    if training:
        mean = v.mean(axis=(0, 2))
        var = ((v - mean[None, :, None]) ** 2).mean(axis=(0, 2))
        if running_mean is not None:
            check_output(op, "running_mean", running_mean)
            check_output(op, "running_var", running_var)
            stat_var = var * m / (m - 1) if unbiased else var
            running_mean[...] = running_mean * (1.0 - momentum) + mean * momentum
            running_var[...] = running_var * (1.0 - momentum) + stat_var * momentum
    else:
        mean, var = as_f64(op, "running_mean", running_mean).copy(), as_f64(op, "running_var", running_var)
    invstd = 1.0 / np.sqrt(var + eps)
    gamma = np.ones(channels) if weight is None else weight
    beta = np.zeros(channels) if bias is None else bias
    y = (v - mean[None, :, None]) * (invstd * gamma)[None, :, None] + beta[None, :, None]
    if activation == "relu":
        y = np.maximum(y, 0.0)
    return y.reshape(x.shape), mean, invstd


def batch_norm_backward(dy, x, mean, invstd, weight=None, *, training=True, axis=1, relu_output=None):
    r"""Gradients of batch_norm, from the statistics it returned. With g = dy (zero where
    relu_output, the forward's output after a fused ReLU, is not > 0) and
    :math:`\hat x = (x - \mu) \cdot \mathrm{invstd}`, per channel over its m values:

    .. math::
        d\beta = \sum g, \quad d\gamma = \sum g \hat x, \quad
        dx = \gamma\,\mathrm{invstd}\,\Big(g - \frac{d\beta}{m} - \hat x \frac{d\gamma}{m}\Big)

    in training (the statistics depend on x); with training=False the statistics are constants and
    :math:`dx = \gamma\,\mathrm{invstd}\,g`. Returns (dx, dweight, dbias).
    """
    op = "batch_norm_backward"
    x = as_f64(op, "x", x)
    dy = as_f64(op, "dy", dy)
    if dy.shape != x.shape:
        raise ValueError(f"{op}: dy has shape {dy.shape}, expected x's {x.shape}")
    mean, invstd = as_f64(op, "mean", mean), as_f64(op, "invstd", invstd)
    outer, channels, inner = channel_view(op, x.shape, axis)
    for name, a in (("weight", weight), ("mean", mean), ("invstd", invstd)):
        check_channel_vector(op, name, None if a is None else np.asarray(a), channels)
    v = _channels(x, outer, channels, inner)
    g = _channels(dy, outer, channels, inner)
    if relu_output is not None:
        relu_output = as_f64(op, "relu_output", relu_output)
        if relu_output.shape != x.shape:
            raise ValueError(f"{op}: relu_output has shape {relu_output.shape}, expected x's {x.shape}")
        g = np.where(_channels(relu_output, outer, channels, inner) > 0, g, 0.0)
    gamma = np.ones(channels) if weight is None else as_f64(op, "weight", weight)
    m = outer * inner
    xhat = (v - mean[None, :, None]) * invstd[None, :, None]
    dbias = g.sum(axis=(0, 2))
    dweight = (g * xhat).sum(axis=(0, 2))
    k = (gamma * invstd)[None, :, None]
    if training:
        dx = k * (g - dbias[None, :, None] / m - xhat * (dweight / m)[None, :, None])
    else:
        dx = k * g
    return dx.reshape(x.shape), dweight, dbias


def layer_norm(x, normalized_shape, weight=None, bias=None, *, eps=1e-5):
    r"""Layer normalization over the trailing dims `normalized_shape` of x:

    .. math::
        \mu_r = \frac{1}{n}\sum_j x_{rj}, \quad \sigma^2_r = \frac{1}{n}\sum_j (x_{rj} - \mu_r)^2,
        \quad y_{rj} = \frac{x_{rj} - \mu_r}{\sqrt{\sigma^2_r + \epsilon}}\,\gamma_j + \beta_j

    weight and bias (normalized_shape each) None mean 1 and 0. Returns (y, mean, invstd), the
    statistics of shape x.shape[:-len(normalized_shape)].
    """
    op = "layer_norm"
    x = as_f64(op, "x", x)
    rows, cols, dims = layer_norm_view(op, x.shape, normalized_shape)
    check_eps(op, eps)
    gamma, beta = _affine(op, weight, bias, dims)
    r = x.reshape(rows, cols)
    mean = r.mean(axis=1)
    var = ((r - mean[:, None]) ** 2).mean(axis=1)
    invstd = 1.0 / np.sqrt(var + eps)
    y = (r - mean[:, None]) * invstd[:, None] * gamma + beta
    lead = x.shape[:x.ndim - len(dims)]
    return y.reshape(x.shape), mean.reshape(lead), invstd.reshape(lead)


def layer_norm_backward(dy, x, mean, invstd, normalized_shape, weight=None):
    r"""Gradients of layer_norm. With :math:`g = dy\,\gamma` and
    :math:`\hat x = (x - \mu_r)\,\mathrm{invstd}_r`, per row over its n values:

    .. math::
        dx = \mathrm{invstd}_r \big(g - \overline{g} - \hat x\,\overline{g \hat x}\big), \quad
        d\gamma = \sum_r dy\,\hat x, \quad d\beta = \sum_r dy

    Returns (dx, dweight, dbias), the last two of normalized_shape.
    """
    op = "layer_norm_backward"
    x = as_f64(op, "x", x)
    dy = as_f64(op, "dy", dy)
    if dy.shape != x.shape:
        raise ValueError(f"{op}: dy has shape {dy.shape}, expected x's {x.shape}")
    rows, cols, dims = layer_norm_view(op, x.shape, normalized_shape)
    gamma, _ = _affine(op, weight, None, dims)
    lead = x.shape[:x.ndim - len(dims)]
    mean, invstd = as_f64(op, "mean", mean), as_f64(op, "invstd", invstd)
    for name, a in (("mean", mean), ("invstd", invstd)):
        if a.shape != lead:
            raise ValueError(f"{op}: {name} has shape {a.shape}, expected {lead} (one per row)")
    r, d = x.reshape(rows, cols), dy.reshape(rows, cols)
    xhat = (r - mean.reshape(rows, 1)) * invstd.reshape(rows, 1)
    g = d * gamma.reshape(cols)
    dx = invstd.reshape(rows, 1) * (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True))
    return dx.reshape(x.shape), (d * xhat).sum(axis=0).reshape(dims), d.sum(axis=0).reshape(dims)


def _affine(op, weight, bias, dims):
    """gamma and beta flattened to (cols,): ones and zeros when None."""
    out = []
    for name, a, fill in (("weight", weight, 1.0), ("bias", bias, 0.0)):
        if a is None:
            out.append(np.full(int(np.prod(dims)), fill))
            continue
        a = as_f64(op, name, a)
        if a.shape != dims:
            raise ValueError(f"{op}: {name} has shape {a.shape}, expected normalized_shape {dims}")
        out.append(a.reshape(-1))
    return out
