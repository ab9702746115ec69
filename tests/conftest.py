"""Shared test settings: the tolerances every test file uses, kept in one place with their reasons.

Each section belongs to one group of tests; add a new section rather than editing another's.
"""

from types import SimpleNamespace

import pytest

# ---- lamina.reference against finite differences, re-derivations and torch (test_reference.py) ----
#
# fd: central differences f'(x) ~ (f(x+h) - f(x-h)) / 2h in float64 with h = 1e-6 on O(1) inputs
#     err ~ h^2 |f'''| / 6 (truncation, ~1e-13) + eps |f| / h (rounding, ~1e-10 for |f| ~ 1), so
#     rtol 1e-6 / atol 1e-7 leaves three orders of margin and still catches any wrong formula, whose
#     error is O(1).
# exact: the same float64 math in another order or form (einsum against @, one-hot against
#     labels, a scalar loop against vectorised code): a few ulps per reduction term.
# torch: float64 in torch, different kernels and summation orders; same argument as exact with
#     room for torch's fused formulas (e.g. Adam's denominator written as sqrt(v)/sqrt(bc2) + eps).
REFERENCE_TOLERANCES = SimpleNamespace(
    fd_h=1e-6,
    fd_rtol=1e-6,
    fd_atol=1e-7,
    exact_rtol=1e-12,
    exact_atol=1e-13,
    torch_rtol=1e-10,
    torch_atol=1e-12,
)


@pytest.fixture(scope="session")
def ref_tol():
    """Tolerances for tests/test_reference.py (see the comment above REFERENCE_TOLERANCES)."""
    return REFERENCE_TOLERANCES


# ---- end of lamina.reference section ----


# ---- native ops against lamina.reference (test_ops.py and the layer tests) ----
#
# GEMM: each output is a dot product of K terms (plus bias and beta*C). Its rounding error in the
# working precision is bounded by gamma_K * (|A| |B|)_ij with gamma_K ~ K * eps (Higham, "Accuracy
# and Stability of Numerical Algorithms", 3.1); we allow 2 K eps of that bound, plus eps for the
# epilogue. This is far tighter than 1e-5 * K relative in float32 (eps = 6e-8) and still holds for
# any summation order, so it tests the kernel without depending on how it blocks the sum.
# Elementwise ops: libm's exp/tanh are within 1-2 ulps; with one or two extra roundings, 8 eps
# relative (plus 8 eps absolute near zero) covers them.
import numpy as np  # noqa: E402


def gemm_atol(dtype, k, magnitude):
    """Allowed |native - reference| for a K-term product whose |A||B| (+ epilogue) is `magnitude`."""
    eps = np.finfo(dtype).eps
    return (2.0 * max(k, 1) + 4.0) * eps * magnitude + np.finfo(dtype).tiny


def elementwise_tol(dtype):
    eps = float(np.finfo(dtype).eps)
    return dict(rtol=8 * eps, atol=8 * eps)


@pytest.fixture(params=["avx512", "avx2", "generic"])
def isa(request):
    """Runs a test on each kernel path; a path the CPU lacks is skipped, visibly."""
    from lamina import _native

    before = _native.isa()
    info = _native.build_info()
    if request.param == "avx512" and not info["cpu_avx512"]:
        pytest.skip("CPU has no AVX-512")
    if request.param == "avx2" and not info["cpu_avx2_fma"]:
        pytest.skip("CPU has no AVX2+FMA")
    _native.set_isa(request.param)
    yield request.param
    _native.set_isa(before)


@pytest.fixture(params=["packed", "in_place"])
def packing(request):
    """Runs a test with both operands packed, then with every operand the micro-kernel can read in
    place left in place (the default, "auto", picks between them per product)."""
    from lamina import _native

    before = _native.packing()
    _native.set_packing(request.param)
    yield request.param
    _native.set_packing(before)


@pytest.fixture(params=[1, 2])
def threads(request):
    import lamina

    before = lamina.get_num_threads()
    lamina.set_num_threads(request.param)
    yield request.param
    lamina.set_num_threads(before)


# ---- end of native ops section ----


# ---- layers, Sequential, losses, optimizers and examples (test_layers.py, test_sequential.py,
#      test_losses_optim.py, test_examples.py) ----
#
# These tests run a whole computation (one layer, a chain of layers, a loss, an optimizer step) in
# the layer's dtype and compare it with the same math written out in NumPy float64 on the same,
# exactly representable, inputs. Each result is a sum of k products, so as for GEMM above its error
# is bounded by ~2 k eps times the size of the terms; through a chain the errors of the layers add
# (the Jacobians here are O(1)), so callers pass k = the sum of the dot-product lengths along the
# way. The size of the terms is taken as max(1, max |expected|): inputs and weights are O(1) and the
# tests keep them so. 8 eps relative covers the elementwise math (exp, tanh) at each element. A wrong
# formula, a missing bias, a transposed weight or a dropped accumulation is an O(1) error and fails.
def layer_tol(dtype, k=1, scale=1.0):
    """rtol/atol for comparing a dtype computation of dot-product depth k with float64 NumPy."""
    eps = float(np.finfo(dtype).eps)
    return dict(rtol=8 * eps, atol=(2.0 * max(k, 1) + 8.0) * eps * max(1.0, scale))


def _assert_layer_close(actual, expected, dtype, k=1, what="value"):
    actual = np.asarray(actual)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: got shape {actual.shape}, expected {expected.shape}"
    finite = expected[np.isfinite(expected)]
    tol = layer_tol(dtype, k, float(np.abs(finite).max()) if finite.size else 1.0)
    bad = ~np.isclose(actual.astype(np.float64), expected, equal_nan=True, **tol)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        pytest.fail(f"{what}: shape {actual.shape}, {int(bad.sum())} of {bad.size} differ; first at {idx}: "
                    f"got {actual[idx]!r}, expected {expected[idx]!r} (dtype {np.dtype(dtype)}, k={k}, {tol})")


@pytest.fixture
def close():
    """close(actual, expected, dtype, k=1, what=...): assert with `layer_tol`, naming the first bad index."""
    return _assert_layer_close


# ---- end of layers section ----


# ---- hypothesis profiles (test_properties.py and tests/fuzz) ----
#
# "lamina" (the default): 200 examples per property keeps the whole property file to seconds on two
# cores while still covering each strategy's corners (0, 1, tile edges, every layout and dtype).
# No deadline: a first call pays for page faults and OpenMP start-up, which says nothing about
# correctness and would make timing-based failures flaky on a loaded machine. No example database:
# CI starts from a clean clone and the tests must not write into the checkout. "lamina-long" is for
# a longer local search (pytest --hypothesis-profile=lamina-long).
try:
    from hypothesis import settings as _hypothesis_settings
except ImportError:  # hypothesis is a test extra; tests that need it skip themselves
    _hypothesis_settings = None
if _hypothesis_settings is not None:
    _hypothesis_settings.register_profile("lamina", max_examples=200, deadline=None, database=None)
    _hypothesis_settings.register_profile("lamina-long", max_examples=2000, deadline=None, database=None)
    _hypothesis_settings.load_profile("lamina")


def pytest_configure(config):
    # Where mypy_extensions is installed, hypothesis's failure report imports it and it warns; with
    # warnings as errors that turned a falsified property into an INTERNALERROR without its example.
    config.addinivalue_line("filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")


# ---- end of hypothesis section ----


# ---- convolution (test_native_conv.py, test_reference_conv.py, test_native_plan_conv.py) ----
#
# Each output of a convolution is a dot product: forward over K = kh*kw*C/groups terms plus the
# bias, dx over kh*kw*Cout/groups terms, dW and db over N*Ho*Wo terms. gemm_atol's bound applies
# with the magnitude |x| * |w| computed by the same (reference) convolution of the magnitudes.
# A fused activation is at most 1.13-Lipschitz (GELU), so 1.2 times that bound plus
# elementwise_tol covers its rounding too.
def conv_atol(dtype, k, magnitude):
    """Allowed |native - reference| for a k-term convolution output of magnitude `magnitude`."""
    eps = np.finfo(dtype).eps
    return 1.2 * gemm_atol(dtype, k, magnitude) + 8 * eps * (1 + magnitude)


# ---- end of convolution section ----


# ---- pooling (test_native_pooling.py) ----
#
# Max pooling selects and never computes: its values and argmax indices equal the reference's
# exactly (a float32 input is exact in float64), and its backward adds at most `terms` values into a
# cell (the windows that overlap it), one rounding each. An average is a sum of `terms` window cells
# (or, backward, of the dy / divisor of the windows over a cell) and one division: the recursive sum's
# error bound gamma_terms * sum|x| (Higham 4.2) plus an ulp for each division, so (terms + 2) eps times
# the largest |value| involved. A wrong divisor, a missed or extra cell is an O(1/terms) error and fails.
# torch (float64) computes the same sums in the same order as the reference, up to its double
# division in adaptive pooling: a few ulps.
def pool_atol(dtype, terms, magnitude):
    eps = float(np.finfo(dtype).eps)
    return (terms + 2.0) * eps * max(magnitude, 1.0)


POOL_TORCH_TOL = dict(rtol=1e-13, atol=1e-14)

# ---- end of pooling section ----


# ---- normalization (test_native_normalization.py) ----
#
# Batch norm's statistics are sums in double rounded once to the dtype, so mean, var and invstd are
# within an ulp or two of the float64 reference. Each output element is then a few roundings in the
# dtype of a short expression: y = fma(x, scale, shift) with scale = gamma invstd and
# shift = beta - mean scale (each rounded once), dx = k g - (c1 + c2 (x - mean)). Their error is a few
# eps times the largest term of the expression, not of the result (the terms may cancel), so the
# tests pass that magnitude: NORM_ULPS eps of it. The parameter gradients are sums of m terms in
# double (m * 2**-53 of the sum of |terms|) rounded once to the dtype. A wrong formula, a missed
# mask or a wrong count m is an O(1) error of those magnitudes and fails.
NORM_ULPS = 16


def norm_atol(dtype, magnitude, terms=1):
    """Allowed |native - reference| for an expression whose largest term is `magnitude` (or, for a
    sum of `terms` values in double, the sum of their |values|)."""
    eps = float(np.finfo(dtype).eps)
    return (NORM_ULPS * eps + terms * 2.0 ** -53) * max(float(magnitude), float(np.finfo(dtype).tiny))


# ---- end of normalization section ----

# ---- recurrent layers and embedding (test_native_recurrent.py, test_reference_recurrent.py) ----
#
# A recurrent layer chains T steps, each a dot product of I + H terms (the input and recurrent
# projections) followed by the gate arithmetic (a few libm calls, 8 eps). The weights in these tests
# are scaled by 1/sqrt(H) and the gates squash, so the step-to-step Jacobian is O(1) and rounding
# errors add over the steps rather than grow: the bound of layer_tol with depth k = T (I + G H)
# covers the forward. Backward runs the same chain in reverse and then sums over the T*N rows for
# the weight gradients, so its depth adds T*N. Magnitudes are taken from the reference result. A
# wrong gate order, a missing bias or a dropped step is an O(1) error and fails.
def recurrent_depth(T, N, I, H, G):
    return T * (I + G * H) + T * N


# Embedding forward copies rows (exact); backward sums at most `count` rows into one: the recursive
# sum bound (count + 2) eps times the largest |dy| (see pool_atol).

# torch float64 against the reference: the same float64 formulas in another order (torch fuses the
# gate arithmetic and sums the two biases first): a few ulps per step, over at most 17 steps.
RECURRENT_TORCH_TOL = dict(rtol=1e-10, atol=1e-12)

# ---- end of recurrent section ----
