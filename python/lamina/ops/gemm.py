"""Matrix products on the packed GEMM engine: matmul and gemm with a fused epilogue."""
from typing import Optional

import numpy as np
import numpy.typing as npt

from .. import _native
from .._checks import check_activation, check_ndim, check_shape
from ._core import Array, as_float, inplace

__all__ = ['matmul', 'gemm']


def matmul(a: npt.ArrayLike, b: npt.ArrayLike) -> Array:
    r"""Matrix product :math:`C = A B` on the packed GEMM engine (any strides, no copies).

    Shape: a :math:`(M, K)`, b :math:`(K, N)` -> :math:`(M, N)`.
    """
    return gemm(a, b)


def gemm(a: npt.ArrayLike, b: npt.ArrayLike, c: Optional[Array] = None, *, trans_a: bool = False,
         trans_b: bool = False, alpha: float = 1.0, beta: float = 0.0, bias: Optional[npt.ArrayLike] = None,
         activation: Optional[str] = None) -> Array:
    r"""General matrix product with a fused epilogue.

    .. math::
        C = \mathrm{act}(\alpha \, \mathrm{op}(A) \, \mathrm{op}(B) + \beta C + \mathrm{bias})

    Args:
        a, b: operands; transposed and strided views are read in place.
        c: None for a new array (beta ignored), or an array overwritten in place; beta=1 accumulates.
        trans_a, trans_b: use the transpose of a or b.
        alpha, beta: scalars; beta = 0 means c is not read.
        bias: (N,) added to every row, or None.
        activation: None, "relu", "sigmoid" or "tanh", applied last.

    Shape: op(a) :math:`(M, K)`, op(b) :math:`(K, N)`, c :math:`(M, N)`, bias :math:`(N,)`.

    Example::

        >>> gemm(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32), bias=np.ones(4, np.float32))[0]
        array([4., 4., 4., 4.], dtype=float32)
    """
    op = "gemm"
    check_activation(op, activation)
    a = as_float(op, "a", a, contiguous=False)
    b = as_float(op, "b", b, a.dtype, contiguous=False)
    check_ndim(op, "a", a, 2, "(K, M)" if trans_a else "(M, K)")
    check_ndim(op, "b", b, 2, "(N, K)" if trans_b else "(K, N)")
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    m, k = opa.shape
    if opb.shape[0] != k:
        expected = f"(N, {k})" if trans_b else f"({k}, N)"
        raise ValueError(
            f"gemm: b has shape {b.shape}, expected {expected} (trans_b={trans_b}) to match a of shape "
            f"{a.shape} (trans_a={trans_a})"
        )
    n = opb.shape[1]
    if c is None:
        c = np.empty((m, n), dtype=a.dtype)
        beta = 0.0
    else:
        inplace(op, "c", c, (m, n), a.dtype)
    if bias is not None:
        bias = as_float(op, "bias", bias, a.dtype)
        check_shape(op, "bias", bias, (n,), "(one value per column of C)")
    _native.gemm(c, opa, opb, bias, float(alpha), float(beta), activation)
    return c


