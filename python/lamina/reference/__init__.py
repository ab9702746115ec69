"""Plain NumPy float64 reference for every op in ``lamina.ops``: same names, same signatures.

This package is the specification of the math, one module per family: each docstring gives the
formula, and the native kernels are tested against these functions. Readability wins over speed.
"""
from .._checks import OP_NAMES
from .activations import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .dense import *  # noqa: F401,F403
from .gemm import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from .regularization import *  # noqa: F401,F403
from .reshaping import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .recurrent import *  # noqa: F401,F403

__all__ = list(OP_NAMES)
