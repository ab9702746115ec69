"""lamina's randomness: a NumPy Generator for weight initialisation and shuffling (`generator()`),
and a counter-based stream for dropout masks (`dropout_counters`).

A dropout mask element is a hash of (key, counter) computed by the kernel itself, so it depends
neither on the thread count nor on the path (native plan or layer by layer): each training-mode
Dropout call takes the next `n` counters of the stream. `manual_seed(n)` reseeds both, so a seeded
script is repeatable; without a seed both start from OS entropy, like NumPy's `default_rng()`.
"""
import numpy as np

from ._checks import check_int

_generator = np.random.default_rng()
_STREAM = 0x6C616D696E61  # "lamina": keeps the dropout key apart from the Generator's own state
_dropout_key = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
_dropout_counter = 0


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
    global _generator, _dropout_key, _dropout_counter
    seed = check_int(seed, "manual_seed: seed")
    _generator = np.random.default_rng(seed)
    _dropout_key = int(np.random.SeedSequence([seed, _STREAM]).generate_state(1, np.uint64)[0])
    _dropout_counter = 0
    return _generator


def generator():
    """Return the global `numpy.random.Generator` that lamina's initialisers draw from."""
    return _generator


def dropout_counters(n):
    """Take the next `n` counters of the dropout stream: returns (key, first counter)."""
    global _dropout_counter
    start = _dropout_counter
    _dropout_counter = (start + n) % (1 << 64)
    return _dropout_key, start


def dropout_position():
    """(key, next counter) of the dropout stream, without taking any."""
    return _dropout_key, _dropout_counter
