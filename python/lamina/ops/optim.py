"""Optimizer updates, in place, PyTorch semantics."""

from .. import _native
from .._checks import check_adam_hyper, check_sgd_hyper, check_shape
from ._core import as_float, inplace

__all__ = ['sgd_step', 'adam_step']


def sgd_step(param, grad, velocity=None, *, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    r"""One SGD step in place (``torch.optim.SGD``, dampening 0): see ``lamina.reference.sgd_step``."""
    op = "sgd_step"
    inplace(op, "param", param)
    grad = as_float(op, "grad", grad, param.dtype)
    check_shape(op, "grad", grad, param.shape, "(the shape of param)")
    check_sgd_hyper(op, lr, momentum, weight_decay, nesterov, velocity)
    if momentum != 0:
        inplace(op, "velocity", velocity, param.shape, param.dtype)
    else:
        velocity = None
    _native.sgd_step(param, grad, velocity, float(lr), float(momentum), float(weight_decay), bool(nesterov))


def adam_step(param, grad, m, v, *, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    r"""One Adam step in place (``torch.optim.Adam``): see ``lamina.reference.adam_step``."""
    op = "adam_step"
    inplace(op, "param", param)
    inplace(op, "m", m, param.shape, param.dtype)
    inplace(op, "v", v, param.shape, param.dtype)
    grad = as_float(op, "grad", grad, param.dtype)
    check_shape(op, "grad", grad, param.shape, "(the shape of param)")
    check_adam_hyper(op, step, lr, beta1, beta2, eps, weight_decay)
    _native.adam_step(param, grad, m, v, int(step), float(lr), float(beta1), float(beta2), float(eps),
                      float(weight_decay))
