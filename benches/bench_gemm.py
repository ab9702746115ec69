"""Square matrix products C = A @ B: lamina's GEMM engine beside NumPy's BLAS and torch.mm, one group
per size, 1 and 2 threads. sgemm at 256..2048 (float32) and dgemm at 1024 (float64).

Run: python -m pytest benches/bench_gemm.py --benchmark-only"""
import pytest

SGEMM_SIZES = [256, 512, 1024, pytest.param(2048, marks=pytest.mark.heavy)]


def square_product(lib, a, b):
    """A zero-argument callable computing a @ b with the given library (inputs already in place)."""
    if lib.name == "lamina":
        matmul = lib.mod.ops.matmul
        return lambda: matmul(a, b)
    if lib.name == "numpy":
        return lambda: a @ b
    ta, tb = lib.mod.from_numpy(a), lib.mod.from_numpy(b)  # shares memory: no copy inside the timing
    mm = lib.mod.mm
    return lambda: mm(ta, tb)


@pytest.mark.parametrize("n", SGEMM_SIZES)
def test_sgemm(measure, lib, rng, n):
    a = rng.standard_normal((n, n), dtype="float32")
    b = rng.standard_normal((n, n), dtype="float32")
    measure(square_product(lib, a, b), group=f"sgemm {n}", flops=2 * n**3, size=n, dtype="float32")


@pytest.mark.parametrize("n", [1024])
def test_dgemm(measure, lib, rng, n):
    a = rng.standard_normal((n, n))
    b = rng.standard_normal((n, n))
    measure(square_product(lib, a, b), group=f"dgemm {n}", flops=2 * n**3, size=n, dtype="float64")
