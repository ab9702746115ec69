"""Fixtures shared by the lamina benchmarks: which library a case runs, how many threads every library
may use, and a `measure` helper that times a call and records what the report needs (case, library,
threads, flops). Also lets `pytest benches/` collect the bench_*.py files, which tests/ never sees."""
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

# Keras 3 needs a backend; TensorFlow is a large install, JAX (pip install keras jax) is enough.
os.environ.setdefault("KERAS_BACKEND", "jax")

THREADS = [1, 2]
SETTLE_SECONDS = 0.3


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "heavy: a case that takes a second or more per round (skip with -m 'not heavy')")


def measured_fma_peak():
    """{isa: GFLOP/s} of one core running float32 FMAs back to back (benches/fma_peak.cpp, compiled
    here with the C++ compiler; best of three runs), or {} without a compiler."""
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")
    if not cxx:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "fma_peak"
        subprocess.run([cxx, "-O3", "-o", str(exe), str(Path(__file__).with_name("fma_peak.cpp"))], check=True)
        peak = {}
        for _ in range(3):
            for line in subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split("\n"):
                if line:
                    isa, value = line.split()
                    peak[isa] = max(peak.get(isa, 0.0), float(value))
    return peak


def peer_kernel_paths():
    """What each peer runs on this machine: NumPy's BLAS and its kernel family, PyTorch's vector
    ISA and BLAS, Keras's backend."""
    from threadpoolctl import threadpool_info

    paths = {}
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if blas:
        paths["numpy"] = ", ".join(f"{i['internal_api']} {i.get('version', '')} ({i.get('architecture', '?')} kernels)"
                                   for i in blas)
    torch = _imported("torch")
    if torch is not None:
        blas_info = "MKL" if torch.backends.mkl.is_available() else "its own BLAS"
        paths["torch"] = (f"{torch.__version__}, {torch.backends.cpu.get_cpu_capability()} kernels, {blas_info}"
                          f"{', oneDNN' if torch.backends.mkldnn.is_available() else ''}")
    keras = _imported("keras")
    if keras is not None:
        paths["keras"] = f"{keras.__version__} on {keras.backend.backend()} (XLA CPU)"
    return paths


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["fma_peak_gflops_per_core"] = measured_fma_peak()
    machine_info["peers"] = peer_kernel_paths()
    lamina = _imported("lamina")
    if lamina is not None:
        info = lamina.build_info()
        machine_info["lamina_isa"] = f"{info['isa']} ({info.get('isa_choice', '')})"
        machine_info["lamina_isa_supported"] = info.get("isa_supported")  # every path lamina could use here
        machine_info["cpu_model"] = {k: info.get(k) for k in ("cpu", "cpu_vendor", "cpu_family", "cpu_model")}


def pytest_collect_file(file_path, parent):
    # bench_*.py does not match pytest's python_files, so a folder run needs this hook; a file named on
    # the command line is collected by pytest itself, and collecting it here too would run it twice.
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_collection_modifyitems(items):
    # Run every library of one case and thread count back to back, so that their ratio is measured
    # under the same machine conditions; pytest's own order would run all of lamina's cases first.
    def case(item):
        spec = getattr(item, "callspec", None)
        params = spec.params if spec else {}
        return (item.path, item.originalname,
                tuple((k, repr(v)) for k, v in sorted(params.items()) if k != "lib"))
    first = {}
    for i, item in enumerate(items):
        first.setdefault(case(item), i)
    items.sort(key=lambda item: first[case(item)])  # stable: libraries keep their order in a case


def _import(name):
    # Frameworks may warn while importing (deprecations); that says nothing about the benchmark, and
    # this project turns warnings into errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip(name)


def _imported(name):
    try:
        return _import(name)
    except pytest.skip.Exception:
        return None


@pytest.fixture(params=["lamina", "numpy", "torch"])
def lib(request):
    """The library under test: .name (as reported) and .mod (the imported module).

    "lamina-python" is lamina driven layer by layer from Python; "keras" is skipped when absent.
    """
    name = request.param
    module = {"lamina": "lamina", "lamina-python": "lamina", "numpy": "numpy",
              "torch": "torch", "keras": "keras"}[name]
    return SimpleNamespace(name=name, mod=_import(module))


@pytest.fixture(params=THREADS, ids=lambda n: f"t{n}")
def threads(request, lib):
    """Limit lamina, NumPy's BLAS and PyTorch to the same number of threads for one case."""
    n = request.param
    lm, torch = _imported("lamina"), _imported("torch")
    old_lm = lm.get_num_threads() if lm else None
    old_torch = torch.get_num_threads() if torch else None
    # user_api="blas" leaves OpenMP alone: lamina and torch set their own OpenMP thread counts below.
    with threadpool_limits(limits=n, user_api="blas"):
        if lm:
            lm.set_num_threads(n)
        if torch:
            torch.set_num_threads(n)
        yield n
    if lm:
        lm.set_num_threads(old_lm)
    if torch:
        torch.set_num_threads(old_torch)


@pytest.fixture
def lm():
    """lamina itself, for cases whose peers start from a lamina model's weights."""
    return _import("lamina")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _cpu_busy():
    """(wall clock, CPU seconds busy on the whole machine, CPU seconds of this process), or None
    where /proc/stat does not exist."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle + iowait, in clock ticks
    ticks = os.sysconf("SC_CLK_TCK")
    own = os.times()
    return time.monotonic(), (sum(fields) - idle) / ticks, own.user + own.system


def _foreign_share(start):
    """Share of the machine's CPU time that other processes used since `start` (0 to 1)."""
    end = _cpu_busy()
    if start is None or end is None or end[0] <= start[0]:
        return None
    other = (end[1] - start[1]) - (end[2] - start[2])
    return max(0.0, other / ((end[0] - start[0]) * os.cpu_count()))


@pytest.fixture
def measure(lib, threads, benchmark):
    """measure(fn, group=..., flops=..., rounds=None, **info) times fn() and returns its result.

    One untimed call first pays for first-use costs (packing buffers, thread pools, lazy builds).
    rounds=None lets pytest-benchmark calibrate; heavy cases pass a fixed, small number of rounds.
    Records, beside the case, how much CPU other processes took meanwhile: on a small machine any
    other busy process makes the numbers (the 2-thread ones above all) meaningless.
    """
    # benchmark is requested last: a skip while importing a library must come before the benchmark
    # fixture exists, or pytest-benchmark warns that it went unused (an error under strict settings).
    def run(fn, *, group, flops=None, rounds=None, **info):
        benchmark.group = group
        benchmark.extra_info.update(case=group, library=lib.name, threads=threads, flops=flops, **info)
        # The previous case's thread pools spin for a while after their last call (OpenBLAS for about
        # 0.1 s) and would take a core from this one; let them go to sleep first.
        time.sleep(SETTLE_SECONDS)
        fn()
        start = _cpu_busy()
        if rounds is not None:
            result = benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)
        else:
            result = benchmark(fn)
        benchmark.extra_info["foreign_cpu"] = _foreign_share(start)
        return result
    return run
