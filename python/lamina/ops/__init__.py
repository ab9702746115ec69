"""The native kernels, one Python function each, mirrored name for name by ``lamina.reference``.

One module per family (``gemm``, ``dense``, ``activations``, ``losses``, ``optim``, ...). Each
function turns what a user passes into what the kernels take (see ``_core``) and runs the same
argument checks as the reference (``lamina._checks``), so both reject bad input with the same
message.
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
