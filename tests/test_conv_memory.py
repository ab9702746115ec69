"""Peak memory of a convolution's forward and backward: the implicit GEMM gathers patches into the
engine's packed panels, so a call needs its input, output, weights and gradients plus per-thread
panels, never an im2col matrix (here 9x the input: it would show as tens of MB)."""
import subprocess
import sys

import pytest

SCRIPT = r"""
import resource, sys
import numpy as np
import lamina as lm
from lamina import ops

layout = sys.argv[1]
n, c, s = 8, 64, 56
rng = np.random.default_rng(0)
shape = (n, c, s, s) if layout == "channels_first" else (n, s, s, c)
x = rng.standard_normal(shape, dtype=np.float32)
dy = rng.standard_normal(shape, dtype=np.float32)
w = rng.standard_normal((c, c, 3, 3) if layout == "channels_first" else (3, 3, c, c), dtype=np.float32)
b = np.zeros(c, np.float32)
attrs = dict(stride=(1, 1), padding=(1, 1, 1, 1), dilation=(1, 1), groups=1, layout=layout)
small = ops.conv2d(x[:1], w, b, **attrs)  # first-use costs (thread pools, small panels) before the baseline
ops.conv2d_backward(dy[:1], x[:1], w, **attrs)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
y = ops.conv2d(x, w, b, activation="relu", **attrs)
dx, dW, db = ops.conv2d_backward(dy, x, w, **attrs)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024, y.nbytes + dx.nbytes + dW.nbytes + db.nbytes, x.nbytes)
"""


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_conv_forward_backward_allocates_no_patch_matrix(layout):
    out = subprocess.run([sys.executable, "-c", SCRIPT, layout], capture_output=True, text=True, check=True)
    grown, results, input_bytes = (int(v) for v in out.stdout.split())
    # The results themselves, plus per-thread packing panels and allocator slack: a few MB. An im2col
    # of the batch would add 9 x input_bytes (58 MB here).
    allowance = results + 8 * 2**20
    assert grown <= allowance, (f"{layout}: peak memory grew by {grown / 2**20:.1f} MB for "
                                f"{results / 2**20:.1f} MB of results (input {input_bytes / 2**20:.1f} MB)")
