"""Threads and memory over time: many Python threads calling the kernels and training separate
models at once give bitwise the serial results (the kernels release the GIL and share no state);
set_num_threads from another thread never breaks a running call; threadpoolctl sees and limits
lamina's OpenMP; and a long loop of small calls does not grow the resident memory.
"""
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import lamina as lm
from lamina import ops

WORKERS = 8


@pytest.fixture(autouse=True)
def restore_threads():
    before = lm.get_num_threads()
    yield
    lm.set_num_threads(before)


def job_inputs(seed, dtype):
    rng = np.random.default_rng(seed)
    # 160 x 300 x 200: large enough that the GEMMs split across OpenMP threads as well.
    return {"x": rng.standard_normal((160, 200)).astype(dtype), "W": rng.standard_normal((300, 200)).astype(dtype),
            "b": rng.standard_normal(300).astype(dtype), "labels": rng.integers(0, 300, 160),
            "p": rng.standard_normal(5000).astype(dtype), "g": rng.standard_normal(5000).astype(dtype)}


def kernel_job(inputs):
    """A chain of every kind of kernel on one job's own arrays; returns everything it produced."""
    x, W, b = inputs["x"], inputs["W"], inputs["b"]
    y = ops.linear(x, W, b, activation="relu")
    z = ops.gemm(y, W, alpha=0.5)
    s = ops.softmax(y)
    loss, dy = ops.cross_entropy(y, inputs["labels"])
    dx, dW, db = ops.linear_backward(ops.relu_backward(dy, y), x, W)
    p = inputs["p"].copy()
    m, v = np.zeros_like(p), np.zeros_like(p)
    for step in (1, 2, 3):
        ops.adam_step(p, inputs["g"], m, v, step=step, lr=0.01)
    return [y, z, s, np.array(loss), dy, dx, dW, db, p, m, v]


def assert_bitwise(got, want, what):
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == w.dtype and g.shape == w.shape, f"{what}, output {i}: {g.dtype}{g.shape} vs {w.dtype}{w.shape}"
        if not np.array_equal(g, w, equal_nan=True):
            k = np.unravel_index(np.argmax(g != w), g.shape) if g.ndim else ()
            raise AssertionError(f"{what}, output {i} of shape {g.shape}: first difference at {k}: {g[k]!r} vs {w[k]!r}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("omp_threads", [1, 2])
def test_kernels_called_from_many_threads_equal_serial_calls(dtype, omp_threads):
    lm.set_num_threads(omp_threads)
    jobs = [job_inputs(seed, dtype) for seed in range(2 * WORKERS)]
    serial = [kernel_job(j) for j in jobs]
    with ThreadPoolExecutor(WORKERS) as pool:
        for attempt in range(3):
            concurrent = list(pool.map(kernel_job, jobs))
            for i, (got, want) in enumerate(zip(concurrent, serial)):
                assert_bitwise(got, want, f"job {i}, attempt {attempt}, {WORKERS} Python threads")


def make_model(seed, style):
    lm.manual_seed(seed)
    if style == "layers":
        model = lm.Sequential(lm.Linear(20, 64), lm.ReLU(), lm.Linear(64, 64), lm.Tanh(), lm.Linear(64, 5))
        opt = lm.SGD(model.parameters(), lr=0.05, momentum=0.9)
    else:
        model = lm.Sequential([lm.Dense(64, input_shape=(20,), activation="relu"), lm.Dense(5)])
        opt = lm.Adam(model.parameters(), lr=1e-2)
    return model, opt


def train(model, opt, seed, style, steps=30):
    """Train one model on its own data; returns its final weights and its losses."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps, 32, 20)).astype(np.float32)
    y = rng.integers(0, 5, (steps, 32))
    losses = []
    if style == "layers":
        loss_fn = lm.CrossEntropyLoss()
        for xb, yb in zip(x, y):
            model.zero_grad()
            losses.append(loss_fn(model(xb), yb))
            model.backward(loss_fn.backward())
            opt.step()
    else:
        model.compile(optimizer=opt, loss=lm.CrossEntropyLoss())
        losses = [model.train_step(xb, yb) for xb, yb in zip(x, y)]
    return [p.copy() for p in model.state_dict().values()] + [np.array(losses)]


@pytest.mark.parametrize("style", ["layers", "compiled train_step"])
def test_separate_models_trained_in_many_threads_equal_serial_training(style):
    seeds = list(range(2 * WORKERS))
    # Models are built here, in one thread: initialisation draws from lamina's global generator,
    # which (like torch.manual_seed's) is one stream for the whole process.
    serial = [train(*make_model(s, style), s, style) for s in seeds]
    models = [make_model(s, style) for s in seeds]
    with ThreadPoolExecutor(WORKERS) as pool:
        concurrent = list(pool.map(lambda s: train(*models[s], s, style), seeds))
    for s, got, want in zip(seeds, concurrent, serial):
        assert_bitwise(got, want, f"model {s} ({style}) trained in a thread")


def test_the_gil_is_released_during_a_kernel():
    # While one thread runs a long GEMM on one OpenMP thread, the main thread keeps running Python:
    # with the GIL held it could not take a single step until the call returned.
    lm.set_num_threads(1)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((700, 700)), rng.standard_normal((700, 700))
    window = {}

    def worker():
        window["start"] = time.perf_counter()
        for _ in range(3):
            ops.gemm(a, b)
        window["end"] = time.perf_counter()

    t = threading.Thread(target=worker)
    ticks = []
    t.start()
    while t.is_alive():
        ticks.append(time.perf_counter())
    t.join()
    inside = sum(window["start"] < tick < window["end"] for tick in ticks)
    duration = window["end"] - window["start"]
    assert inside > 100, f"the main thread ran {inside} loop steps during {duration:.3f} s of GEMM"


def test_set_num_threads_from_another_thread_never_breaks_a_running_call():
    # Results are bitwise identical for any thread count, so every call must equal the serial one
    # however often the count changes under it.
    rng = np.random.default_rng(1)
    x, W = rng.standard_normal((300, 400)).astype(np.float32), rng.standard_normal((256, 400)).astype(np.float32)
    lm.set_num_threads(1)
    want = ops.linear(x, W, activation="tanh")
    want_dx, want_dW, _ = ops.linear_backward(want, x, W)
    stop = threading.Event()
    switches = 0

    def switcher():
        nonlocal switches
        while not stop.is_set():
            lm.set_num_threads(1 + switches % 2)
            switches += 1

    def caller(_):
        for _ in range(40):
            y = ops.linear(x, W, activation="tanh")
            dx, dW, _ = ops.linear_backward(y, x, W)
            assert_bitwise([y, dx, dW], [want, want_dx, want_dW], "linear while set_num_threads changes")

    t = threading.Thread(target=switcher)
    t.start()
    try:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(caller, range(3)))
    finally:
        stop.set()
        t.join()
    assert switches > 10, f"only {switches} switches happened: the test did not exercise anything"


def test_set_num_threads_is_capped_and_reported():
    lm.set_num_threads(1)
    assert lm.get_num_threads() == 1
    lm.set_num_threads(10**6)
    assert 1 <= lm.get_num_threads() <= os.cpu_count() * 4, lm.get_num_threads()
    assert lm.build_info()["num_threads"] == lm.get_num_threads()


# ---------------------------------------------------------------------------------------------
# threadpoolctl


def test_threadpoolctl_sees_the_openmp_runtime_lamina_loads():
    pytest.importorskip("threadpoolctl")
    if not lm.build_info()["openmp"]:
        pytest.skip("lamina was built without OpenMP")
    # A fresh interpreter: which OpenMP runtimes are there before and after importing lamina.
    code = (
        "import json, numpy, threadpoolctl\n"
        "before = {i['filepath'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'openmp'}\n"
        "import lamina\n"
        "after = [i for i in threadpoolctl.threadpool_info() if i['user_api'] == 'openmp']\n"
        "print(json.dumps({'before': sorted(before), 'after': after}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    import json

    seen = json.loads(out.stdout)
    assert seen["after"], f"threadpoolctl lists no OpenMP runtime after importing lamina: {out.stdout}"
    new = [i for i in seen["after"] if i["filepath"] not in seen["before"]]
    if not new:
        pytest.skip(f"an OpenMP runtime was already loaded before lamina: {seen['before']}")
    assert new[0]["num_threads"] >= 1, new


def test_threadpool_limits_caps_lamina_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not lm.build_info()["openmp"]:
        pytest.skip("lamina was built without OpenMP")
    lm.set_num_threads(2)
    before = lm.get_num_threads()
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((400, 300)), rng.standard_normal((300, 500))
    want = ops.gemm(a, b)
    for kwargs in ({"limits": 1}, {"limits": 1, "user_api": "openmp"}):
        with threadpoolctl.threadpool_limits(**kwargs):
            assert lm.get_num_threads() == 1, f"threadpool_limits({kwargs}): lamina uses {lm.get_num_threads()}"
            np.testing.assert_array_equal(ops.gemm(a, b), want)
        assert lm.get_num_threads() == before, "the limit was not lifted on exit"


# ---------------------------------------------------------------------------------------------
# Memory over time


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_100000_small_calls_do_not_grow_resident_memory():
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("needs /proc/self/statm (Linux)")
    with open("/proc/self/maps") as f:
        if "libasan" in f.read():
            pytest.skip("AddressSanitizer quarantines freed memory, so resident memory grows by design")
    rng = np.random.default_rng(3)
    x, W, b = (rng.standard_normal(s).astype(np.float32) for s in ((4, 8), (6, 8), (6,)))
    labels = np.array([0, 1, 2, 5])
    p, g = rng.standard_normal(48).astype(np.float32), rng.standard_normal(48).astype(np.float32)
    m, v = np.zeros_like(p), np.zeros_like(p)
    model = lm.Sequential(lm.Linear(8, 6), lm.ReLU(), lm.Linear(6, 6))
    opt = lm.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = lm.CrossEntropyLoss()

    def calls(n):
        for i in range(n):
            kind = i % 4
            if kind == 0:
                y = ops.linear(x, W, b, activation="relu")
                ops.linear_backward(y, x, W)
            elif kind == 1:
                ops.cross_entropy(ops.softmax(y), labels)
            elif kind == 2:
                ops.adam_step(p, g, m, v, step=1 + i, lr=1e-6)
            else:
                model.zero_grad()
                loss_fn(model(x), labels)
                model.backward(loss_fn.backward())
                opt.step()

    calls(5000)  # warm-up: caches, allocator pools, per-thread packing buffers
    start = resident_bytes()
    calls(100_000)
    growth = resident_bytes() - start
    # A leak of one small array (~100 bytes) per call would add ~10 MB; 2 MB leaves room for the
    # allocators' own bookkeeping.
    assert growth < 2 * 2**20, f"resident memory grew by {growth / 2**20:.2f} MiB over 100,000 calls"
