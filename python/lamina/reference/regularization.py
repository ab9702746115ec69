"""Dropout in NumPy, with the counter-based mask written out: the specification of the kernel's
generator, bit for bit."""
import numpy as np

from .._checks import check_dropout
from ._core import as_f64

__all__ = ["dropout", "dropout_backward", "dropout_mask"]

_GAMMA = np.uint64(0x9E3779B97F4A7C15)


def _mix(z):
    # SplitMix64's finaliser: every output bit depends on every input bit.
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_mask(n, p, key, counter):
    r"""Which of n elements a dropout call with (key, counter) keeps.

    .. math::
        b_i = \mathrm{mix}(\mathrm{key} + (\mathrm{counter} + i + 1) \cdot \gamma) \bmod 2^{64},
        \qquad \mathrm{keep}_i = \lfloor b_i / 2^{32} \rfloor \ge \lfloor p \cdot 2^{32} \rfloor

    with :math:`\gamma` = 0x9E3779B97F4A7C15 and mix SplitMix64's finaliser: element i keeps with
    probability :math:`1 - p` (to within :math:`2^{-32}`), independently of how a kernel splits the
    elements among threads.
    """
    check_dropout("dropout_mask", p, key, counter)
    i = np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        bits = _mix(np.uint64(key) + (np.uint64(counter) + i + np.uint64(1)) * _GAMMA)
    return (bits >> np.uint64(32)) >= np.uint64(int(p * 4294967296.0))


def dropout(x, p, key, counter):
    r"""Inverted dropout: :math:`y = x \cdot \mathrm{keep} / (1 - p)`, element i taking the mask of
    flat index i (C order).

    Example::

        >>> dropout(np.ones(3), 0.0, key=1, counter=0)
        array([1., 1., 1.])
    """
    x = as_f64("dropout", "x", x)
    keep = dropout_mask(x.size, p, key, counter).reshape(x.shape)
    return np.where(keep, x * (1.0 / (1.0 - p)), 0.0)


def dropout_backward(dy, p, key, counter):
    r"""Gradient of dropout: :math:`dx = dy \cdot \mathrm{keep} / (1 - p)`, the same mask."""
    return dropout(dy, p, key, counter)
