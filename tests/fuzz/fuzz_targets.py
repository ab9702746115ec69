"""Fuzz targets: functions of one `bytes` argument, shared by the coverage-guided fuzzer
(tools/fuzz.py, atheris) and the hypothesis runs in test_fuzz.py. A target returns normally when
lamina handled the input as documented; any other exception (or a crash) is a bug.

- `load_target`: `lamina.load` on raw bytes or on a valid archive with structured damage (JSON
  edits, .npy header and data edits, members removed, added or renamed, truncation). Only ValueError
  may escape, and a model that loads must run.
- `bindings_target`: every function of `lamina._native` (and the native Plan, built from random
  step descriptors) called with arrays of random dtypes, shapes, strides and flags, and random
  scalars. Only TypeError, ValueError and
  MemoryError may escape.
"""
import io
import json
import os
import tempfile
import warnings
import zipfile

import numpy as np

import lamina as lm
from lamina import _native


class Choices:
    """Decisions read from the fuzzer's bytes; once they run out, every decision is the first option,
    so short inputs mean simple cases and the fuzzer's mutations map to nearby decisions."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def byte(self):
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def below(self, n):
        """An integer in [0, n)."""
        if n <= 1:
            return 0
        value = self.byte() if n <= 256 else (self.byte() << 8) | self.byte()
        return value % n

    def pick(self, options):
        return options[self.below(len(options))]

    def chance(self, in_256):
        """True with probability in_256 / 256 (for uniformly random bytes); True once the bytes
        run out, so use it for the ordinary branch."""
        return self.byte() < in_256

    def rarely(self, in_256):
        """True with probability in_256 / 256; False once the bytes run out (for damage)."""
        return self.byte() >= 256 - in_256

    def rest(self):
        out = self.data[self.pos:]
        self.pos = len(self.data)
        return out


# ---------------------------------------------------------------------------------------------
# lamina.load


def _saved_bytes(model, optimizer=None):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "seed.npz")
        lm.save(model, path, optimizer=optimizer)
        with open(path, "rb") as f:
            return f.read()


_SEEDS = []


def seed_archives():
    """Valid files written by lm.save: the shapes of archive the structured mutations start from."""
    if not _SEEDS:
        lm.manual_seed(0)
        torch_style = lm.Sequential(lm.Linear(3, 4), lm.ReLU(), lm.Linear(4, 2))
        keras = lm.Sequential([lm.Dense(4, input_shape=(3,), activation="relu"), lm.Dense(2, activation="softmax")])
        keras.compile(optimizer=lm.Adam(keras.parameters()), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        double = lm.Sequential(lm.Linear(2, 3, dtype=np.float64, bias=False), lm.Tanh())
        _SEEDS.extend([
            _saved_bytes(torch_style, lm.SGD(torch_style.parameters(), lr=0.1, momentum=0.9)),
            _saved_bytes(keras, keras.optimizer),
            _saved_bytes(double),
            _saved_bytes(lm.Linear(2, 1)),
        ])
    return _SEEDS


_SPECIAL_JSON = [-1, 0, 1, 2, 3, 2**31, 2**63, 10**6, 1e308, -0.5, 0.5, True, None, "", "Linear", "Sequential",
                 "Dense", "relu", "float16", "object", [], {}, [3], [[3]], {"class": "Linear"}]


def _mutate_json(c, node, depth=0):
    """A copy of a JSON value with one random change somewhere inside it."""
    if isinstance(node, dict) and node and depth < 8 and c.chance(200):
        key = c.pick(sorted(node, key=str))
        node = dict(node)
        action = c.below(4)
        if action == 0:
            del node[key]
        elif action == 1:
            node[key + "_extra"] = c.pick(_SPECIAL_JSON)
        else:
            node[key] = _mutate_json(c, node[key], depth + 1)
        return node
    if isinstance(node, list) and node and depth < 8 and c.chance(200):
        node = list(node)
        i = c.below(len(node))
        action = c.below(4)
        if action == 0:
            del node[i]
        elif action == 1:
            node.insert(i, node[i])
        else:
            node[i] = _mutate_json(c, node[i], depth + 1)
        return node
    return c.pick(_SPECIAL_JSON)


def _npy(arr):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=False)
    return buf.getvalue()


def _raw_npy(descr, shape, fortran, data):
    """A .npy file with a header written by hand, so it can claim anything."""
    header = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode("latin1")
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + data


def _mutate_member(c, name, blob):
    try:
        return _mutate_member_unguarded(c, name, blob)
    except Exception:  # a member damaged by an earlier mutation may not parse: keep it as it is
        return blob


def _mutate_member_unguarded(c, name, blob):
    if name == "lamina_config.npy" and c.chance(192):
        text = str(np.load(io.BytesIO(blob), allow_pickle=False)[()])
        try:
            header = json.loads(text)
        except ValueError:
            return blob
        return _npy(np.array(json.dumps(_mutate_json(c, header))))
    action = c.below(6)
    if action == 0:  # another shape or dtype, valid .npy
        arr = np.load(io.BytesIO(blob), allow_pickle=False)
        options = [arr.T, arr.reshape(-1), arr[:0], arr.astype(np.float16), arr.astype(np.int64),
                   arr.astype(">f8"), np.asfortranarray(np.atleast_2d(arr)), np.array(1.5), np.zeros((2**20, 0))]
        return _npy(c.pick(options))
    if action == 1:  # a header that claims something else than the data holds
        descr = c.pick(["<f4", "<f8", ">f4", "|O", "<U3", "|V0", "<c16", "|b1", "<f2", "[('a', '<f4')]"])
        shape = c.pick([(), (0,), (3,), (4, 3), (3, 4), (2**31, 2**31), (2**62,), (-1,), (10**6, 10**6)])
        return _raw_npy(descr, shape, c.chance(64), blob[-c.below(64):] if blob else b"")
    if action == 2 and blob:  # damaged bytes
        data = bytearray(blob)
        for _ in range(1 + c.below(8)):
            data[c.below(len(data))] = c.byte()
        return bytes(data)
    if action == 3:  # truncated
        return blob[:c.below(len(blob) + 1)]
    if action == 4:  # extra bytes
        return blob + c.rest()[:64]
    return blob


def mutate_archive(c, archive):
    """A valid archive with structured damage, rebuilt with correct CRCs so the damage reaches the
    reader's own checks rather than stopping at the zip layer."""
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        members = [(i.filename, z.read(i)) for i in z.infolist()]
    for _ in range(1 + c.below(3)):
        action = c.below(8)
        i = c.below(len(members)) if members else 0
        if action <= 3 and members:
            members[i] = (members[i][0], _mutate_member(c, *members[i]))
        elif action == 4 and members:
            del members[i]
        elif action == 5 and members:
            members.append(members[i])  # the same name twice
        elif action == 6 and members:
            members[i] = (c.pick(["model/9.weight.npy", "evil.pkl", "../x.npy", "optimizer/m.0.npy", "lamina_config"]),
                          members[i][1])
        else:
            members.append((c.pick(["model/extra.npy", "optimizer/velocity.7.npy"]), _npy(np.zeros(3))))
    out = io.BytesIO()
    compression = c.pick([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names, which are the point
        with zipfile.ZipFile(out, "w", compression) as z:
            for name, blob in members:
                z.writestr(name, blob)
    data = out.getvalue()
    if c.rarely(32):
        data = data[:c.below(len(data) + 1)]
    return data


def _exercise(model):
    """A model that loaded must run forward and backward on a small batch."""
    first = next((layer for layer in getattr(model, "_layers", [model]) if getattr(layer, "in_features", None)), None)
    n_in = first.in_features if first is not None else 3
    params = model.parameters()
    dtype = params[0].dtype if params else np.float32
    y = model(np.ones((2, n_in), dtype))
    model.backward(np.ones_like(y))


def load_target(data, directory=None):
    """lm.load on fuzzed bytes: raw (first byte even) or a seed archive with structured damage."""
    c = Choices(data)
    mode = c.byte()
    if mode % 2 == 0:
        blob = c.rest()
    else:
        blob = mutate_archive(c, c.pick(seed_archives()))
    with_optimizer = mode % 4 >= 2
    with tempfile.TemporaryDirectory(dir=directory) as d:
        path = os.path.join(d, "fuzzed.npz")
        with open(path, "wb") as f:
            f.write(blob)
        try:
            loaded = lm.load(path, with_optimizer=with_optimizer)
        except ValueError:
            return False
    model = loaded[0] if with_optimizer else loaded
    _exercise(model)
    if with_optimizer:
        loaded[1].step()
    return True


# ---------------------------------------------------------------------------------------------
# lamina._native


_DTYPES = ["<f4", "<f8", "<f4", "<f8", "<f8", "<i8", "<i4", "|b1", "<c16", "|O", "<U3", "|V0", ">f8", "<f2", "<u8",
           ">i8"]
_DIMS = [0, 1, 2, 3, 5]
_FLOATS = [0.0, 1.0, -1.0, 0.5, 0.9, 0.999, 1e-8, float("nan"), float("inf"), -float("inf"), 1e300, 5e-324, -2.0]
_INTS = [0, 1, 2, 3, -1, 1000, 2**31, 2**63 - 1, 2**63, -(2**63), 10**30]
_STRINGS = ["relu", "sigmoid", "tanh", "softmax", "none", "linear", "gelu", "", "\x00", "avx2", "generic",
            "avx512", "cross_entropy", "binary_cross_entropy", "mse", "probability_cross_entropy",
            "probability_binary_cross_entropy", "sgd", "adam", "leaky_relu", "gelu_tanh", "log_softmax", "nll",
            "swish"]
_LOSSES = ["cross_entropy", "binary_cross_entropy", "mse", "probability_cross_entropy",
           "probability_binary_cross_entropy", "nll"]
_OTHERS = [None, 0, 1.5, "x", [], [1.0, 2.0], (), {}, b"\x00", object(), np.float64(1.0), np.int64(2)]


def random_array(c, shape=None, dtype=None):
    """An array of a random (or the given) dtype and shape, in a random layout."""
    dtype = np.dtype(dtype or c.pick(_DTYPES))
    if shape is None:
        shape = tuple(c.pick(_DIMS) for _ in range(c.below(4)))
    fill = c.pick(["normal", "zeros", "labels", "nan", "inf", "huge"])
    base = {"normal": lambda: np.random.default_rng(c.byte()).standard_normal(shape),
            "zeros": lambda: np.zeros(shape),
            "labels": lambda: np.arange(int(np.prod(shape))).reshape(shape) % 3,
            "nan": lambda: np.full(shape, np.nan),
            "inf": lambda: np.full(shape, np.inf),
            "huge": lambda: np.full(shape, 1e300)}[fill]()
    base = np.asarray(base)  # 0-d operations above may have given a NumPy scalar
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            arr = base.astype(dtype)
        except (TypeError, ValueError):
            arr = np.zeros(shape, dtype)
    return relayout(c, arr) if c.rarely(96) else arr


def relayout(c, arr):
    """The same values in another layout or with other flags: Fortran order, strided, negative
    strides, broadcast (stride 0, read-only), misaligned, read-only or transposed."""
    layout = c.below(7)
    if layout == 0 and arr.ndim >= 2:
        return np.asfortranarray(arr)
    if layout == 1 and arr.ndim >= 1:
        return np.repeat(arr, 2, axis=-1)[..., ::2]
    if layout == 2 and arr.ndim >= 1:
        return arr[::-1].copy()[::-1]
    if layout == 3 and arr.ndim >= 1 and arr.size:
        return np.broadcast_to(arr[..., :1], arr.shape)
    if layout == 4 and arr.itemsize:
        buf = np.zeros(arr.nbytes + arr.itemsize, np.uint8)
        view = buf[1:1 + arr.nbytes].view(arr.dtype).reshape(arr.shape)
        view[...] = arr
        return view
    if layout == 5:
        arr = arr.copy()
        arr.flags.writeable = False
        return arr
    if layout == 6 and arr.ndim == 2:
        return np.ascontiguousarray(arr.T).T
    return arr


def random_value(c, kind):
    """A value for a parameter of the given kind; now and then one of the wrong kind."""
    if c.rarely(24):
        return c.pick(_OTHERS + [random_array(c)])
    if kind == "array":
        return random_array(c)
    if kind == "float":
        return c.pick(_FLOATS)
    if kind == "int":
        return c.pick(_INTS)
    if kind == "uint64":
        return c.pick([0, 1, 2**64 - 1, 2**63, 12345] if c.chance(224) else _INTS)
    if kind == "bool":
        return c.chance(128)
    if kind == "str":
        return c.pick(_STRINGS)
    if kind == "activation":
        return c.pick([None] + _STRINGS)
    if kind in ("ints2", "ints4"):
        return tuple(c.pick([0, 1, 2, 3, -1, 2**31, 2**63] if c.chance(192) else _INTS) for _ in range(int(kind[-1])))
    if kind == "layout":
        return c.pick(["channels_first", "channels_last"] + _STRINGS)
    return c.pick(_OTHERS)


# Every function of lamina._native and the kind of each positional parameter.
NATIVE_SIGNATURES = {
    "gemm": ["array", "array", "array", "array", "float", "float", "activation", "float"],
    "linear": ["array", "array", "array", "activation", "float", "array", "array"],
    "linear_backward": ["array", "array", "array", "array", "array", "bool"],
    "conv2d": ["array", "array", "array"] + ["int"] * 9 + ["str", "activation", "float", "array", "array"],
    "conv2d_backward": ["array", "array", "array", "array", "array", "bool"] + ["int"] * 9 + ["str"],
    "activation": ["array", "str", "float"],
    "activation_backward": ["array", "array", "str", "float"],
    "cross_entropy": ["array", "array"],
    "nll": ["array", "array"],
    "binary_cross_entropy": ["array", "array"],
    "mse": ["array", "array"],
    "probability_cross_entropy": ["array", "array"],
    "probability_binary_cross_entropy": ["array", "array"],
    "dropout": ["array", "float", "uint64", "uint64"],
    "dropout_backward": ["array", "float", "uint64", "uint64"],
    "dropout_mask": ["int", "float", "uint64", "uint64"],
    "sgd_step": ["array", "array", "array", "float", "float", "float", "bool"],
    "adam_step": ["array", "array", "array", "array", "int", "float", "float", "float", "float", "float"],
    "set_num_threads": ["int"],
    "get_num_threads": [],
    "build_info": [],
    "isa": [],
    "blocking": ["any"],
    "set_isa": ["str"],
    "packing": [],
    "set_packing": ["str"],
    "max_pool2d": ["array", "ints2", "ints2", "ints4", "ints2", "bool", "layout"],
    "max_pool2d_backward": ["array", "array", "ints4", "layout"],
    "avg_pool2d": ["array", "ints2", "ints2", "ints4", "bool", "bool", "any", "layout"],
    "avg_pool2d_backward": ["array", "ints4", "ints2", "ints2", "ints4", "bool", "bool", "any", "layout"],
    "adaptive_avg_pool2d": ["array", "ints2", "layout"],
    "adaptive_avg_pool2d_backward": ["array", "ints4", "layout"],
    "batch_norm": ["array", "array", "array", "array", "array", "bool", "float", "float", "int", "bool", "activation"],
    "batch_norm_backward": ["array", "array", "array", "array", "array", "bool", "int", "array"],
    "layer_norm": ["array", "int", "array", "array", "float"],
    "layer_norm_backward": ["array", "array", "array", "array", "int", "array"],
    "rnn": ["array", "array", "array", "array", "array", "array", "str"],
    "rnn_backward": ["array"] * 11 + ["bool", "str"],
    "lstm": ["array"] * 7,
    "lstm_backward": ["array"] * 14 + ["bool"],
    "gru": ["array"] * 6 + ["bool"],
    "gru_backward": ["array"] * 12 + ["bool", "bool"],
    "embedding": ["array", "array"],
    "embedding_backward": ["array", "array", "array", "int"],
    "Plan": None,  # see _fuzz_plan
}

ALLOWED = (TypeError, ValueError, MemoryError)


def _valid_arguments(c, name):
    """Arguments that pass every check of `name` (random sizes, dtype, values and allowed layouts),
    so that the calls reach the kernels; `bindings_target` then damages some of them."""
    m, n, k = c.pick(_DIMS), c.pick(_DIMS), c.pick(_DIMS)
    dtype = c.pick(["<f4", "<f8"])

    def arr(*shape):
        return random_array(c, shape, dtype)

    def out(*shape):  # written in place: C-contiguous and writable
        return np.ascontiguousarray(random_array(c, shape, dtype))

    def inp(*shape):  # read only: any layout the bindings accept
        a = arr(*shape)
        return a if a.flags.c_contiguous and a.flags.aligned else np.ascontiguousarray(a)

    act = c.pick([None, "relu", "sigmoid", "tanh", "leaky_relu", "gelu", "gelu_tanh"])
    slope = c.pick([0.01, 0.2, -0.5, 0.0] if c.chance(224) else _FLOATS)
    shape = tuple(c.pick(_DIMS) for _ in range(c.below(4)))

    def hyper():  # mostly an ordinary hyperparameter, sometimes a hostile one
        return c.pick([0.0, 0.1, 0.5, 0.9, 0.999, 1e-8] if c.chance(192) else _FLOATS)

    if name == "gemm":
        a = arr(m, k) if c.chance(128) else np.ascontiguousarray(arr(k, m)).T
        b = arr(k, n) if c.chance(128) else np.ascontiguousarray(arr(n, k)).T
        return [out(m, n), np.ascontiguousarray(a) if not a.flags.aligned else a,
                np.ascontiguousarray(b) if not b.flags.aligned else b,
                None if c.chance(64) else inp(n), c.pick(_FLOATS), c.pick(_FLOATS), act, slope]
    def affine(channels):  # a folded batch norm's scale and shift, mostly absent
        return [None, None] if c.chance(160) else [inp(channels), inp(channels)]

    if name == "linear":
        return [inp(m, k), inp(n, k), None if c.chance(64) else inp(n), act, slope] + affine(n)
    if name == "linear_backward":
        return [inp(m, n), inp(m, k), inp(n, k), out(n, k), None if c.chance(64) else out(n), c.chance(128)]
    if name in ("conv2d", "conv2d_backward"):
        # A small convolution that fits (the geometry sometimes hostile: zero-size, huge values).
        batch, groups = c.pick([0, 1, 2, 3]), c.pick([1, 1, 2])
        cin, cout = groups * c.pick([0, 1, 2, 3]), groups * c.pick([0, 1, 2, 5])
        kh, kw = c.pick([1, 2, 3]), c.pick([1, 2, 3])
        sh, sw, dh, dw = (c.pick([1, 2, 3]) for _ in range(4))
        pads = [c.pick([0, 0, 1, 2]) for _ in range(4)]
        h, w = (c.pick([1, 3, 5, 8]) for _ in range(2))
        geometry = [sh, sw, *pads, dh, dw, groups]
        if c.rarely(32):  # a hostile value (not a huge valid padding: that is a huge, valid output)
            geometry[c.below(9)] = c.pick([0, -1, 1000, 2**63 - 1, -(2**63), 2**63, 10**30])
        last = c.chance(128)
        layout = "channels_last" if last else "channels_first"
        x = inp(batch, h, w, cin) if last else inp(batch, cin, h, w)
        wt = inp(kh, kw, cin // groups, cout) if last else inp(cout, cin // groups, kh, kw)
        if name == "conv2d":
            return [x, wt, None if c.chance(64) else inp(cout)] + geometry + [layout, act, slope] + affine(cout)
        ho = max((h + pads[0] + pads[1] - dh * (kh - 1) - 1) // sh + 1, 0)
        wo = max((w + pads[2] + pads[3] - dw * (kw - 1) - 1) // sw + 1, 0)
        dy = inp(batch, ho, wo, cout) if last else inp(batch, cout, ho, wo)
        return [dy, x, wt, out(*wt.shape), None if c.chance(64) else out(cout), c.chance(128)] + geometry + [layout]
    kinds = ["relu", "sigmoid", "tanh", "softmax", "leaky_relu", "gelu", "gelu_tanh", "log_softmax"]
    if name == "activation":
        kind = c.pick(kinds)
        return [inp(m, n) if "softmax" in kind else inp(*shape), kind, slope]
    if name == "activation_backward":
        kind = c.pick(kinds)
        shape = (m, n) if "softmax" in kind else shape
        return [inp(*shape), inp(*shape), kind, slope]
    if name == "nll":
        labels = np.random.default_rng(c.byte()).integers(0, max(n, 1), m)
        return [inp(m, n), labels if c.chance(224) else labels.astype(c.pick(["<i4", "<f8", ">i8"]))]
    if name == "cross_entropy":
        if c.chance(128) and n:
            return [inp(m, n), np.random.default_rng(c.byte()).integers(0, n, m)]
        return [inp(m, n), np.ascontiguousarray(np.abs(arr(m, n)) % 1)]
    if name in ("binary_cross_entropy", "mse", "probability_cross_entropy", "probability_binary_cross_entropy"):
        shape = (m, n) if name == "probability_cross_entropy" else shape
        return [inp(*shape), np.ascontiguousarray(np.abs(arr(*shape)) % 1)]
    if name in ("dropout", "dropout_backward", "dropout_mask"):
        p = c.pick([0.0, 0.1, 0.5, 0.9] if c.chance(224) else _FLOATS)
        first = c.pick([0, 1, 7, 33, 1000]) if name == "dropout_mask" else inp(*shape)
        return [first, p, random_value(c, "uint64"), random_value(c, "uint64")]
    if name == "sgd_step":
        return [out(*shape), inp(*shape), None if c.chance(64) else out(*shape), hyper(), hyper(), hyper(),
                c.chance(128)]
    if name == "adam_step":
        step = c.pick([1, 2, 1000] if c.chance(192) else _INTS)
        return [out(*shape), inp(*shape), out(*shape), out(*shape), step] + [hyper() for _ in range(5)]
    if "pool2d" in name:
        return _pool_arguments(c, name, inp)
    if name.startswith(("batch_norm", "layer_norm")):
        return _norm_arguments(c, name, inp, out)
    if name in ("rnn", "rnn_backward", "lstm", "lstm_backward", "gru", "gru_backward"):
        return _recurrent_arguments(c, name, inp, out)
    if name in ("embedding", "embedding_backward"):
        rows, dim = c.pick([0, 1, 3, 7]), c.pick([0, 1, 4])
        idx_shape = tuple(c.pick([0, 1, 2, 5]) for _ in range(c.below(3)))
        idx = np.random.default_rng(c.byte()).integers(0, max(rows, 1), idx_shape)
        if c.rarely(32) and idx.size:
            idx.flat[c.below(idx.size)] = c.pick([-1, rows, 2**40, -(2**62)])
        if name == "embedding":
            return [idx, inp(rows, dim)]
        return [inp(*idx_shape, dim), idx, out(rows, dim), c.pick([-1, 0, rows - 1] if c.chance(224) else _INTS)]
    return [random_value(c, kind) for kind in NATIVE_SIGNATURES[name]]


def _pool_arguments(c, name, inp):
    """Pooling arguments on a small input, usually a valid geometry (kernel up to 3, stride up to 3,
    padding up to half the kernel), now and then not."""
    layout = c.pick(["channels_first", "channels_last"])
    n, ch, h, w = c.pick([0, 1, 2]), c.pick([0, 1, 3]), c.pick([1, 2, 5]), c.pick([1, 3, 4])
    x_shape = (n, ch, h, w) if layout == "channels_first" else (n, h, w, ch)
    kernel = (c.pick([1, 2, 3]), c.pick([1, 2, 3]))
    stride = (c.pick([1, 2, 3]), c.pick([1, 2, 3]))
    padding = tuple(c.pick([0, 1]) for _ in range(4))
    dilation = (c.pick([1, 2]), c.pick([1, 2]))
    ceil_mode, count_include_pad = c.chance(128), c.chance(128)
    divisor = c.pick([None, None, 1, 3])
    if name == "adaptive_avg_pool2d":
        return [inp(*x_shape), (c.pick([1, 2, 3, 7]), c.pick([1, 2, 5])), layout]
    try:
        y, indices = _native.max_pool2d(np.zeros(x_shape), kernel, stride, padding, dilation, ceil_mode, layout)
        y_shape = y.shape
    except ValueError:
        y_shape, indices = x_shape, np.zeros(x_shape, np.int64)
    if name == "max_pool2d":
        return [inp(*x_shape), kernel, stride, padding, dilation, ceil_mode, layout]
    if name == "max_pool2d_backward":
        if c.rarely(32) and indices.size:
            indices = indices.copy()
            indices.flat[c.below(indices.size)] = c.pick([-1, h * w, 2**40])
        return [inp(*y_shape), indices, x_shape, layout]
    if name == "avg_pool2d":
        return [inp(*x_shape), kernel, stride, padding, ceil_mode, count_include_pad, divisor, layout]
    try:
        y_shape = _native.avg_pool2d(np.zeros(x_shape), kernel, stride, padding, ceil_mode, True, None, layout).shape
    except ValueError:
        pass
    if name == "avg_pool2d_backward":
        return [inp(*y_shape), x_shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor, layout]
    out = (c.pick([1, 2, 3]), c.pick([1, 2, 3]))
    dy_shape = (n, ch) + out if layout == "channels_first" else (n,) + out + (ch,)
    return [inp(*dy_shape), x_shape, layout]


def _norm_arguments(c, name, inp, out):
    """Normalization arguments on a small input of rank 2 to 4: a channel axis (or a count of
    trailing dims) that is usually valid, optional weight, bias and mask, running statistics
    written in place, ordinary and hostile eps and momentum."""
    shape = tuple(c.pick([0, 1, 2, 3, 5]) for _ in range(c.pick([2, 2, 3, 4])))
    nd = len(shape)

    def maybe(*dims):
        return None if c.chance(64) else inp(*dims)

    if name.startswith("batch_norm"):
        axis = c.pick([1, -1, 1, -1, 2, -2] if c.chance(224) else [0, nd, -nd - 1, 2**40])
        ch = shape[axis] if -nd <= axis < nd else 1
        if name == "batch_norm":
            running = c.chance(160)
            momentum = c.pick([0.1, 0.0, 1.0, 0.01] if c.chance(224) else _FLOATS)
            eps = c.pick([1e-5, 1e-3] if c.chance(224) else _FLOATS)
            return [inp(*shape), maybe(ch), maybe(ch), out(ch) if running else None,
                    np.abs(out(ch)) if running else None, c.chance(160), momentum, eps, axis, c.chance(128),
                    c.pick([None, "relu"] if c.chance(224) else _STRINGS)]
        return [inp(*shape), inp(*shape), inp(ch), np.abs(inp(ch)), maybe(ch), c.chance(128), axis,
                None if c.chance(128) else inp(*shape)]
    dims = c.pick([1, 1, 2, nd] if c.chance(224) else [0, -1, nd + 1, 2**40])
    lead, trail = (shape[:nd - dims], shape[nd - dims:]) if 1 <= dims <= nd else (shape[:-1], shape[-1:])
    if name == "layer_norm":
        return [inp(*shape), dims, maybe(*trail), maybe(*trail), c.pick([1e-5, 1e-3] if c.chance(224) else _FLOATS)]
    return [inp(*shape), inp(*shape), inp(*lead), np.abs(inp(*lead)), dims, maybe(*trail)]
def _recurrent_arguments(c, name, inp, out):
    """A small recurrent layer's forward or backward arguments (time, batch, input and hidden sizes
    sometimes 0), initial states, biases and upstream gradients sometimes None."""
    cell = name.split("_")[0]
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    T, N, I, H = (c.pick([0, 1, 2, 3]) if c.chance(224) else c.pick([1, 5, 9]) for _ in range(4))

    def maybe(*shape):
        return None if c.chance(64) else inp(*shape)

    def maybe_out(*shape):
        return None if c.chance(64) else out(*shape)

    x, w_ih, w_hh = inp(T, N, I), inp(G * H, I), inp(G * H, H)
    flag = c.chance(128)
    if not name.endswith("_backward"):
        states = [maybe(N, H)] + ([maybe(N, H)] if cell == "lstm" else [])
        args = [x, *states, w_ih, w_hh, maybe(G * H), maybe(G * H)]
        return args + (["tanh" if flag else "relu"] if cell == "rnn" else [flag] if cell == "gru" else [])
    finals = [maybe(T, N, H), maybe(N, H)] + ([maybe(N, H)] if cell == "lstm" else [])
    states = [maybe(N, H)] + ([maybe(N, H)] if cell == "lstm" else [])
    saved = [inp(T, N, H)] + ([inp(T, N, {"lstm": 5, "gru": 4}[cell] * H)] if cell != "rnn" else [])
    grads = [maybe_out(G * H, I), maybe_out(G * H, H), maybe_out(G * H), maybe_out(G * H)]
    args = finals + [x] + states[:1] + states[1:] + [w_ih, w_hh] + saved + grads + [c.chance(128)]
    return args + (["tanh" if flag else "relu"] if cell == "rnn" else [flag] if cell == "gru" else [])


def _damage(c, args):
    """Break one argument: another value or type, dtype, shape or layout, or another argument's
    memory (outputs overlapping inputs)."""
    if not args:
        return args
    i = c.below(len(args))
    a = args[i]
    action = c.below(5)
    if action == 0 or not isinstance(a, np.ndarray):
        args[i] = random_value(c, "any" if c.chance(128) else "array")
    elif action == 1:
        args[i] = random_array(c, a.shape)
    elif action == 2:
        args[i] = random_array(c, None, a.dtype)
    elif action == 3:
        args[i] = relayout(c, a)
    else:
        others = [x for x in args if isinstance(x, np.ndarray) and x is not a]
        if others:
            args[i] = c.pick(others)
    return args


_ACTIVATIONS = [None, "relu", "sigmoid", "tanh", "leaky_relu", "gelu", "gelu_tanh"]


def _plan_steps(c, dtype, input_shape):
    """Step descriptors that are often consistent (so the plan gets built and trained) and sometimes
    not: dense steps on the last axis, activations, dropout, flatten."""
    steps, shape = [], list(input_shape)
    for _ in range(1 + c.below(4)):
        kind = c.pick(["dense", "dense", "activation", "dropout", "flatten", "conv2d", "pool", "norm"])
        if kind == "norm":
            steps.append(_norm_step(c, dtype, shape))
        elif kind == "conv2d":
            steps.append(_conv_step(c, dtype, shape))
            shape = steps[-1].pop("_out_shape")
        elif kind == "dense":
            n_out = c.pick([1, 2, 3, 5]) if c.chance(240) else c.pick(_DIMS)
            n_in = shape[-1] if c.chance(240) else c.pick(_DIMS)
            W = np.array(random_array(c, (n_out, n_in), dtype)) if c.chance(240) else random_array(c)
            b = None if c.chance(64) else np.array(random_array(c, (n_out,), dtype))

            def grad_of(p):
                if p is None or c.chance(24):
                    return None  # absent, or frozen
                return np.zeros(p.shape, p.dtype) if p.dtype.kind == "f" else random_array(c)
            steps.append({"kind": "dense",
                          "arrays": {"weight": W, "bias": b, "weight_grad": grad_of(W), "bias_grad": grad_of(b)},
                          "attrs": {"activation": c.pick(_ACTIVATIONS), "negative_slope": c.pick([0.01, -0.5, 0.2]),
                                    "normalize": c.pick([None, None, None, "softmax", "log_softmax"])}})
            shape[-1] = n_out
        elif kind == "activation":
            if c.chance(160):
                attrs = {"activation": c.pick(_ACTIVATIONS[1:]), "negative_slope": 0.1}
            else:
                attrs = {"normalize": c.pick(["softmax", "log_softmax"])}
            steps.append({"kind": "activation", "arrays": {}, "attrs": attrs})
        elif kind == "dropout":
            steps.append({"kind": "dropout", "arrays": {}, "attrs": {"p": c.pick([0.0, 0.1, 0.5, 0.9] if c.chance(224) else _FLOATS)}})
        elif kind == "pool":
            layout = c.pick(["channels_first", "channels_last"])
            pool = c.pick(["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"])
            if pool == "adaptive_avg_pool2d":
                attrs = {"out_h": c.pick([1, 2]), "out_w": c.pick([1, 2, 3]), "layout": layout}
            else:
                attrs = {"kernel_h": c.pick([1, 2]), "kernel_w": c.pick([1, 2, 3]), "stride_h": c.pick([1, 2]),
                         "stride_w": c.pick([1, 2]), "pad_top": 0, "pad_bottom": 0, "pad_left": c.pick([0, 1]),
                         "pad_right": c.pick([0, 1]), "ceil_mode": c.chance(128), "layout": layout}
                if pool == "max_pool2d":
                    attrs.update(dilation_h=1, dilation_w=c.pick([1, 2]))
                else:
                    attrs.update(count_include_pad=c.chance(128), divisor_override=c.pick([None, 2]))
            steps.append({"kind": pool, "arrays": {}, "attrs": attrs})
            if len(shape) == 3:  # the shape after it, from the op on one zero sample
                try:
                    x0 = np.zeros((1, *shape))
                    if pool == "adaptive_avg_pool2d":
                        y0 = _native.adaptive_avg_pool2d(x0, (attrs["out_h"], attrs["out_w"]), layout)
                    else:
                        y0 = _native.avg_pool2d(x0, (attrs["kernel_h"], attrs["kernel_w"]),
                                                (attrs["stride_h"], attrs["stride_w"]),
                                                (0, 0, attrs["pad_left"], attrs["pad_right"]), attrs["ceil_mode"],
                                                True, None, layout)
                    shape = list(y0.shape[1:])
                except ValueError:
                    pass
        else:
            start, end = c.pick([(1, -1), (1, -1), (-2, -1), (0, 0), (2, 1), (1, 7)])
            steps.append({"kind": "flatten", "arrays": {}, "attrs": {"start_dim": start, "end_dim": end}})
            rank = len(shape) + 1
            s, e = start % rank, end % rank
            if 1 <= s <= e < rank:
                shape = shape[:s - 1] + [int(np.prod(shape[s - 1:e]))] + shape[e:]
        if c.rarely(16):  # damage: another value for a key, an unknown key, an unknown kind
            step = steps[-1]
            where = c.pick(["kind", "arrays", "attrs", "extra"])
            step[where] = random_value(c, "any")
    return steps, shape


def _norm_step(c, dtype, shape):
    """A batch_norm or layer_norm step on the current sample shape that mostly fits (a batch norm
    after a conv2d or dense step is folded into it in predict)."""
    rank = max(len(shape), 1)

    def vector(n):
        return np.array(random_array(c, (n,), dtype)) if c.chance(240) else random_array(c)

    def grad_of(p):
        if p is None or c.chance(24):
            return None
        return np.zeros(p.shape, p.dtype) if p.dtype.kind == "f" else random_array(c)
    if c.chance(128):
        dims = c.pick([1, 1, 2, 3])
        cols = shape[len(shape) - dims:] if dims <= len(shape) else [c.pick(_DIMS)]
        w = None if c.chance(64) else np.array(random_array(c, tuple(cols), dtype))
        b = None if c.chance(64) else np.array(random_array(c, tuple(cols), dtype))
        return {"kind": "layer_norm",
                "arrays": {"weight": w, "bias": b, "weight_grad": grad_of(w), "bias_grad": grad_of(b)},
                "attrs": {"eps": c.pick([1e-5, 1e-3]) if c.chance(240) else c.pick(_FLOATS), "normalized_dims": dims}}
    axis = c.pick([0, -1, 1]) if c.chance(240) else c.pick([rank, -rank - 1, 2**63])
    channels = shape[axis] if shape and -len(shape) <= axis < len(shape) else c.pick(_DIMS)
    stats = c.pick(["batch", "batch", "running", "batch_always"]) if c.chance(240) else c.pick(_STRINGS)
    w = None if c.chance(64) else vector(channels)
    b = None if c.chance(64) else vector(channels)
    running = stats != "batch_always" or c.rarely(16)
    arrays = {"weight": w, "bias": b, "weight_grad": grad_of(w), "bias_grad": grad_of(b),
              "running_mean": vector(channels) if running else None,
              "running_var": np.abs(vector(channels)) if running else None,
              "num_batches_tracked": np.zeros(c.pick([(), (1,)]), np.int64) if running and c.chance(160) else None}
    attrs = {"axis": axis, "eps": c.pick([1e-5, 1e-3]) if c.chance(240) else c.pick(_FLOATS),
             "momentum": c.pick([0.1, 0.0, 1.0, None]) if c.chance(240) else c.pick(_FLOATS),
             "unbiased": c.chance(128), "stats": stats, "activation": c.pick([None, "relu"])}
    return {"kind": "batch_norm", "arrays": arrays, "attrs": attrs}


def _conv_step(c, dtype, shape):
    """A conv2d step on (C, H, W) / (H, W, C) samples, or rank-2 ones (H = 1), that mostly fits;
    its expected output shape under "_out_shape" (the input shape when it does not fit)."""
    last = c.chance(128)
    rank = len(shape)
    channels = (shape[-1] if last else shape[0]) if rank else 1
    groups = c.pick([1, 1, 2])
    cout = groups * c.pick([1, 2, 3])
    kh, kw = (1 if rank == 2 else c.pick([1, 2, 3])), c.pick([1, 2, 3])
    sh, sw, dh, dw = (c.pick([1, 1, 2]) for _ in range(4))
    pads = [0 if rank == 2 and i < 2 else c.pick([0, 1, 2]) for i in range(4)]
    cg = max(channels // groups, 1) if c.chance(240) else c.pick(_DIMS)
    if rank == 2:
        w_shape = (kw, cg, cout) if last else (cout, cg, kw)
    else:
        w_shape = (kh, kw, cg, cout) if last else (cout, cg, kh, kw)
    W = np.array(random_array(c, w_shape, dtype)) if c.chance(240) else random_array(c)
    b = None if c.chance(64) else np.array(random_array(c, (cout,), dtype))
    grads = {name: (None if p is None or c.chance(24) else np.zeros(p.shape, p.dtype) if p.dtype.kind == "f"
                    else random_array(c)) for name, p in (("weight_grad", W), ("bias_grad", b))}
    out = list(shape)
    if rank in (2, 3):
        h = 1 if rank == 2 else (shape[0] if last else shape[1])
        w = shape[-2] if last else shape[-1]
        ho = (h + pads[0] + pads[1] - dh * (kh - 1) - 1) // sh + 1
        wo = (w + pads[2] + pads[3] - dw * (kw - 1) - 1) // sw + 1
        if rank == 2:
            out = [wo, cout] if last else [cout, wo]
        else:
            out = [ho, wo, cout] if last else [cout, ho, wo]
    return {"kind": "conv2d", "arrays": {"weight": W, "bias": b, **grads},
            "attrs": {"stride_h": sh, "stride_w": sw, "pad_top": pads[0], "pad_bottom": pads[1],
                      "pad_left": pads[2], "pad_right": pads[3], "dilation_h": dh, "dilation_w": dw,
                      "groups": groups, "layout": "channels_last" if last else "channels_first",
                      "activation": c.pick(_ACTIVATIONS), "negative_slope": 0.01},
            "_out_shape": out}


def _plan_updates(c, steps, optimizer):
    updates = []
    for step in steps:
        arrays = step.get("arrays") if isinstance(step, dict) else None
        if not isinstance(arrays, dict):
            continue
        for p, g in (("weight", "weight_grad"), ("bias", "bias_grad")):
            param, grad = arrays.get(p), arrays.get(g)
            if not isinstance(param, np.ndarray) or not isinstance(grad, np.ndarray):
                continue
            state = {"sgd": [], "momentum": [np.zeros(param.shape, param.dtype)],
                     "adam": [np.zeros(param.shape, param.dtype), np.zeros(param.shape, param.dtype)]}[optimizer]
            if c.rarely(24) and state:
                state[c.below(len(state))] = c.pick([None, random_array(c), param])
            updates.append({"param": param, "grad": grad if c.chance(250) else param, "state": state})
    if c.rarely(16) and updates:
        updates.append(updates[0])  # a parameter twice
    return updates


def _fuzz_plan(c):
    dtype = c.pick(["<f4", "<f8"])
    input_shape = tuple(c.pick([1, 2, 3, 4]) for _ in range(1 + c.below(3)))
    steps, shape = _plan_steps(c, dtype, input_shape)
    optimizer = c.pick(["sgd", "adam", "sgd", "momentum"])
    updates = _plan_updates(c, steps, optimizer)
    loss = c.pick(_LOSSES) if c.chance(240) else c.pick(_STRINGS)
    plan = _native.Plan(steps, input_shape if c.chance(240) else random_value(c, "any"), loss,
                        "adam" if optimizer == "adam" else "sgd", updates, fuse=c.chance(200))
    for _ in range(1 + c.below(3)):
        batch = c.pick(_DIMS)
        x = np.array(random_array(c, (batch,) + input_shape, dtype)) if c.chance(230) else random_array(c)
        if c.chance(40):
            plan.predict(x)
            continue
        classes = shape[-1] if shape else 1
        if c.chance(128):
            target = np.random.default_rng(c.byte()).integers(0, max(classes if c.chance(240) else classes + 1, 1), batch)
        elif c.chance(230):
            target = np.ascontiguousarray(np.abs(random_array(c, (batch, classes), dtype)) % 1)
        else:
            target = random_array(c)
        hyper = [0.1, 0.9 if optimizer == "momentum" else 0.0, 0.0, False, 0.9, 0.999, 1e-8]
        call = [1, c.chance(128), random_value(c, "uint64"), random_value(c, "uint64")]
        if c.rarely(64):
            i = c.below(len(hyper))
            hyper[i] = random_value(c, "bool" if i == 3 else "float")
        if c.rarely(64):
            i = c.below(len(call))
            call[i] = random_value(c, ["int", "bool", "uint64", "uint64"][i])
        if c.chance(250):
            plan.set_hyper(*hyper)
        plan.train_step(x, target, *call)
        if c.rarely(32):
            # properties must not fail
            plan.output_shape, plan.random_per_sample, plan.folded  # noqa: B018


def bindings_target(data):
    """One call of a lamina._native function (or a plan's life) with fuzzed arguments."""
    c = Choices(data)
    name = c.pick(sorted(NATIVE_SIGNATURES))
    threads, isa, packing = _native.get_num_threads(), _native.isa(), _native.packing()
    try:
        with np.errstate(all="ignore"):  # building arguments from inf and NaN warns in NumPy
            if name == "Plan":
                _fuzz_plan(c)
            else:
                args = _valid_arguments(c, name)
                for _ in range(c.below(3)):
                    args = _damage(c, args)
                getattr(_native, name)(*args)
    except ALLOWED:
        return False
    finally:
        _native.set_num_threads(threads)
        _native.set_isa(isa)
        _native.set_packing(packing)
    return True
