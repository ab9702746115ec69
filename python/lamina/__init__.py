"""lamina: neural-network layers for the CPU with a packed AVX2/FMA GEMM, fused epilogues and OpenMP.

NumPy arrays in, NumPy arrays out. See README.md for a tour; ``lamina.ops`` holds the native kernels
and ``lamina.reference`` their plain-NumPy float64 mirror.
"""
from . import _native

__version__ = _native.build_info()["version"]


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (>= 1) in native kernels; capped by OpenMP's limit (e.g. threadpoolctl)."""
    _native.set_num_threads(int(n))


def get_num_threads() -> int:
    """Threads the native kernels use now."""
    return _native.get_num_threads()


def build_info() -> dict:
    """Version, compiler, OpenMP, and the kernel path in use ("avx2" or "generic")."""
    return dict(_native.build_info())
