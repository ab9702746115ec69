"""Optimizer updates, PyTorch semantics, in place."""
import numpy as np

from .._checks import check_adam_hyper, check_output, check_sgd_hyper, check_shape
from ._core import as_f64

__all__ = ['sgd_step', 'adam_step']


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
    g = as_f64(op, "grad", grad)
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
    g = as_f64(op, "grad", grad)
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
