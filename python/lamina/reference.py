"""Plain NumPy float64 reference for every op in ``lamina.ops``: same names, same signatures.

This module is the specification of the math: each docstring gives the formula, and the native
kernels are tested against these functions. Readability wins over speed here.
"""

import numpy as np

from ._checks import (
    OP_NAMES,
    as_array,
    check_activation,
    check_ndim,
    check_nonempty,
    check_output,
    check_shape,
    check_labels,
    check_unit_interval,
    check_adam_hyper,
    check_sgd_hyper,
)

__all__ = list(OP_NAMES)


def _as_f64(op, name, x):
    return as_array(op, name, x).astype(np.float64, copy=False)


def _apply_activation(z, activation):
    if activation is None:
        return z
    if activation == "relu":
        return _relu(z)
    if activation == "sigmoid":
        return _sigmoid(z)
    return np.tanh(z)


def _relu(z):
    return np.maximum(z, 0.0)


def _sigmoid(z):
    # exp(-|z|) never overflows; the two branches are the same function for z >= 0 and z < 0.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


# ---------------------------------------------------------------------------------------------
# Matrix products


def matmul(a, b):
    r"""Matrix product :math:`C = A B`.

    Args:
        a: left matrix.
        b: right matrix.

    Shape:
        - a: :math:`(M, K)`, b: :math:`(K, N)`
        - Output: :math:`(M, N)`, float64

    Example::

        >>> matmul(np.ones((2, 3)), np.ones((3, 4))).shape
        (2, 4)
    """
    a = _as_f64("matmul", "a", a)
    b = _as_f64("matmul", "b", b)
    check_ndim("matmul", "a", a, 2, "(M, K)")
    check_ndim("matmul", "b", b, 2, "(K, N)")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: b has shape {b.shape}, expected ({a.shape[1]}, N) to match a of shape {a.shape}")
    return a @ b


def gemm(a, b, c=None, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, bias=None, activation=None):
    r"""General matrix product with a fused epilogue.

    .. math::
        C = \mathrm{act}(\alpha \, \mathrm{op}(A) \, \mathrm{op}(B) + \beta C + \mathrm{bias}),
        \qquad \mathrm{op}(X) = X^T \text{ if trans\_X else } X

    ``bias`` is added to every row (one value per column). When ``c`` is given it is overwritten
    in place (in its own dtype) and returned; ``beta=1`` accumulates into it. When ``c`` is None a
    new float64 array is returned and ``beta`` is ignored.

    Args:
        a: left matrix, transposed first if ``trans_a``.
        b: right matrix, transposed first if ``trans_b``.
        c: optional output, updated in place.
        trans_a, trans_b: use the transpose of ``a`` / ``b``.
        alpha: scale of the product.
        beta: scale of the old ``c`` (only when ``c`` is given).
        bias: optional per-column bias.
        activation: None, "relu", "sigmoid" or "tanh", applied last.

    Shape:
        - op(a): :math:`(M, K)`, op(b): :math:`(K, N)`, c: :math:`(M, N)`, bias: :math:`(N,)`
        - Output: :math:`(M, N)`

    Example::

        >>> c = np.zeros((2, 4))
        >>> gemm(np.ones((3, 2)), np.ones((3, 4)), c, trans_a=True, beta=1.0, activation="relu")[0]
        array([3., 3., 3., 3.])
    """
    op = "gemm"
    check_activation(op, activation)
    a = _as_f64(op, "a", a)
    b = _as_f64(op, "b", b)
    check_ndim(op, "a", a, 2, "(K, M)" if trans_a else "(M, K)")
    check_ndim(op, "b", b, 2, "(N, K)" if trans_b else "(K, N)")
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    m, k = opa.shape
    n = opb.shape[1]
    if opb.shape[0] != k:
        expected = f"(N, {k})" if trans_b else f"({k}, N)"
        raise ValueError(
            f"gemm: b has shape {b.shape}, expected {expected} (trans_b={trans_b}) to match a of shape "
            f"{a.shape} (trans_a={trans_a})"
        )

    z = alpha * (opa @ opb)
    if c is not None:
        check_output(op, "c", c)
        check_shape(op, "c", c, (m, n))
        if beta != 0:  # as in BLAS, beta = 0 means C is not read (it may hold NaN)
            z = z + beta * c.astype(np.float64)
    if bias is not None:
        bias = _as_f64(op, "bias", bias)
        check_shape(op, "bias", bias, (n,), "(one value per column of C)")
        z = z + bias
    y = _apply_activation(z, activation)
    if c is None:
        return y
    c[...] = y
    return c


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
    x = _as_f64(op, "x", x)
    W = _as_f64(op, "W", W)
    check_ndim(op, "x", x, 2, "(batch, in_features)")
    check_ndim(op, "W", W, 2, "(out_features, in_features)")
    if W.shape[1] != x.shape[1]:
        raise ValueError(
            f"linear: W has shape {W.shape}, expected (out_features, {x.shape[1]}) to match x of shape {x.shape}"
        )
    z = x @ W.T
    if b is not None:
        b = _as_f64(op, "b", b)
        check_shape(op, "b", b, (W.shape[0],), "(out_features,)")
        z = z + b
    return _apply_activation(z, activation)


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
    dy = _as_f64(op, "dy", dy)
    x = _as_f64(op, "x", x)
    W = _as_f64(op, "W", W)
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


# ---------------------------------------------------------------------------------------------
# Activations. Backward passes take the forward *output* y, which is all each derivative needs.


def relu(x):
    r"""Rectified linear unit, elementwise: :math:`y = \max(x, 0)`.

    Args:
        x: input of any shape.

    Shape:
        - Output: same as x, float64

    Example::

        >>> relu(np.array([-1.0, 2.0]))
        array([0., 2.])
    """
    return _relu(_as_f64("relu", "x", x))


def relu_backward(dy, y):
    r"""Gradient of ReLU: :math:`dx = dy \cdot [y > 0]`.

    Args:
        dy: upstream gradient.
        y: the forward output ``relu(x)``.

    Shape:
        - dy, y: any shape, equal
        - Output: same as dy, float64

    Example::

        >>> relu_backward(np.array([5.0, 5.0]), np.array([0.0, 2.0]))
        array([0., 5.])
    """
    dy, y = _pair("relu_backward", dy, y)
    return np.where(y > 0, dy, 0.0)


def sigmoid(x):
    r"""Logistic sigmoid, elementwise: :math:`y = 1 / (1 + e^{-x})`, evaluated without overflow.

    Args:
        x: input of any shape.

    Shape:
        - Output: same as x, float64

    Example::

        >>> sigmoid(np.array([0.0]))
        array([0.5])
    """
    return _sigmoid(_as_f64("sigmoid", "x", x))


def sigmoid_backward(dy, y):
    r"""Gradient of the sigmoid: :math:`dx = dy \cdot y (1 - y)`.

    Args:
        dy: upstream gradient.
        y: the forward output ``sigmoid(x)``.

    Shape:
        - dy, y: any shape, equal
        - Output: same as dy, float64

    Example::

        >>> sigmoid_backward(np.array([1.0]), np.array([0.5]))
        array([0.25])
    """
    dy, y = _pair("sigmoid_backward", dy, y)
    return dy * y * (1.0 - y)


def tanh(x):
    r"""Hyperbolic tangent, elementwise: :math:`y = \tanh(x)`.

    Args:
        x: input of any shape.

    Shape:
        - Output: same as x, float64

    Example::

        >>> tanh(np.array([0.0]))
        array([0.])
    """
    return np.tanh(_as_f64("tanh", "x", x))


def tanh_backward(dy, y):
    r"""Gradient of tanh: :math:`dx = dy \cdot (1 - y^2)`.

    Args:
        dy: upstream gradient.
        y: the forward output ``tanh(x)``.

    Shape:
        - dy, y: any shape, equal
        - Output: same as dy, float64

    Example::

        >>> tanh_backward(np.array([1.0]), np.array([0.0]))
        array([1.])
    """
    dy, y = _pair("tanh_backward", dy, y)
    return dy * (1.0 - y * y)


def softmax(x):
    r"""Softmax over each row: :math:`y_{ij} = e^{x_{ij} - m_i} / \sum_k e^{x_{ik} - m_i}`, :math:`m_i = \max_k x_{ik}`.

    Subtracting the row maximum changes nothing mathematically and keeps every exponent <= 0, so
    logits of any finite magnitude give finite probabilities.

    Args:
        x: logits, one row per sample.

    Shape:
        - x: :math:`(B, C)`
        - Output: :math:`(B, C)`, float64, rows sum to 1

    Example::

        >>> softmax(np.array([[0.0, 0.0]]))
        array([[0.5, 0.5]])
    """
    x = _as_f64("softmax", "x", x)
    check_ndim("softmax", "x", x, 2, "(batch, classes)")
    return _softmax(x)


def _softmax(x):
    # An empty class axis has no maximum; its softmax is the empty row.
    if x.shape[1] == 0:
        return np.zeros_like(x)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_backward(dy, y):
    r"""Gradient of the row softmax: :math:`dx = y \odot (dy - \sum_k dy_{\cdot k} \, y_{\cdot k})`.

    Args:
        dy: upstream gradient.
        y: the forward output ``softmax(x)``.

    Shape:
        - dy, y: :math:`(B, C)`
        - Output: :math:`(B, C)`, float64

    Example::

        >>> softmax_backward(np.array([[1.0, 1.0]]), np.array([[0.5, 0.5]]))
        array([[0., 0.]])
    """
    dy, y = _pair("softmax_backward", dy, y)
    check_ndim("softmax_backward", "y", y, 2, "(batch, classes)")
    return y * (dy - np.sum(dy * y, axis=1, keepdims=True))


def _pair(op, dy, y):
    dy = _as_f64(op, "dy", dy)
    y = _as_f64(op, "y", y)
    check_shape(op, "dy", dy, y.shape, "(the shape of y)")
    return dy, y


# ---------------------------------------------------------------------------------------------
# Losses: each returns (loss as a Python float, gradient of the loss with respect to its input).


def cross_entropy(logits, target):
    r"""Mean softmax cross-entropy from logits, and its gradient.

    .. math::
        \ell = -\frac{1}{B} \sum_{i} \sum_{c} t_{ic} \log \mathrm{softmax}(z)_{ic},
        \qquad \frac{\partial \ell}{\partial z} = \frac{\mathrm{softmax}(z) \cdot \textstyle\sum_c t_{ic} - t}{B}

    which is :math:`(\mathrm{softmax}(z) - t) / B` for one-hot or probability rows (rows of t
    summing to 1). Integer labels :math:`y_i` stand for one-hot rows. The log-softmax is
    :math:`z - m - \log \sum e^{z - m}` with :math:`m` the row max, finite for any finite logits.

    Args:
        logits: unnormalised scores.
        target: integer class labels in [0, C), or float one-hot / probability rows in [0, 1].

    Shape:
        - logits: :math:`(B, C)`, B >= 1
        - target: :math:`(B,)` integers or :math:`(B, C)` floats
        - Output: (loss: float, dlogits :math:`(B, C)` float64)

    Example::

        >>> loss, dz = cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
        >>> round(loss, 6), dz.shape
        (1.386294, (2, 4))
    """
    op = "cross_entropy"
    z = _as_f64(op, "logits", logits)
    check_ndim(op, "logits", z, 2, "(batch, classes)")
    check_nonempty(op, "logits", z)
    batch, classes = z.shape
    t = _cross_entropy_target(op, target, batch, classes)

    shifted = z - z.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_sum
    loss = -np.sum(t * log_p) / batch
    dz = (np.exp(log_p) * t.sum(axis=1, keepdims=True) - t) / batch
    return float(loss), dz


def _cross_entropy_target(op, target, batch, classes):
    """Returns the target as a float64 (B, C) matrix of class probabilities."""
    t = as_array(op, "target", target)
    if t.ndim == 1:
        check_labels(op, t, batch, classes)
        onehot = np.zeros((batch, classes))
        onehot[np.arange(batch), t] = 1.0
        return onehot
    check_shape(op, "target", t, (batch, classes), "(integer labels (B,) or probability rows (B, C))")
    t = t.astype(np.float64, copy=False)
    check_unit_interval(op, t)
    return t


def binary_cross_entropy(logits, target):
    r"""Mean binary cross-entropy from logits, and its gradient.

    .. math::
        \ell = \frac{1}{n} \sum_j \big[\max(z_j, 0) - z_j t_j + \log(1 + e^{-|z_j|})\big],
        \qquad \frac{\partial \ell}{\partial z} = \frac{\sigma(z) - t}{n}

    The bracket equals :math:`-t \log \sigma(z) - (1 - t) \log(1 - \sigma(z))` but never
    overflows or takes the log of 0, whatever the size of :math:`z`.

    Args:
        logits: unnormalised scores, any shape with at least one element.
        target: floats in [0, 1], same shape.

    Shape:
        - logits, target: any shape, equal; n = number of elements
        - Output: (loss: float, dlogits float64 of the same shape)

    Example::

        >>> loss, dz = binary_cross_entropy(np.zeros((2, 1)), np.ones((2, 1)))
        >>> round(loss, 6)
        0.693147
    """
    op = "binary_cross_entropy"
    z = _as_f64(op, "logits", logits)
    t = _as_f64(op, "target", target)
    check_shape(op, "target", t, z.shape, "(the shape of logits)")
    check_nonempty(op, "logits", z)
    check_unit_interval(op, t)
    n = z.size
    per_element = np.maximum(z, 0.0) - z * t + np.log1p(np.exp(-np.abs(z)))
    loss = per_element.sum() / n
    dz = (_sigmoid(z) - t) / n
    return float(loss), dz


def mse(pred, target):
    r"""Mean squared error and its gradient.

    .. math::
        \ell = \frac{1}{n} \sum_j (p_j - t_j)^2, \qquad \frac{\partial \ell}{\partial p} = \frac{2 (p - t)}{n}

    Args:
        pred: predictions, any shape with at least one element.
        target: same shape.

    Shape:
        - pred, target: any shape, equal; n = number of elements
        - Output: (loss: float, dpred float64 of the same shape)

    Example::

        >>> mse(np.array([1.0, 3.0]), np.array([0.0, 0.0]))[0]
        5.0
    """
    op = "mse"
    p = _as_f64(op, "pred", pred)
    t = _as_f64(op, "target", target)
    check_shape(op, "target", t, p.shape, "(the shape of pred)")
    check_nonempty(op, "pred", p)
    diff = p - t
    return float(np.sum(diff * diff) / p.size), 2.0 * diff / p.size


PROBABILITY_EPS = 1e-7  # Keras's clip of probabilities before the log


def probability_cross_entropy(probs, target):
    r"""Mean cross-entropy of probabilities (a softmax output) and its gradient, as Keras computes
    ``categorical_crossentropy(from_logits=False)``.

    .. math::
        \ell = -\frac{1}{B} \sum_{i,c} t_{ic} \log \hat p_{ic}, \qquad
        \frac{\partial \ell}{\partial p} = -\frac{t}{B \hat p}, \qquad
        \hat p = \mathrm{clip}(p, 10^{-7}, 1 - 10^{-7})

    Args:
        probs: probabilities, rows summing to 1.
        target: integer labels in [0, C) or probability rows.

    Shape:
        - probs: :math:`(B, C)`, B >= 1; target: :math:`(B,)` or :math:`(B, C)`
        - Output: (loss: float, dprobs :math:`(B, C)` float64)

    Example::

        >>> round(probability_cross_entropy(np.full((1, 4), 0.25), np.array([2]))[0], 6)
        1.386294
    """
    op = "probability_cross_entropy"
    p = _as_f64(op, "probs", probs)
    check_ndim(op, "probs", p, 2, "(batch, classes)")
    check_nonempty(op, "probs", p)
    batch, classes = p.shape
    t = _cross_entropy_target(op, target, batch, classes)
    p = np.clip(p, PROBABILITY_EPS, 1.0 - PROBABILITY_EPS)
    return float(-np.sum(t * np.log(p)) / batch), -t / (p * batch)


def probability_binary_cross_entropy(probs, target):
    r"""Mean binary cross-entropy of probabilities (a sigmoid output) and its gradient, as Keras's
    ``binary_crossentropy(from_logits=False)``.

    .. math::
        \ell = -\frac{1}{n} \sum_j [t_j \log \hat p_j + (1 - t_j) \log(1 - \hat p_j)], \qquad
        \frac{\partial \ell}{\partial p} = \frac{\hat p - t}{n \hat p (1 - \hat p)}

    Shape:
        - probs, target: any shape, equal; n = number of elements
        - Output: (loss: float, dprobs float64 of the same shape)

    Example::

        >>> round(probability_binary_cross_entropy(np.full(2, 0.5), np.ones(2))[0], 6)
        0.693147
    """
    op = "probability_binary_cross_entropy"
    p = _as_f64(op, "probs", probs)
    t = _as_f64(op, "target", target)
    check_shape(op, "target", t, p.shape, "(the shape of probs)")
    check_nonempty(op, "probs", p)
    check_unit_interval(op, t)
    p = np.clip(p, PROBABILITY_EPS, 1.0 - PROBABILITY_EPS)
    n = p.size
    loss = -np.sum(t * np.log(p) + (1.0 - t) * np.log1p(-p)) / n
    return float(loss), (p - t) / (n * p * (1.0 - p))


# ---------------------------------------------------------------------------------------------
# Optimizer updates, PyTorch semantics, in place.


def _check_same_shape(op, param, name, arr):
    check_shape(op, name, arr, param.shape, "(the shape of param)")


def sgd_step(param, grad, velocity=None, *, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    r"""One stochastic-gradient-descent step, in place (as ``torch.optim.SGD`` with dampening 0).

    .. math::
        g &= \nabla + \lambda \theta \\
        v &= \mu v + g \quad (\text{if } \mu \ne 0;\ v \text{ starts at } 0, \text{ so the first step gives } v = g) \\
        g &= g + \mu v \ \text{(nesterov)} \quad \text{or} \quad g = v \\
        \theta &= \theta - \eta g

    Args:
        param: parameters :math:`\theta`, updated in place.
        grad: gradient :math:`\nabla`.
        velocity: momentum buffer :math:`v`, updated in place; required when momentum != 0.
        lr: learning rate :math:`\eta`.
        momentum: :math:`\mu`.
        weight_decay: L2 coefficient :math:`\lambda`.
        nesterov: use Nesterov momentum (needs momentum > 0).

    Shape:
        - param, grad, velocity: any shape, equal

    Example::

        >>> p = np.array([1.0]); sgd_step(p, np.array([0.5]), lr=0.1); p
        array([0.95])
    """
    op = "sgd_step"
    check_output(op, "param", param)
    g = _as_f64(op, "grad", grad)
    _check_same_shape(op, param, "grad", g)
    check_sgd_hyper(op, lr, momentum, weight_decay, nesterov, velocity)

    theta = param.astype(np.float64)
    g = g + weight_decay * theta
    if momentum != 0:
        check_output(op, "velocity", velocity)
        _check_same_shape(op, param, "velocity", velocity)
        v = momentum * velocity.astype(np.float64) + g
        velocity[...] = v
        g = g + momentum * v if nesterov else v
    param[...] = theta - lr * g


def adam_step(param, grad, m, v, *, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    r"""One Adam step, in place (as ``torch.optim.Adam``, L2 weight decay added to the gradient).

    .. math::
        g &= \nabla + \lambda \theta \\
        m &= \beta_1 m + (1 - \beta_1) g, \qquad v = \beta_2 v + (1 - \beta_2) g^2 \\
        \hat m &= m / (1 - \beta_1^t), \qquad \hat v = v / (1 - \beta_2^t) \\
        \theta &= \theta - \eta \, \hat m / (\sqrt{\hat v} + \epsilon)

    Args:
        param: parameters :math:`\theta`, updated in place.
        grad: gradient :math:`\nabla`.
        m: first-moment buffer, updated in place (zeros before step 1).
        v: second-moment buffer, updated in place (zeros before step 1).
        step: the step number :math:`t`, counting from 1.
        lr: learning rate :math:`\eta`.
        beta1, beta2: moment decay rates in [0, 1).
        eps: :math:`\epsilon`, added to the denominator.
        weight_decay: L2 coefficient :math:`\lambda`.

    Shape:
        - param, grad, m, v: any shape, equal

    Example::

        >>> p, m, v = np.array([1.0]), np.zeros(1), np.zeros(1)
        >>> adam_step(p, np.array([2.0]), m, v, step=1, lr=0.1); p.round(6)
        array([0.9])
    """
    op = "adam_step"
    check_output(op, "param", param)
    check_output(op, "m", m)
    check_output(op, "v", v)
    g = _as_f64(op, "grad", grad)
    for name, arr in (("grad", g), ("m", m), ("v", v)):
        _check_same_shape(op, param, name, arr)
    check_adam_hyper(op, step, lr, beta1, beta2, eps, weight_decay)

    theta = param.astype(np.float64)
    g = g + weight_decay * theta
    m_new = beta1 * m.astype(np.float64) + (1.0 - beta1) * g
    v_new = beta2 * v.astype(np.float64) + (1.0 - beta2) * g * g
    m_hat = m_new / (1.0 - beta1**step)
    v_hat = v_new / (1.0 - beta2**step)
    m[...] = m_new
    v[...] = v_new
    param[...] = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
