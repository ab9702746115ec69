"""Matrix products in float64 NumPy: matmul and gemm with its epilogue."""
import numpy as np

from .._checks import check_activation, check_ndim, check_output, check_shape
from ._core import as_f64, apply_activation

__all__ = ['matmul', 'gemm']


def matmul(a, b):
    r"""Matrix product :math:`C = A B`.

    Args:
        a: left matrix.
        b: right matrix.

    Shape:
        - a: :math:`(M, K)`, b: :math:`(K, N)`
        - Output: :math:`(M, N)`, float64

    Example::

        >>> matmul(np.ones((2, 3)), np.ones((3, 4))).shape
        (2, 4)
    """
    a = as_f64("matmul", "a", a)
    b = as_f64("matmul", "b", b)
    check_ndim("matmul", "a", a, 2, "(M, K)")
    check_ndim("matmul", "b", b, 2, "(K, N)")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: b has shape {b.shape}, expected ({a.shape[1]}, N) to match a of shape {a.shape}")
    return a @ b


def gemm(a, b, c=None, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, bias=None, activation=None):
    r"""General matrix product with a fused epilogue.

    .. math::
        C = \mathrm{act}(\alpha \, \mathrm{op}(A) \, \mathrm{op}(B) + \beta C + \mathrm{bias}),
        \qquad \mathrm{op}(X) = X^T \text{ if trans\_X else } X

    ``bias`` is added to every row (one value per column). When ``c`` is given it is overwritten
    in place (in its own dtype) and returned; ``beta=1`` accumulates into it. When ``c`` is None a
    new float64 array is returned and ``beta`` is ignored.

    Args:
        a: left matrix, transposed first if ``trans_a``.
        b: right matrix, transposed first if ``trans_b``.
        c: optional output, updated in place.
        trans_a, trans_b: use the transpose of ``a`` / ``b``.
        alpha: scale of the product.
        beta: scale of the old ``c`` (only when ``c`` is given).
        bias: optional per-column bias.
        activation: None, "relu", "sigmoid" or "tanh", applied last.

    Shape:
        - op(a): :math:`(M, K)`, op(b): :math:`(K, N)`, c: :math:`(M, N)`, bias: :math:`(N,)`
        - Output: :math:`(M, N)`

    Example::

        >>> c = np.zeros((2, 4))
        >>> gemm(np.ones((3, 2)), np.ones((3, 4)), c, trans_a=True, beta=1.0, activation="relu")[0]
        array([3., 3., 3., 3.])
    """
    op = "gemm"
    check_activation(op, activation)
    a = as_f64(op, "a", a)
    b = as_f64(op, "b", b)
    check_ndim(op, "a", a, 2, "(K, M)" if trans_a else "(M, K)")
    check_ndim(op, "b", b, 2, "(N, K)" if trans_b else "(K, N)")
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    m, k = opa.shape
    n = opb.shape[1]
    if opb.shape[0] != k:
        expected = f"(N, {k})" if trans_b else f"({k}, N)"
        raise ValueError(
            f"gemm: b has shape {b.shape}, expected {expected} (trans_b={trans_b}) to match a of shape "
            f"{a.shape} (trans_a={trans_a})"
        )

    z = alpha * (opa @ opb)
    if c is not None:
        check_output(op, "c", c)
        check_shape(op, "c", c, (m, n))
        if beta != 0:  # as in BLAS, beta = 0 means C is not read (it may hold NaN)
            z = z + beta * c.astype(np.float64)
    if bias is not None:
        bias = as_f64(op, "bias", bias)
        check_shape(op, "bias", bias, (n,), "(one value per column of C)")
        z = z + bias
    y = apply_activation(z, activation)
    if c is None:
        return y
    c[...] = y
    return c


