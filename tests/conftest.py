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
