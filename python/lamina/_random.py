"""The one random generator lamina draws from: every weight initialisation calls `generator()`.

`manual_seed(n)` replaces it with a freshly seeded NumPy Generator, so a seeded script is repeatable;
without a seed it starts from OS entropy, like NumPy's `default_rng()`.
"""
import operator

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed):
    """Reseed lamina's global generator (used by every weight initialiser).

    Args:
        seed (int): a non-negative integer.

    Returns:
        numpy.random.Generator: the new generator (also what `generator()` returns from now on).

    Example:
        >>> import lamina as lm
        >>> _ = lm.manual_seed(0)
        >>> a = lm.Linear(3, 2).weight.data
        >>> _ = lm.manual_seed(0)
        >>> bool((a == lm.Linear(3, 2).weight.data).all())
        True
    """
    global _generator
    if isinstance(seed, bool):
        raise TypeError("manual_seed expects an integer, got a bool")
    try:
        seed = operator.index(seed)
    except TypeError:
        raise TypeError(f"manual_seed expects an integer, got {type(seed).__name__}") from None
    if seed < 0:
        raise ValueError(f"manual_seed expects a non-negative integer, got {seed}")
    _generator = np.random.default_rng(seed)
    return _generator


def generator():
    """Return the global `numpy.random.Generator` that lamina's initialisers draw from."""
    return _generator
