"""The dense (fully connected) layer in float64 NumPy, forward and backward."""

from .._checks import check_activation, check_ndim, check_output, check_shape
from ._core import as_f64, apply_activation

__all__ = ['linear', 'linear_backward']


def linear(x, W, b=None, activation=None):
    r"""Fully connected layer, PyTorch weight layout.

    .. math::
        y = \mathrm{act}(x W^T + b)

    Args:
        x: input batch.
        W: weight, one row per output feature.
        b: optional bias.
        activation: None, "relu", "sigmoid" or "tanh".

    Shape:
        - x: :math:`(B, \text{in})`, W: :math:`(\text{out}, \text{in})`, b: :math:`(\text{out},)`
        - Output: :math:`(B, \text{out})`, float64

    Example::

        >>> linear(np.ones((2, 3)), np.ones((4, 3)), np.zeros(4)).shape
        (2, 4)
    """
    op = "linear"
    check_activation(op, activation)
    x = as_f64(op, "x", x)
    W = as_f64(op, "W", W)
    check_ndim(op, "x", x, 2, "(batch, in_features)")
    check_ndim(op, "W", W, 2, "(out_features, in_features)")
    if W.shape[1] != x.shape[1]:
        raise ValueError(
            f"linear: W has shape {W.shape}, expected (out_features, {x.shape[1]}) to match x of shape {x.shape}"
        )
    z = x @ W.T
    if b is not None:
        b = as_f64(op, "b", b)
        check_shape(op, "b", b, (W.shape[0],), "(out_features,)")
        z = z + b
    return apply_activation(z, activation)


def linear_backward(dy, x, W, dW=None, db=None, need_dx=True):
    r"""Gradients of :math:`y = x W^T + b` (the activation's backward is applied to ``dy`` first).

    .. math::
        dx = dy \, W, \qquad dW \mathrel{+}= dy^T x, \qquad db \mathrel{+}= \textstyle\sum_{batch} dy

    Args:
        dy: gradient of the loss with respect to the pre-activation output.
        x: the layer's input.
        W: the layer's weight.
        dW: None for a fresh array, or an array to accumulate into in place.
        db: None for a fresh array, an array to accumulate into in place, or False to skip it.
        need_dx: when False, ``dx`` is not computed and returned as None (first layer).

    Shape:
        - dy: :math:`(B, \text{out})`, x: :math:`(B, \text{in})`, W: :math:`(\text{out}, \text{in})`
        - Output: dx :math:`(B, \text{in})`, dW :math:`(\text{out}, \text{in})`, db :math:`(\text{out},)`

    Example::

        >>> dx, dW, db = linear_backward(np.ones((2, 4)), np.ones((2, 3)), np.ones((4, 3)))
        >>> dx.shape, dW.shape, db.shape
        ((2, 3), (4, 3), (4,))
    """
    op = "linear_backward"
    dy = as_f64(op, "dy", dy)
    x = as_f64(op, "x", x)
    W = as_f64(op, "W", W)
    check_ndim(op, "x", x, 2, "(batch, in_features)")
    check_ndim(op, "W", W, 2, "(out_features, in_features)")
    batch, n_in = x.shape
    n_out = W.shape[0]
    check_shape(op, "W", W, (n_out, n_in), f"to match x of shape {x.shape}")
    why = f"(batch, out_features) for x of shape {x.shape} and W of shape {W.shape}"
    check_shape(op, "dy", dy, (batch, n_out), why)

    dx = dy @ W if need_dx else None

    grad_W = dy.T @ x
    if dW is None:
        dW = grad_W
    else:
        check_output(op, "dW", dW)
        check_shape(op, "dW", dW, W.shape)
        dW[...] = dW + grad_W

    # `db is False` rather than `not db`: an array would make `not db` ambiguous.
    if db is False:
        db = None
    else:
        grad_b = dy.sum(axis=0)
        if db is None:
            db = grad_b
        else:
            check_output(op, "db", db)
            check_shape(op, "db", db, (n_out,))
            db[...] = db + grad_b
    return dx, dW, db


