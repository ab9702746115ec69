"""Short fuzzing runs inside the test suite (hypothesis feeds bytes to the fuzz targets), the inputs
the fuzzers found, and a check that the bindings target covers every native function. The long,
coverage-guided runs are tools/fuzz.py's; every crash they find is added here as a regular test.
"""
import os

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from lamina import _native  # noqa: E402
from fuzz_targets import NATIVE_SIGNATURES, bindings_target, load_target, seed_archives  # noqa: E402

REGRESSIONS = os.path.join(os.path.dirname(__file__), "regressions")


def test_the_bindings_target_covers_every_native_function():
    public = {name for name in dir(_native) if not name.startswith("_")}
    assert public == set(NATIVE_SIGNATURES), f"not fuzzed: {sorted(public - set(NATIVE_SIGNATURES))}; " \
                                             f"gone: {sorted(set(NATIVE_SIGNATURES) - public)}"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_load_of_fuzzed_bytes_raises_only_value_error(data):
    load_target(data)


@settings(max_examples=300)
@given(st.binary(min_size=1, max_size=2048).map(lambda b: bytes([b[0] | 1]) + b[1:]))
def test_load_of_damaged_archives_raises_only_value_error(data):
    load_target(data)


def test_every_seed_archive_loads_and_runs():
    # First byte 0: raw mode, the rest is the file; 2: the same, loaded with its optimizer.
    seeds = seed_archives()
    assert all(load_target(b"\x00" + seed) for seed in seeds)
    assert [load_target(b"\x02" + seed) for seed in seeds] == [True, True, False, False]


def test_a_npy_header_numpy_cannot_tokenize_is_a_value_error(tmp_path):
    # Found by fuzzing lm.load: NumPy parses a damaged header with `tokenize`, whose TokenError
    # escaped load as neither ValueError nor any documented exception.
    import io
    import zipfile

    import lamina as lm

    good = tmp_path / "good.npz"
    lm.save(lm.Linear(3, 2), good)
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }  }"
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    bad_npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(24)
    out = io.BytesIO()
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, bad_npy if info.filename == "model/weight.npy" else src.read(info))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(out.getvalue())
    with pytest.raises(ValueError, match="bad.npz"):
        lm.load(bad)


@settings(max_examples=600)
@given(st.binary(max_size=512))
def test_native_functions_raise_only_type_value_or_memory_errors(data):
    bindings_target(data)


def _regression_inputs():
    if not os.path.isdir(REGRESSIONS):
        return []
    return sorted(f for f in os.listdir(REGRESSIONS) if f.startswith(("load-", "bindings-")))


@pytest.mark.parametrize("name", _regression_inputs())
def test_inputs_the_fuzzers_found(name):
    with open(os.path.join(REGRESSIONS, name), "rb") as f:
        data = f.read()
    (load_target if name.startswith("load-") else bindings_target)(data)
