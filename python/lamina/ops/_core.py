"""What every native op does with its arguments before the kernel call: array-likes become
arrays, integer inputs are cast to the op's float dtype, non-contiguous inputs are copied, and
arrays updated in place are checked and never copied.
"""
import numpy as np

from .._checks import FLOAT_DTYPES, as_array, check_output, check_shape


def as_float(op, name, x, dtype=None, contiguous=True):
    """x as a float32/float64 array: integers (and float16) are cast to ``dtype`` (default float32)."""
    arr = as_array(op, name, x)
    if arr.dtype not in FLOAT_DTYPES:
        arr = arr.astype(dtype if dtype is not None else np.float32)
    return as_contiguous(arr) if contiguous else arr


def as_contiguous(arr, dtype=None):
    """arr (cast to dtype) as a C-contiguous array; unlike np.ascontiguousarray, 0-d stays 0-d."""
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def inplace(op, name, arr, shape=None, dtype=None):
    """An array the kernel writes: the caller's own array, checked, never copied."""
    check_output(op, name, arr)
    if shape is not None:
        check_shape(op, name, arr, shape)
    if dtype is not None and arr.dtype != dtype:
        raise TypeError(f"{op}: {name} has dtype {arr.dtype} but must be {dtype} (it is updated in place)")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{op}: {name} must be C-contiguous (it is updated in place)")
    return arr
