"""`Parameter`: a trainable array, its gradient, and whether it is trained (`requires_grad`, which
Keras code reaches as `trainable`).
"""
import numpy as np

from . import _changes
from ._checks import FLOAT_DTYPES, check_flag


class Parameter:
    """A trainable array and its gradient.

    `data` and `grad` are NumPy arrays of the same shape and dtype; `grad` starts at zero and
    backward passes accumulate into it in place, so optimizers may hold on to both arrays. A
    parameter with `requires_grad = False` (PyTorch) or `trainable = False` (Keras) is frozen:
    backward leaves its gradient alone and optimizers do not update it, in both the layer-by-layer
    path and the native plan.

    Args:
        data (numpy.ndarray): float32 or float64 values (either byte order); used as is when
            C-contiguous, aligned, writeable and in native byte order, otherwise copied.
        requires_grad (bool): train this parameter. Default: True.

    Example:
        >>> p = Parameter(np.ones((2, 3), dtype=np.float32))
        >>> p.grad.shape, p.grad.dtype
        ((2, 3), dtype('float32'))
    """

    __slots__ = ("data", "grad", "requires_grad")

    def __setattr__(self, name, value):
        # Compiled native plans point at the arrays themselves and leave frozen parameters out:
        # rebinding an array or freezing is a change they must see (see _changes.py); in-place
        # updates need nothing.
        if name == "requires_grad":
            value = check_flag(value, "requires_grad")
        object.__setattr__(self, name, value)
        _changes.happened()

    def __init__(self, data, requires_grad=True):
        arr = np.asarray(data)
        if arr.dtype.kind == "f" and not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if arr.dtype not in FLOAT_DTYPES:
            raise TypeError(f"Parameter data must be float32 or float64, got {arr.dtype}")
        # The kernels update data in place through typed pointers: it must be aligned too.
        self.data = np.require(arr, requirements=["C", "A", "W"])
        self.grad = np.zeros_like(self.data)
        self.requires_grad = requires_grad

    @property
    def trainable(self):
        """Keras's name for `requires_grad`."""
        return self.requires_grad

    @trainable.setter
    def trainable(self, value):
        self.requires_grad = value

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    @property
    def ndim(self):
        return self.data.ndim

    def numel(self):
        return self.data.size

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            if copy is False:
                raise ValueError(f"Parameter of dtype {self.data.dtype} cannot be viewed as {np.dtype(dtype)}")
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __repr__(self):
        frozen = "" if self.requires_grad else ", requires_grad=False"
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}{frozen})"
