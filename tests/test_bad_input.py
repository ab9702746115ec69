"""The bad-input matrix, through the public API: layers, Sequential, losses, optimizers, lamina.ops
and load_state_dict. Each case asserts the exact exception type and what its message must name (the
layer, the expected and the given shape), or, for input that is valid but unusual (strided, read-only,
empty, one row, NaN), that the result equals the ordinary case and nothing is corrupted.
"""
import mmap

import numpy as np
import pytest

import lamina as lm
from lamina import _native, ops, reference
from conftest import elementwise_tol

FLOATS = [np.float32, np.float64]


def expect(exc, call, *fragments):
    """call() raises exactly `exc` (not a subclass) and its message contains every fragment."""
    with pytest.raises(exc) as info:
        call()
    assert type(info.value) is exc, f"raised {type(info.value).__name__}: {info.value}"
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"message {message!r} does not name {fragment!r}"


def linear(dtype=np.float32):
    lm.manual_seed(0)
    return lm.Linear(4, 3, dtype=dtype)


def mlp(dtype=np.float32):
    lm.manual_seed(0)
    return lm.Sequential(lm.Linear(4, 3, dtype=dtype), lm.ReLU(), lm.Linear(3, 2, dtype=dtype))


def rand(shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


LINEAR = "Linear(in_features=4, out_features=3, bias=True)"
DENSE = "Dense(units=3, input_shape=(4,))"


# ---------------------------------------------------------------------------------------------
# Wrong rank and wrong feature count: ValueError naming the layer, the expected and given shape

SHAPE_CASES = {
    "Linear 1-D input": (lambda: linear()(np.ones(4)), [LINEAR, "2-D", "(4,)"]),
    # N-D input is (batch, ..., features) since the core issue: a wrong last axis is the error.
    "Linear 3-D input, wrong features": (lambda: linear()(np.ones((2, 2, 5))), [LINEAR, "(2, 2, 4)", "(2, 2, 5)"]),
    "Linear 0-D input": (lambda: linear()(np.float32(1.0)), [LINEAR, "2-D", "()"]),
    "Linear wrong features": (lambda: linear()(np.ones((2, 5))), [LINEAR, "(batch, 4)", "(2, 5)"]),
    "Linear zero features": (lambda: linear()(np.ones((2, 0))), [LINEAR, "(batch, 4)", "(2, 0)"]),
    "Dense wrong features": (lambda: lm.Dense(3, input_shape=(4,))(np.ones((2, 5))), [DENSE, "(batch, 4)", "(2, 5)"]),
    "lazy Dense 1-D input": (lambda: lm.Dense(3)(np.ones(4)), ["Dense(units=3)", "2-D", "(4,)"]),
    "lazy Dense zero features": (lambda: lm.Dense(3)(np.ones((2, 0))), ["Dense(units=3)", "got 0"]),
    "ReLU 1-D input": (lambda: lm.ReLU()(np.ones(4)), ["ReLU()", "2-D", "(4,)"]),
    # Softmax(dim=-1) takes N-D input since the core issue; dim=1 still means a 2-D input.
    "Softmax(dim=1) 3-D input": (lambda: lm.Softmax(dim=1)(np.ones((1, 2, 3))), ["Softmax(dim=1)", "2-D", "(1, 2, 3)"]),
    "Sequential wrong features": (lambda: mlp()(np.ones((2, 5))),
                                  ["Sequential layer 0", LINEAR, "(batch, 4)", "(2, 5)"]),
    "Sequential 1-D input": (lambda: mlp()(np.ones(4)), ["Sequential layer 0", "2-D", "(4,)"]),
    "Sequential layers that do not chain": (lambda: lm.Sequential(lm.Linear(4, 3), lm.Linear(5, 2)),
                                            ["Sequential layer 1", "(batch, 5)", "(None, 3)"]),
    "Sequential.append that does not chain": (lambda: lm.Sequential(lm.Linear(4, 3)).append(lm.Linear(5, 2)),
                                              ["Sequential layer 1", "(batch, 5)", "(None, 3)"]),
    "CrossEntropyLoss 1-D logits": (lambda: lm.CrossEntropyLoss()(np.ones(3), np.array([0])),
                                    ["CrossEntropyLoss", "2-D", "(3,)"]),
    "CrossEntropyLoss 3-D target": (lambda: lm.CrossEntropyLoss()(np.ones((2, 3)), np.ones((2, 3, 1))),
                                    ["CrossEntropyLoss", "(2, 3, 1)"]),
    "CrossEntropyLoss probabilities of the wrong shape": (
        lambda: lm.CrossEntropyLoss()(np.ones((2, 3)), np.full((2, 4), 0.25)), ["(2, 4)", "(2, 3)"]),
    "MSELoss 3-D prediction": (lambda: lm.MSELoss()(np.ones((2, 2, 2)), np.ones((2, 2, 2))), ["MSELoss", "(2, 2, 2)"]),
    "MSELoss target shape": (lambda: lm.MSELoss()(np.ones((2, 2)), np.ones(2)), ["MSELoss", "(2,)", "(2, 2)"]),
    "MSELoss (1, 2) target for (2, 1) prediction is not broadcast": (
        lambda: lm.MSELoss()(np.ones((2, 1)), np.ones((1, 2))), ["(1, 2)", "(2, 1)"]),
    "BCEWithLogitsLoss target shape": (lambda: lm.BCEWithLogitsLoss()(np.ones((2, 2)), np.ones(2)),
                                       ["BCEWithLogitsLoss", "(2,)", "(2, 2)"]),
    "ops.linear 1-D x": (lambda: ops.linear(np.ones(4), np.ones((3, 4))), ["linear", "x", "2-D", "(4,)"]),
    "ops.linear wrong in_features": (lambda: ops.linear(np.ones((2, 5)), np.ones((3, 4))),
                                     ["linear", "(3, 4)", "(2, 5)"]),
    "ops.linear wrong bias": (lambda: ops.linear(np.ones((2, 4)), np.ones((3, 4)), np.ones(4)), ["b", "(4,)", "(3,)"]),
    "ops.gemm 3-D a": (lambda: ops.gemm(np.ones((2, 2, 2)), np.ones((2, 2))), ["gemm", "a", "2-D", "(2, 2, 2)"]),
    "ops.gemm inner sizes": (lambda: ops.gemm(np.ones((2, 3)), np.ones((4, 5))), ["gemm", "(4, 5)", "(2, 3)"]),
    "ops.gemm c shape": (lambda: ops.gemm(np.ones((2, 3)), np.ones((3, 5)), np.zeros((5, 2))), ["c", "(5, 2)", "(2, 5)"]),
    "ops.linear_backward dy shape": (
        lambda: ops.linear_backward(np.ones((2, 2)), np.ones((2, 4)), np.ones((3, 4))), ["dy", "(2, 2)", "(2, 3)"]),
    "ops.softmax 1-D": (lambda: ops.softmax(np.ones(3)), ["softmax", "2-D", "(3,)"]),
    "ops.relu_backward shapes differ": (lambda: ops.relu_backward(np.ones(3), np.ones(4)), ["dy", "(3,)", "(4,)"]),
    "ops.cross_entropy 1-D logits": (lambda: ops.cross_entropy(np.ones(3), np.array([0])), ["logits", "2-D", "(3,)"]),
    "ops.sgd_step grad shape": (lambda: ops.sgd_step(np.ones(3), np.ones(4), lr=0.1), ["grad", "(4,)", "(3,)"]),
    "ops.adam_step m shape": (
        lambda: ops.adam_step(np.ones(3), np.ones(3), np.zeros(4), np.zeros(3), step=1), ["m", "(4,)", "(3,)"]),
}


@pytest.mark.parametrize("case", sorted(SHAPE_CASES))
def test_shape_mismatch_is_a_value_error_naming_the_shapes(case):
    call, fragments = SHAPE_CASES[case]
    expect(ValueError, call, *fragments)


def _forwarded(model, x):
    model(x)
    return model


BACKWARD_CASES = {
    "Linear": (lambda: _forwarded(linear(), np.ones((2, 4))).backward(np.ones((2, 4))),
               [LINEAR, "(2, 3)", "(2, 4)"]),
    "Linear 1-D gradient": (lambda: _forwarded(linear(), np.ones((2, 4))).backward(np.ones(3)), [LINEAR, "(2, 3)", "(3,)"]),
    "Dense": (lambda: _forwarded(lm.Dense(3, input_shape=(4,), activation="relu"), np.ones((2, 4))).backward(np.ones((1, 3))),
              ["Dense(units=3, activation='relu'", "(2, 3)", "(1, 3)"]),
    "Softmax": (lambda: _forwarded(lm.Softmax(), np.ones((2, 4))).backward(np.ones((2, 5))), ["Softmax", "(2, 4)", "(2, 5)"]),
    "Sequential": (lambda: _forwarded(mlp(), np.ones((2, 4))).backward(np.ones((2, 3))),
                   ["Sequential layer 2", "(2, 2)", "(2, 3)"]),
}


@pytest.mark.parametrize("case", sorted(BACKWARD_CASES))
def test_backward_gradient_of_the_wrong_shape(case):
    call, fragments = BACKWARD_CASES[case]
    expect(ValueError, call, *fragments)


@pytest.mark.parametrize("model", [lm.Linear(2, 2), lm.Dense(2, input_shape=(2,)), lm.ReLU(), lm.Sequential(lm.Linear(2, 2))],
                         ids=["Linear", "Dense", "ReLU", "Sequential"])
def test_backward_before_forward_is_a_runtime_error(model):
    expect(RuntimeError, lambda: model.backward(np.ones((1, 2))), "backward() called before forward()")


def test_a_single_sample_as_a_1d_array_is_not_guessed_to_be_a_batch():
    # (4,) could mean one sample of 4 features or 4 samples of 1: refusing is the only safe answer.
    expect(ValueError, lambda: lm.Linear(4, 1)(np.ones(4)), "(batch, features)", "(4,)")


# ---------------------------------------------------------------------------------------------
# Dtypes: object, string, bytes, complex and bool arrays are a TypeError naming the dtype

BAD_DTYPES = {
    "object": lambda shape: np.full(shape, None, dtype=object),
    "str": lambda shape: np.full(shape, "1"),
    "bytes": lambda shape: np.full(shape, b"1"),
    "complex": lambda shape: np.ones(shape, np.complex128),
    "bool": lambda shape: np.ones(shape, bool),
}

DTYPE_TARGETS = {
    "Linear input": lambda x: linear()(x),
    "Dense input": lambda x: lm.Dense(3, input_shape=(4,))(x),
    "lazy Dense input": lambda x: lm.Dense(3)(x),
    "ReLU input": lambda x: lm.ReLU()(x),
    "Softmax input": lambda x: lm.Softmax()(x),
    "Sequential input": lambda x: mlp()(x),
    "Linear backward gradient": lambda x: _forwarded(lm.Linear(3, 4), np.ones((2, 3))).backward(x),
    "CrossEntropyLoss logits": lambda x: lm.CrossEntropyLoss()(x, np.zeros(2, np.int64)),
    "MSELoss prediction": lambda x: lm.MSELoss()(x, np.ones((2, 4))),
    "MSELoss target": lambda x: lm.MSELoss()(np.ones((2, 4)), x),
    "BCEWithLogitsLoss logits": lambda x: lm.BCEWithLogitsLoss()(x, np.ones((2, 4))),
    "Parameter data": lambda x: lm.Parameter(x),
    "load_state_dict value": lambda x: lm.Linear(4, 2).load_state_dict({"weight": x, "bias": np.ones(2)}),
    "ops.linear x": lambda x: ops.linear(x, np.ones((3, 4))),
    "ops.gemm a": lambda x: ops.gemm(x, np.ones((4, 2))),
    "ops.relu x": lambda x: ops.relu(x),
    "ops.softmax x": lambda x: ops.softmax(x),
    "ops.mse pred": lambda x: ops.mse(x, np.ones((2, 4))),
    "ops.cross_entropy logits": lambda x: ops.cross_entropy(x, np.zeros(2, np.int64)),
    "ops.sgd_step grad": lambda x: ops.sgd_step(np.ones((2, 4)), x, lr=0.1),
}


@pytest.mark.parametrize("dtype", sorted(BAD_DTYPES))
@pytest.mark.parametrize("target", sorted(DTYPE_TARGETS))
def test_non_numeric_dtypes_are_a_type_error_naming_the_dtype(target, dtype):
    x = BAD_DTYPES[dtype]((2, 4))
    expect(TypeError, lambda: DTYPE_TARGETS[target](x), str(x.dtype))


@pytest.mark.parametrize("dtype", ["object", "str", "complex", "bool"])
def test_bad_dtype_in_a_layer_names_the_layer(dtype):
    x = BAD_DTYPES[dtype]((2, 4))
    expect(TypeError, lambda: linear()(x), LINEAR, str(x.dtype))
    expect(TypeError, lambda: mlp()(x), "Sequential layer 0", LINEAR, str(x.dtype))


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16, np.float16])
def test_integer_and_half_inputs_are_cast_to_the_layer_dtype(dtype):
    x = np.arange(8).reshape(2, 4).astype(dtype)
    layer = linear(np.float64)
    y = layer(x)
    assert y.dtype == np.float64, y.dtype
    np.testing.assert_array_equal(y, layer(x.astype(np.float64)))


def test_equivalent_dtype_objects_are_accepted():
    # A float32 dtype carrying metadata, or rebuilt by newbyteorder("="), is another object that is
    # still float32; the bindings compared dtypes by identity and refused it as "must be float32 or
    # float64, got dtype float32".
    x = rand((3, 4), np.float32)
    for dtype in (np.dtype(np.float32, metadata={"unit": "m"}), np.dtype(np.float32).newbyteorder("=")):
        y = x.astype(dtype)
        np.testing.assert_array_equal(_native.activation(y, "relu"), ops.relu(x))
        np.testing.assert_array_equal(ops.linear(y, y), ops.linear(x, x))
    labels = np.array([0, 1, 2], np.dtype(np.int64, metadata={"kind": "labels"}))
    assert np.isfinite(_native.cross_entropy(x[:, :3].copy(), labels)[0])


@pytest.mark.parametrize("op", ["relu", "sigmoid", "tanh"])
def test_a_0d_input_keeps_its_shape(op):
    # np.ascontiguousarray made a 0-d input (1,) in lamina.ops; the reference keeps it 0-d.
    y = getattr(ops, op)(np.array(0.5))
    assert y.shape == (), y.shape
    np.testing.assert_allclose(y, getattr(reference, op)(np.array(0.5)), **elementwise_tol(np.float64))
    loss, grad = ops.mse(np.array(2.0), np.array(1.0))
    assert loss == 1.0 and grad.shape == (), grad


def test_mixed_precision_in_place_is_refused_not_silently_cast():
    expect(TypeError, lambda: ops.sgd_step(np.ones(3, np.float32), np.ones(3, np.float64), lr=0.1), "float64", "float32")
    expect(TypeError, lambda: ops.linear_backward(np.ones((2, 3), np.float32), np.ones((2, 4), np.float32),
                                                  np.ones((3, 4), np.float32), dW=np.zeros((3, 4))), "dW", "float64")


@pytest.mark.parametrize("dtype", FLOATS)
def test_big_endian_floats_keep_their_precision(dtype):
    # '>f8' is float64 in the other byte order; it used to fall to the float32 default in lamina.ops
    # and in the activation layers, silently losing precision.
    x = rand((3, 5), dtype)
    swapped = x.astype(np.dtype(dtype).newbyteorder(">"))
    for name, f in [("ops.relu", ops.relu), ("ops.softmax", ops.softmax), ("ReLU", lm.ReLU()), ("Tanh", lm.Tanh())]:
        y = f(swapped)
        assert y.dtype == dtype, f"{name}: {swapped.dtype} input gave {y.dtype}"
        np.testing.assert_array_equal(y, f(x), err_msg=name)
    w = rand((2, 5), dtype, seed=1)
    np.testing.assert_array_equal(ops.gemm(swapped, w.T.astype(swapped.dtype)), ops.gemm(x, w.T))
    p = lm.Parameter(swapped)
    assert p.data.dtype == dtype and p.data.dtype.isnative, p.data.dtype
    np.testing.assert_array_equal(p.data, x)


# ---------------------------------------------------------------------------------------------
# Layouts: non-contiguous, Fortran-order, negative strides, misaligned and read-only arrays


def layouts(x):
    """Views of the same values in other memory layouts (and a misaligned copy)."""
    out = {
        "fortran": np.asfortranarray(x),
        "column slice": np.repeat(x, 2, axis=1)[:, ::2],
        "row slice": np.repeat(x, 2, axis=0)[::2],
        "negative strides": x[::-1, ::-1].copy()[::-1, ::-1],
        "transposed view": np.ascontiguousarray(x.T).T,
    }
    buf = np.zeros(x.nbytes + 1, np.uint8)
    misaligned = buf[1:].view(x.dtype).reshape(x.shape)
    misaligned[...] = x
    out["misaligned"] = misaligned
    read_only = x.copy()
    read_only.flags.writeable = False
    out["read-only"] = read_only
    for name, v in out.items():
        np.testing.assert_array_equal(v, x, err_msg=name)
    return out


LAYOUT_NAMES = ["fortran", "column slice", "row slice", "negative strides", "transposed view", "misaligned", "read-only"]


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_layers_give_bitwise_the_same_result_for_any_input_layout(layout, dtype):
    x = rand((5, 4), dtype)
    dy = rand((5, 2), dtype, seed=1)
    ref_model, model = mlp(dtype), mlp(dtype)
    want_y = ref_model(x)
    want_dx = ref_model.backward(dy)
    xv, dyv = layouts(x)[layout], layouts(dy)[layout]
    np.testing.assert_array_equal(model(xv), want_y, err_msg=f"forward, {layout} input")
    np.testing.assert_array_equal(model.backward(dyv), want_dx, err_msg=f"backward, {layout} gradient")
    for (name, p), q in zip(model.named_parameters(), ref_model.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=f"{name}.grad, {layout} input")
    np.testing.assert_array_equal(xv, x, err_msg="the input was modified")


OPS_ON_LAYOUTS = {
    "linear": lambda x, w: ops.linear(x, w, activation="tanh"),
    "gemm": lambda x, w: ops.gemm(x, w.T, alpha=0.5),
    "gemm trans_a": lambda x, w: ops.gemm(x.T, w.T, trans_a=True),
    "linear_backward": lambda x, w: ops.linear_backward(x[:, :3], x, w)[:2],
    "relu": lambda x, w: ops.relu(x),
    "sigmoid_backward": lambda x, w: ops.sigmoid_backward(x, ops.sigmoid(x)),
    "softmax": lambda x, w: ops.softmax(x),
    "softmax_backward": lambda x, w: ops.softmax_backward(x, ops.softmax(x)),
    "cross_entropy": lambda x, w: ops.cross_entropy(x, np.arange(5) % 4),
    "binary_cross_entropy": lambda x, w: ops.binary_cross_entropy(x, np.full(x.shape, 0.25)),
    "mse": lambda x, w: ops.mse(x, x * 0.5),
}


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
@pytest.mark.parametrize("op", sorted(OPS_ON_LAYOUTS))
def test_ops_give_bitwise_the_same_result_for_any_input_layout(op, layout):
    x = rand((5, 4), np.float32)
    w = rand((3, 4), np.float32, seed=1)
    want = OPS_ON_LAYOUTS[op](x, w)
    got = OPS_ON_LAYOUTS[op](layouts(x)[layout], layouts(w)[layout])
    want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
    for i, (g, e) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(g, e, err_msg=f"{op} output {i} with {layout} inputs")


INPLACE_CASES = {
    # (call with a bad in-place array, exception, fragments)
    "ops.gemm Fortran c": (lambda c: ops.gemm(np.ones((3, 2)), np.ones((2, 3)), np.asfortranarray(c)),
                           ValueError, ["c", "C-contiguous"]),
    "ops.gemm read-only c": (lambda c: ops.gemm(np.ones((3, 2)), np.ones((2, 3)), _read_only(c)), ValueError, ["c", "read-only"]),
    "ops.gemm list c": (lambda c: ops.gemm(np.ones((3, 2)), np.ones((2, 3)), c.tolist()), TypeError, ["c", "NumPy array"]),
    "ops.linear_backward strided dW": (
        lambda c: ops.linear_backward(np.ones((2, 3)), np.ones((2, 3)), np.ones((3, 3)), dW=np.zeros((3, 6))[:, ::2]),
        ValueError, ["dW", "C-contiguous"]),
    "ops.linear_backward read-only db": (
        lambda c: ops.linear_backward(np.ones((2, 3)), np.ones((2, 3)), np.ones((3, 3)), db=_read_only(np.zeros(3))),
        ValueError, ["db", "read-only"]),
    "ops.sgd_step Fortran param": (lambda c: ops.sgd_step(np.asfortranarray(c), np.ones((3, 3)), lr=0.1),
                                   ValueError, ["param", "C-contiguous"]),
    "ops.sgd_step read-only param": (lambda c: ops.sgd_step(_read_only(c), np.ones((3, 3)), lr=0.1),
                                     ValueError, ["param", "read-only"]),
    "ops.sgd_step integer param": (lambda c: ops.sgd_step(np.ones((3, 3), np.int64), np.ones((3, 3)), lr=0.1),
                                   TypeError, ["param", "int64"]),
    "ops.sgd_step transposed velocity": (
        lambda c: ops.sgd_step(np.ones((3, 4)), np.ones((3, 4)), np.zeros((4, 3)).T, lr=0.1, momentum=0.9),
        ValueError, ["velocity", "C-contiguous"]),
    "ops.adam_step read-only v": (
        lambda c: ops.adam_step(np.ones(3), np.ones(3), np.zeros(3), _read_only(np.zeros(3)), step=1), ValueError, ["v", "read-only"]),
    "ops.adam_step misaligned param": (
        lambda c: ops.adam_step(layouts(c)["misaligned"], np.ones((3, 3)), np.zeros((3, 3)), np.zeros((3, 3)), step=1),
        ValueError, ["param", "aligned"]),
}


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("case", sorted(INPLACE_CASES))
def test_arrays_written_in_place_must_be_writable_contiguous_floats(case):
    call, exc, fragments = INPLACE_CASES[case]
    expect(exc, lambda: call(np.zeros((3, 3))), *fragments)


@pytest.mark.parametrize("fn", ["activation", "linear"])
def test_native_functions_reject_misaligned_arrays(fn):
    # lamina.ops copies such views; the raw bindings refuse them rather than read through a
    # misaligned pointer (undefined behaviour, reported by UBSan before this check existed).
    x = layouts(rand((3, 4)))["misaligned"]
    call = {"activation": lambda: _native.activation(x, "relu"),
            "linear": lambda: _native.linear(x, np.ones((2, 4)), None, None)}[fn]
    expect(ValueError, call, "x", "aligned")


def test_parameter_copies_misaligned_data_so_in_place_updates_work():
    data = layouts(rand((3, 4)))["misaligned"]
    p = lm.Parameter(data)
    assert p.data.flags.aligned and p.data.flags.c_contiguous
    p.grad[...] = 1.0
    lm.SGD([p], lr=0.5).step()
    np.testing.assert_array_equal(p.data, data - 0.5)


# ---------------------------------------------------------------------------------------------
# Zero-size arrays and a batch of one


@pytest.mark.parametrize("dtype", FLOATS)
def test_an_empty_batch_flows_through_forward_and_backward(dtype):
    model = lm.Sequential(lm.Linear(4, 3, dtype=dtype), lm.ReLU(), lm.Dense(5, activation="tanh", dtype=dtype),
                          lm.Softmax())
    grads_before = [p.grad.copy() for p in model.parameters()]
    y = model(np.zeros((0, 4), dtype))
    assert y.shape == (0, 5) and y.dtype == dtype, (y.shape, y.dtype)
    dx = model.backward(np.zeros((0, 5), dtype))
    assert dx.shape == (0, 4) and dx.dtype == dtype, (dx.shape, dx.dtype)
    for p, before in zip(model.parameters(), grads_before):
        np.testing.assert_array_equal(p.grad, before)


EMPTY_LOSS_CASES = {
    "CrossEntropyLoss": (lambda: lm.CrossEntropyLoss()(np.zeros((0, 3)), np.zeros(0, np.int64)), ["empty batch", "(0, 3)"]),
    "BCEWithLogitsLoss": (lambda: lm.BCEWithLogitsLoss()(np.zeros((0, 1)), np.zeros(0)), ["empty batch", "(0, 1)"]),
    "MSELoss": (lambda: lm.MSELoss()(np.zeros((0, 2)), np.zeros((0, 2))), ["empty batch", "(0, 2)"]),
    "ops.cross_entropy": (lambda: ops.cross_entropy(np.zeros((0, 3)), np.zeros(0, np.int64)), ["logits", "(0, 3)"]),
    "ops.mse": (lambda: ops.mse(np.zeros((0, 2)), np.zeros((0, 2))), ["pred", "(0, 2)"]),
    "ops.binary_cross_entropy": (lambda: ops.binary_cross_entropy(np.zeros((3, 0)), np.zeros((3, 0))), ["logits", "(3, 0)"]),
}


@pytest.mark.parametrize("case", sorted(EMPTY_LOSS_CASES))
def test_a_loss_over_no_elements_is_a_value_error_not_nan(case):
    call, fragments = EMPTY_LOSS_CASES[case]
    expect(ValueError, call, *fragments)


@pytest.mark.parametrize("m,n,k", [(0, 3, 4), (3, 0, 4), (3, 4, 0), (0, 0, 0)])
def test_ops_on_zero_sizes(m, n, k):
    a, b, bias = np.ones((m, k)), np.ones((k, n)), np.arange(n, dtype=np.float64)
    np.testing.assert_array_equal(ops.gemm(a, b, bias=bias), reference.gemm(a, b, bias=bias))
    np.testing.assert_array_equal(ops.linear(a, b.T.copy(), bias), reference.linear(a, b.T.copy(), bias))
    dx, dW, db = ops.linear_backward(np.ones((m, n)), a, np.ones((n, k)))
    assert (dx.shape, dW.shape, db.shape) == ((m, k), (n, k), (n,))
    np.testing.assert_array_equal(dW, np.zeros((n, k)) + m)
    assert ops.softmax(np.ones((m, n))).shape == (m, n)
    assert ops.relu(np.ones((m, n, k))).shape == (m, n, k)


def test_zero_size_parameters_step_without_touching_memory():
    p = lm.Parameter(np.zeros((0, 3)))
    lm.Adam([p]).step()
    lm.SGD([p], lr=0.1, momentum=0.9).step()
    assert p.data.shape == (0, 3)


@pytest.mark.parametrize("dtype", FLOATS)
def test_a_batch_of_one_equals_the_same_row_of_a_larger_batch(dtype, close):
    x = rand((7, 4), dtype)
    dy = rand((7, 2), dtype, seed=1)
    full, single = mlp(dtype), mlp(dtype)
    y_full = full(x)
    dx_full = full.backward(dy)
    y_one = single(x[3:4])
    dx_one = single.backward(dy[3:4])
    assert y_one.shape == (1, 2) and dx_one.shape == (1, 4)
    close(y_one, y_full[3:4], dtype, k=7, what="forward of one row")
    close(dx_one, dx_full[3:4], dtype, k=7, what="backward of one row")
    # One sample's weight gradient is an outer product; compare it with the float64 reference.
    h = np.maximum(x[3:4].astype(np.float64) @ single[0].weight.data.T + single[0].bias.data, 0)
    close(single[2].weight.grad, dy[3:4].T.astype(np.float64) @ h, dtype, k=7, what="dW of one row")
    loss = lm.CrossEntropyLoss()(y_one, np.array([1]))
    assert np.isfinite(loss)


# ---------------------------------------------------------------------------------------------
# NaN and Inf propagate and never crash; softmax and cross-entropy stay finite up to |logit| = 1e4


@pytest.mark.parametrize("dtype", FLOATS)
def test_nan_propagates_to_its_own_rows_only(dtype):
    x = rand((4, 4), dtype)
    bad = x.copy()
    bad[1, 2] = bad[3, 0] = np.nan
    lm.manual_seed(0)
    model = lm.Sequential(lm.Linear(4, 3, dtype=dtype), lm.Tanh(), lm.Dense(2, dtype=dtype), lm.Softmax())
    clean = model(x)
    y = model(bad)
    assert np.isnan(y[[1, 3]]).all(), y
    np.testing.assert_array_equal(y[[0, 2]], clean[[0, 2]])
    dx = model.backward(np.ones_like(y))
    assert dx.shape == x.shape and np.isfinite(dx[[0, 2]]).all(), dx
    assert np.isnan(lm.CrossEntropyLoss()(y, np.array([0, 1, 0, 1]))), "NaN logits should give a NaN loss"


@pytest.mark.parametrize("dtype", FLOATS)
def test_inf_input_gives_signed_inf_outputs(dtype):
    layer = linear(dtype)
    x = rand((2, 4), dtype)
    x[1, 0] = np.inf
    y = layer(x)
    w0 = layer.weight.data[:, 0]
    np.testing.assert_array_equal(y[1], np.where(w0 > 0, np.inf, -np.inf).astype(dtype))
    assert np.isfinite(y[0]).all(), y


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("scale", [1.0, 1e2, 1e4])
def test_softmax_and_cross_entropy_are_finite_for_large_finite_logits(dtype, scale):
    z = (rand((6, 5), np.float64, seed=2) * scale).astype(dtype)
    z[0] = [scale, -scale, 0, scale, -scale]
    labels = np.array([1, 0, 4, 2, 3, 1])
    y = ops.softmax(z)
    assert np.isfinite(y).all(), y
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=10 * np.finfo(dtype).eps)
    y_layer = lm.Softmax()(z)
    np.testing.assert_array_equal(y_layer, y)
    loss_fn = lm.CrossEntropyLoss()
    loss = loss_fn(z, labels)
    grad = loss_fn.backward()
    ref_loss, ref_grad = reference.cross_entropy(z, labels)
    assert np.isfinite(loss) and np.isfinite(grad).all(), (loss, grad)
    # The loss is as large as the logits; float32 rounds the logits themselves at |z| eps.
    np.testing.assert_allclose(loss, ref_loss, rtol=10 * np.finfo(dtype).eps)
    np.testing.assert_allclose(grad, ref_grad, atol=10 * np.finfo(dtype).eps)
    bce = lm.BCEWithLogitsLoss()(z, np.full(z.shape, 0.5))
    assert np.isfinite(bce), bce


NONFINITE_CASES = {
    "cross-entropy of NaN logits": lambda: lm.CrossEntropyLoss()(np.array([[np.nan, 0.0], [0.0, 1.0]]), np.array([0, 1])),
    "cross-entropy of +inf logits": lambda: lm.CrossEntropyLoss()(np.array([[np.inf, 0.0], [0.0, 1.0]]), np.array([0, 1])),
    "cross-entropy of -inf at the label": lambda: lm.CrossEntropyLoss()(np.array([[-np.inf, 0.0]]), np.array([0])),
    "BCE of NaN logits": lambda: lm.BCEWithLogitsLoss()(np.array([[np.nan], [1.0]]), np.array([0.0, 1.0])),
    "MSE of inf": lambda: lm.MSELoss()(np.array([[np.inf]]), np.array([[0.0]])),
    "softmax of an all -inf row": lambda: ops.softmax(np.array([[-np.inf, -np.inf]])).sum(),
    "softmax of +inf": lambda: ops.softmax(np.array([[np.inf, 0.0]])).sum(),
    "gemm of inf * 0": lambda: ops.gemm(np.array([[np.inf, 1.0]]), np.array([[0.0], [1.0]]))[0, 0],
}


@pytest.mark.parametrize("case", sorted(NONFINITE_CASES))
def test_non_finite_values_give_a_non_finite_result_not_an_error(case):
    value = NONFINITE_CASES[case]()
    assert not np.isfinite(value), f"{case}: {value}"


@pytest.mark.parametrize("opt", ["SGD", "Adam"])
def test_a_nan_gradient_reaches_its_own_parameter_only(opt):
    model = mlp(np.float64)
    model(rand((2, 4)))
    model.backward(np.ones((2, 2)))
    assert model[0].weight.grad.any(), "the test needs a nonzero gradient in layer 0"
    model[2].weight.grad[0, 0] = np.nan
    before = model[0].weight.data.copy()
    optimizer = lm.SGD(model.parameters(), lr=0.1) if opt == "SGD" else lm.Adam(model.parameters())
    optimizer.step()
    assert np.isnan(model[2].weight.data[0, 0])
    assert np.isfinite(model[2].weight.data.flat[1:]).all()
    assert np.isfinite(model[0].weight.data).all() and not np.array_equal(model[0].weight.data, before)


# ---------------------------------------------------------------------------------------------
# Labels and targets out of range

LABEL_CASES = {
    "label = classes": (np.array([0, 3]), ValueError, ["label 3", "index 1", "[0, 3)"]),
    "negative label": (np.array([-1, 0]), ValueError, ["label -1", "index 0", "[0, 3)"]),
    "label 2**62": (np.array([0, 2**62]), ValueError, [str(2**62), "index 1"]),
    "uint64 label above int64": (np.array([0, 2**63 + 1], np.uint64), ValueError, [str(2**63 + 1), "index 1"]),
    "fractional label": (np.array([0, 1.5]), ValueError, ["1.5", "not an integer"]),
    "NaN label": (np.array([np.nan, 1.0]), ValueError, ["nan", "index 0"]),
    "inf label": (np.array([0.0, np.inf]), ValueError, ["inf", "index 1"]),
    "too many labels": (np.array([0, 1, 2]), ValueError, ["3 labels", "batch of 2"]),
    "bool labels": (np.array([True, False]), TypeError, ["bool"]),
    "string labels": (np.array(["0", "1"]), TypeError, ["<U1"]),
    "probabilities above 1": (np.full((2, 3), 2.0), ValueError, ["2.0", "[0, 1]"]),
    "negative probabilities": (np.full((2, 3), -0.5), ValueError, ["-0.5", "[0, 1]"]),
    "NaN probabilities": (np.full((2, 3), np.nan), ValueError, ["nan", "[0, 1]"]),
}


@pytest.mark.parametrize("case", sorted(LABEL_CASES))
def test_cross_entropy_labels_out_of_range(case):
    target, exc, fragments = LABEL_CASES[case]
    expect(exc, lambda: lm.CrossEntropyLoss()(np.zeros((2, 3)), target), *fragments)


OPS_LABEL_CASES = {
    "label = classes": (np.array([0, 3]), ValueError, ["target[1] = 3", "[0, 3)"]),
    "negative label": (np.array([0, -2]), ValueError, ["target[1] = -2"]),
    "float labels": (np.array([0.0, 1.0]), TypeError, ["integers", "float64"]),
    "NaN probabilities": (np.full((2, 3), np.nan), ValueError, ["nan", "[0, 1]"]),
}


@pytest.mark.parametrize("case", sorted(OPS_LABEL_CASES))
def test_ops_cross_entropy_labels_out_of_range(case):
    target, exc, fragments = OPS_LABEL_CASES[case]
    expect(exc, lambda: ops.cross_entropy(np.zeros((2, 3)), target), *fragments)
    expect(exc, lambda: reference.cross_entropy(np.zeros((2, 3)), target), *fragments)


@pytest.mark.parametrize("target", [np.array([0.0, 1.5]), np.array([-0.1, 1.0]), np.array([np.nan, 1.0])],
                         ids=["above 1", "negative", "NaN"])
def test_binary_targets_outside_the_unit_interval(target):
    expect(ValueError, lambda: lm.BCEWithLogitsLoss()(np.zeros((2, 1)), target), "[0, 1]")
    expect(ValueError, lambda: ops.binary_cross_entropy(np.zeros(2), target), "[0, 1]")


def test_fit_rejects_labels_out_of_range_before_training():
    model = mlp()
    model.compile(optimizer=lm.SGD(model.parameters(), lr=0.1), loss=lm.CrossEntropyLoss())
    before = [p.copy() for p in model.state_dict().values()]
    with pytest.raises(ValueError, match="out of range"):
        model.fit(np.ones((3, 4)), np.array([0, 1, 2]), epochs=1, batch_size=3, verbose=0)
    for p, q in zip(model.state_dict().values(), before):
        np.testing.assert_array_equal(p, q)


# ---------------------------------------------------------------------------------------------
# Sizes whose products overflow: refused before allocation (MemoryError or ValueError), never a
# wrap-around, never a crash. Every size here needs > 2**47 bytes, more than any x86-64 process can
# map, so the refusal does not depend on the machine's memory or overcommit policy.

TOO_BIG = {
    "Linear(2**31, 2**31)": lambda: lm.Linear(2**31, 2**31),
    "Linear(2**24, 2**24, float64)": lambda: lm.Linear(2**24, 2**24, dtype=np.float64),
    "Linear(2**40, 2**40)": lambda: lm.Linear(2**40, 2**40),
    "Dense(2**40, input_shape=(2**40,))": lambda: lm.Dense(2**40, input_shape=(2**40,)),
    "lazy Dense(2**40) on an empty (0, 2**40) batch": lambda: lm.Dense(2**40)(np.zeros((0, 2**40), np.float32)),
    "Sequential(Linear(2**24, 2**24))": lambda: lm.Sequential(lm.Linear(2**24, 2**24)),
    "ops.gemm (2**40, 0) @ (0, 2**40)": lambda: ops.gemm(np.empty((2**40, 0), np.float32), np.empty((0, 2**40), np.float32)),
    "ops.linear with 2**40 rows and no features": lambda: ops.linear(np.empty((2**40, 0), np.float32),
                                                                      np.empty((2**30, 0), np.float32)),
    "_native.linear with 2**40 rows and no features": lambda: _native.linear(np.empty((2**40, 0), np.float32),
                                                                              np.empty((2**30, 0), np.float32), None, None),
    # Broadcast views cost nothing to create; lamina.ops copies non-contiguous inputs, and that copy
    # (2**50 elements) is what must be refused.
    "ops.relu of a (2**25, 2**25) broadcast view": lambda: ops.relu(np.broadcast_to(np.float32(1), (2**25, 2**25))),
    "Softmax of a (2**25, 2**25) broadcast view": lambda: lm.Softmax()(np.broadcast_to(np.float32(1), (2**25, 2**25))),
}


@pytest.mark.parametrize("case", sorted(TOO_BIG))
def test_sizes_that_cannot_be_allocated_are_refused_cleanly(case):
    with pytest.raises((MemoryError, ValueError)) as info:
        TOO_BIG[case]()
    assert any(w in str(info.value) for w in ("too big", "allocate", "maximum", "Maximum")), str(info.value)


def test_huge_shapes_with_a_zero_dimension_compute_nothing():
    dx, dW, db = ops.linear_backward(np.empty((2**40, 0), np.float32), np.empty((2**40, 0), np.float32),
                                     np.empty((0, 0), np.float32))
    assert dx.shape == (2**40, 0) and dW.shape == (0, 0) and db.shape == (0,)
    assert ops.relu(np.empty((0, 2**40), np.float32)).shape == (0, 2**40)
    assert lm.Linear(3, 2)(np.empty((0, 3))).shape == (0, 2)


def _huge_zero_mapping(nbytes):
    """A read-only array over `nbytes` of untouched anonymous memory: the kernel maps every page to
    the shared zero page, so it costs no RAM. Skips where the mapping is refused."""
    flags = mmap.MAP_PRIVATE | getattr(mmap, "MAP_ANONYMOUS", 0x20) | getattr(mmap, "MAP_NORESERVE", 0)
    try:
        m = mmap.mmap(-1, nbytes, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    except (OSError, ValueError, OverflowError) as e:
        pytest.skip(f"cannot map {nbytes} bytes: {e}")
    return m


def test_strides_beyond_2_to_the_31_elements_do_not_wrap():
    # A (2, 3) view whose second row starts 2**31 + 5 elements after the first: any 32-bit index
    # arithmetic in the bindings or the GEMM engine would read the wrong row.
    m = _huge_zero_mapping(4 * (2**31 + 16))
    base = np.frombuffer(m, dtype=np.float32)
    row = 2**31 + 5
    base[:3] = [1.0, 2.0, 3.0]
    base[row:row + 3] = [4.0, -5.0, 6.0]
    a = np.lib.stride_tricks.as_strided(base, shape=(2, 3), strides=(4 * row, 4))
    b = np.lib.stride_tricks.as_strided(base, shape=(3, 2), strides=(4, 4 * row))  # = a.T
    want = a.astype(np.float64) @ a.T.astype(np.float64)
    np.testing.assert_array_equal(ops.gemm(a, b), want)
    np.testing.assert_array_equal(ops.gemm(a, a, trans_b=True), want)


def test_a_linear_input_of_more_than_2_to_the_31_elements():
    # x is (2**20 + 1, 2**11): 2**31 + 2**11 elements, 8 GiB of zero pages. M * K overflows a 32-bit
    # integer; the last row must still meet its own weights. About 2 s, mostly page faults.
    rows, cols = 2**20 + 1, 2**11
    m = _huge_zero_mapping(4 * rows * cols)
    x = np.frombuffer(m, dtype=np.float32).reshape(rows, cols)
    x[-1, :4] = [1.0, 2.0, 3.0, 4.0]
    w = np.zeros((1, cols), np.float32)
    w[0, :4] = [1.0, 1.0, 1.0, 2.0]
    y = ops.linear(x, w)
    assert y.shape == (rows, 1)
    assert y[-1, 0] == 14.0 and not y[:-1].any(), (y[-1], np.flatnonzero(y[:-1]))


# ---------------------------------------------------------------------------------------------
# load_state_dict: mismatched keys, shapes and dtypes; nothing is written unless everything fits


def _state(model, **changes):
    state = {k: np.full(v.shape, 0.5) for k, v in model.state_dict().items()}
    state.update(changes)
    return {k: v for k, v in state.items() if v is not None}


STATE_CASES = {
    "missing key": (lambda m: _state(m, **{"2.bias": None}), KeyError, ["missing keys ['2.bias']"]),
    "unexpected key": (lambda m: _state(m, **{"3.weight": np.ones((2, 2))}), KeyError, ["unexpected keys ['3.weight']"]),
    "weight transposed": (lambda m: _state(m, **{"0.weight": np.ones((4, 3))}), ValueError,
                          ["'0.weight'", "(4, 3)", "(3, 4)"]),
    "bias of the wrong length": (lambda m: _state(m, **{"2.bias": np.ones(3)}), ValueError, ["'2.bias'", "(3,)", "(2,)"]),
    "scalar for a weight": (lambda m: _state(m, **{"2.weight": np.float64(1.0)}), ValueError, ["'2.weight'", "()"]),
    "string values": (lambda m: _state(m, **{"0.bias": np.array(["a", "b", "c"])}), TypeError, ["'0.bias'", "<U1"]),
    "complex values": (lambda m: _state(m, **{"0.bias": np.ones(3, complex)}), TypeError, ["'0.bias'", "complex128"]),
    "object values": (lambda m: _state(m, **{"0.bias": np.array([None] * 3)}), TypeError, ["'0.bias'", "object"]),
    "not a mapping": (lambda m: list(_state(m).items()), TypeError, ["mapping", "list"]),
}


@pytest.mark.parametrize("case", sorted(STATE_CASES))
def test_load_state_dict_rejects_mismatches_and_writes_nothing(case):
    make, exc, fragments = STATE_CASES[case]
    model = mlp()
    before = model.state_dict()
    expect(exc, lambda: model.load_state_dict(make(model)), *fragments)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=f"{key} changed by a failed load")


def test_load_state_dict_into_a_read_only_parameter_writes_nothing():
    model = mlp()
    model[2].bias.data.flags.writeable = False
    before = model.state_dict()
    expect(ValueError, lambda: model.load_state_dict(_state(model)), "'2.bias'", "read-only")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=f"{key} changed by a failed load")


def test_load_state_dict_non_strict_loads_what_matches():
    model = mlp()
    result = model.load_state_dict(_state(model, **{"2.bias": None, "extra": np.ones(1)}), strict=False)
    assert result.missing_keys == ["2.bias"] and result.unexpected_keys == ["extra"], result
    np.testing.assert_array_equal(model[0].weight.data, 0.5)


def test_optimizer_load_state_dict_mismatches():
    model = mlp()
    opt = lm.SGD(model.parameters(), lr=0.1, momentum=0.9)
    state = opt.state_dict()
    expect(KeyError, lambda: opt.load_state_dict({k: v for k, v in state.items() if k != "velocity.1"}), "velocity.1")
    expect(ValueError, lambda: opt.load_state_dict({**state, "velocity.0": np.zeros((4, 3))}), "velocity.0", "(4, 3)", "(3, 4)")
    expect(ValueError, lambda: opt.load_state_dict({**state, "lr": -1.0}), "lr")


# ---------------------------------------------------------------------------------------------
# Optimizers: bad hyperparameters, and a step that fails leaves every parameter untouched

HYPER_CASES = {
    "SGD negative lr": (lambda ps: lm.SGD(ps, lr=-0.1), ValueError, ["lr", "-0.1"]),
    "SGD NaN lr": (lambda ps: lm.SGD(ps, lr=float("nan")), ValueError, ["lr", "nan"]),
    "SGD string lr": (lambda ps: lm.SGD(ps, lr="0.1"), TypeError, ["lr", "'0.1'"]),
    "SGD momentum above 1": (lambda ps: lm.SGD(ps, lr=0.1, momentum=1.5), ValueError, ["momentum", "1.5"]),
    "SGD nesterov without momentum": (lambda ps: lm.SGD(ps, lr=0.1, nesterov=True), ValueError, ["Nesterov"]),
    "Adam beta1 = 1": (lambda ps: lm.Adam(ps, betas=(1.0, 0.999)), ValueError, ["beta1", "1.0"]),
    "Adam one beta": (lambda ps: lm.Adam(ps, betas=(0.9,)), ValueError, ["betas", "(0.9,)"]),
    "Adam negative eps": (lambda ps: lm.Adam(ps, eps=-1e-8), ValueError, ["eps"]),
    "empty parameter list": (lambda ps: lm.SGD([], lr=0.1), ValueError, ["empty parameter list"]),
    "arrays instead of Parameters": (lambda ps: lm.SGD([p.data for p in ps], lr=0.1), TypeError, ["params[0]", "ndarray"]),
    "a Parameter twice": (lambda ps: lm.Adam(ps + ps[:1]), ValueError, ["params[4]", "more than once"]),
    "ops.adam_step step 2**64": (lambda ps: ops.adam_step(np.ones(3), np.ones(3), np.zeros(3), np.zeros(3), step=2**64),
                                 ValueError, ["step", str(2**64)]),
    "ops.adam_step step 0": (lambda ps: ops.adam_step(np.ones(3), np.ones(3), np.zeros(3), np.zeros(3), step=0),
                             ValueError, ["step", "0"]),
    "set_num_threads(0)": (lambda ps: lm.set_num_threads(0), ValueError, ["threads", "0"]),
}


@pytest.mark.parametrize("case", sorted(HYPER_CASES))
def test_bad_optimizer_arguments(case):
    make, exc, fragments = HYPER_CASES[case]
    expect(exc, lambda: make(mlp().parameters()), *fragments)


def _break_last(model, how):
    p = model[2].bias
    if how == "gradient of the wrong shape":
        p.grad = np.zeros(5, p.data.dtype)
    elif how == "gradient of the wrong dtype":
        p.grad = np.zeros(p.data.shape, np.float64)
    elif how == "read-only data":
        p.data.flags.writeable = False
    elif how == "data replaced by another shape":
        p.data, p.grad = np.zeros(5, np.float32), np.zeros(5, np.float32)
    return {"gradient of the wrong shape": (ValueError, ["parameter 3", "(2,)", "(5,)"]),
            "gradient of the wrong dtype": (TypeError, ["parameter 3", "float32", "float64"]),
            "read-only data": (ValueError, ["parameter 3", "writeable"]),
            "data replaced by another shape": (ValueError, ["parameter 3", "(5,)", "(2,)"])}[how]


@pytest.mark.parametrize("how", ["gradient of the wrong shape", "gradient of the wrong dtype", "read-only data",
                                 "data replaced by another shape"])
@pytest.mark.parametrize("opt", ["SGD momentum", "Adam"])
def test_a_failing_step_leaves_every_parameter_and_state_untouched(opt, how):
    model = mlp()
    model(np.ones((2, 4), np.float32))
    model.backward(np.ones((2, 2), np.float32))
    optimizer = lm.SGD(model.parameters(), lr=0.1, momentum=0.9) if opt == "SGD momentum" else lm.Adam(model.parameters())
    before = model.state_dict()
    state_before = optimizer.state_dict()
    exc, fragments = _break_last(model, how)
    expect(exc, optimizer.step, f"{type(optimizer).__name__}.step", *fragments)
    for key in ("0.weight", "0.bias", "2.weight"):
        np.testing.assert_array_equal(model.state_dict()[key], before[key], err_msg=f"{key} updated by a failed step")
    for key, value in optimizer.state_dict().items():
        np.testing.assert_array_equal(value, state_before[key], err_msg=f"optimizer {key} changed by a failed step")


# ---------------------------------------------------------------------------------------------
# Found by fuzzing the bindings: each was a crash, now a clean exception


def test_gemm_with_a_zero_size_void_dtype_is_a_type_error_not_sigfpe():
    # The stride check divided by the element size (0 for 'V0') before the dtype was checked.
    v = np.zeros((2, 2), "V0")
    expect(TypeError, lambda: _native.gemm(v, v, v, None, 1.0, 0.0, None), "a", "V0")


def _dense_step(W, b=None, normalize=None):
    return {"kind": "dense", "arrays": {"weight": W, "bias": b, "weight_grad": np.zeros_like(W),
                                        "bias_grad": None if b is None else np.zeros_like(b)},
            "attrs": {"activation": None, "normalize": normalize}}


def _plan(optimizer, states, normalize=None):
    """A one-step plan on W (3, 4) and b (3,) whose updates carry `states` (per parameter)."""
    step = _dense_step(np.ones((3, 4)), np.ones(3), normalize)
    params = [(step["arrays"]["weight"], step["arrays"]["weight_grad"]), (step["arrays"]["bias"], step["arrays"]["bias_grad"])]
    updates = [{"param": p, "grad": g, "state": state} for (p, g), state in zip(params, states)]
    return _native.Plan([step], (4,), "mse", optimizer, updates)


def _adam_plan():
    plan = _plan("adam", [[np.zeros((3, 4)), np.zeros((3, 4))], [np.zeros(3), np.zeros(3)]])
    plan.set_hyper(0.1, 0.0, 0.0, False, 0.9, 0.999, 1e-8)
    return plan


PLAN_CASES = {
    # Adam's state for an existing bias given as None: a null pointer written through (SIGSEGV).
    "Adam without the bias state": (lambda: _plan("adam", [[np.zeros((3, 4)), np.zeros((3, 4))], [np.zeros(3), None]]),
                                    TypeError, ["updates[1]", "bias", "state[1]", "NumPy array"]),
    "Adam with one state array": (lambda: _plan("adam", [[np.zeros((3, 4)), np.zeros((3, 4))], [np.zeros(3)]]),
                                  ValueError, ["updates[1]", "bias", "adam takes [m, v]"]),
    # SGD silently dropped the momentum of a parameter without velocity.
    "SGD without the bias velocity": (
        lambda: _plan("sgd", [[np.zeros((3, 4))], []]).set_hyper(0.1, 0.9, 0.0, False, 0.9, 0.999, 1e-8),
        ValueError, ["momentum", "velocity"]),
    "SGD momentum without velocity": (
        lambda: _plan("sgd", [[], []]).set_hyper(0.1, 0.9, 0.0, False, 0.9, 0.999, 1e-8),
        ValueError, ["momentum", "velocity"]),
    # A step before the settings would have trained with whatever the plan held.
    "step before set_hyper": (
        lambda: _plan("sgd", [[], []]).train_step(np.ones((2, 4)), np.ones((2, 3)), 0, False, 0, 0),
        ValueError, ["set_hyper", "before"]),
    # Adam's bias correction divides by 1 - beta**step: step 0 is a division by zero.
    "Adam step 0": (lambda: _adam_plan().train_step(np.ones((2, 4)), np.ones((2, 3)), 0, False, 0, 0),
                    ValueError, ["step count", ">= 1"]),
    # A layer without features made the plan memcpy from an empty buffer's null pointer (UBSan).
    "layer without output features": (
        lambda: _native.Plan([_dense_step(np.ones((0, 4)))], (4,), "mse", "sgd", []).predict(np.ones((2, 4))),
        ValueError, ["plan step 0 (dense)", "(0, 4)", "at least one"]),
    # These two escaped as IndexError and RuntimeError (as positional tuples).
    "step without a kind": (lambda: _native.Plan([{}], (4,), "mse", "sgd", []), ValueError, ["plan step 0", "kind"]),
    "normalize not a string": (lambda: _native.Plan([_dense_step(np.ones((3, 4)), normalize=True)], (4,), "mse", "sgd", []),
                               TypeError, ["plan step 0 (dense)", "normalize"]),
}


@pytest.mark.parametrize("case", sorted(PLAN_CASES))
def test_native_plan_rejects_inconsistent_layers(case):
    call, exc, fragments = PLAN_CASES[case]
    expect(exc, call, *fragments)
