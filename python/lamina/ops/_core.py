"""What every native op does with its arguments before the kernel call: array-likes become
arrays, integer inputs are cast to the op's float dtype, non-contiguous inputs are copied, and
arrays updated in place are checked and never copied.
"""
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from .._checks import FLOAT_DTYPES, as_array, check_output, check_shape

Array = npt.NDArray[Any]  # what the ops take and return: float32 or float64 (labels int64)


def as_float(op: str, name: str, x: npt.ArrayLike, dtype: Optional[npt.DTypeLike] = None,
             contiguous: bool = True) -> Array:
    """x as a float32/float64 array: integers (and float16) are cast to ``dtype`` (default float32)."""
    arr = as_array(op, name, x)
    if arr.dtype not in FLOAT_DTYPES:
        arr = arr.astype(dtype if dtype is not None else np.float32)
    return as_contiguous(arr) if contiguous else arr


def as_contiguous(arr: Array, dtype: Optional[npt.DTypeLike] = None) -> Array:
    """arr (cast to dtype) as a C-contiguous array; unlike np.ascontiguousarray, 0-d stays 0-d."""
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def inplace(op: str, name: str, arr: Array, shape: Optional[tuple[int, ...]] = None,
            dtype: Optional[npt.DTypeLike] = None) -> Array:
    """An array the kernel writes: the caller's own array, checked, never copied."""
    check_output(op, name, arr)
    if shape is not None:
        check_shape(op, name, arr, shape)
    if dtype is not None and arr.dtype != dtype:
        raise TypeError(f"{op}: {name} has dtype {arr.dtype} but must be {dtype} (it is updated in place)")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{op}: {name} must be C-contiguous (it is updated in place)")
    return arr
