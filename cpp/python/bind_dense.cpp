// Bindings of the dense layer: linear (y = act(x W^T + b)) and linear_backward (dx, and dW, db
// accumulated in place).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <tuple>

#include "kernels/dense.h"
#include "python/checks.h"

namespace lamina::python {

namespace {

// Checks x (M, K), W (N, K) and b (N,) or None; returns (M, K, N).
std::tuple<int64_t, int64_t, int64_t> check_dense(const py::array& x, const py::array& W,
                                                  const py::array* b) {
    float_kind(W, "W");
    ndim_is(x, 2, "x");
    ndim_is(W, 2, "W");
    same_dtype(x, W, "x", "W");
    dim_is(x, 1, W.shape(1), "x", "in_features of W");
    c_contiguous(x, "x");
    c_contiguous(W, "W");
    if (b) {
        same_dtype(*b, W, "b", "W");
        ndim_is(*b, 1, "b");
        dim_is(*b, 0, W.shape(0), "b", "out_features of W");
        c_contiguous(*b, "b");
    }
    return {x.shape(0), x.shape(1), W.shape(0)};
}

py::array py_linear(py::array x, py::array W, py::object b, py::object activation,
                    double negative_slope, py::object scale, py::object shift) {
    const Activation act = parse_activation(activation);
    check_negative_slope(act, negative_slope);
    const py::array barr = b.is_none() ? py::array() : py::array::ensure(b);
    if (!b.is_none() && !barr) fail_type("b must be an array");
    auto [M, K, N] = check_dense(x, W, b.is_none() ? nullptr : &barr);
    const auto [sarr, tarr] = channel_affine(scale, shift, W, "W", N);
    return by_dtype(W, "W", [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto y = empty<T>({M, N});
        T* yp = y.mutable_data();
        const T* bp = b.is_none() ? nullptr : ptr<T>(barr);
        const T *xp = ptr<T>(x), *Wp = ptr<T>(W);
        const T* sp = scale.is_none() ? nullptr : ptr<T>(sarr);
        const T* tp = scale.is_none() ? nullptr : ptr<T>(tarr);
        py::gil_scoped_release release;
        dense_forward<T>(yp, xp, Wp, bp, M, K, N, act, negative_slope, sp, tp);
        return y;
    });
}

// dW += dy.T @ x and db += dy.sum(0) in place; returns dx = dy @ W (or None).
py::object py_linear_backward(py::array dy, py::array x, py::array W, py::object dW_obj,
                              py::object db, bool need_dx) {
    py::array dW = inplace_array(dW_obj, "dW");
    auto [M, K, N] = check_dense(x, W, nullptr);
    ndim_is(dy, 2, "dy");
    same_dtype(dy, W, "dy", "W");
    dim_is(dy, 0, M, "dy", "batch size of x");
    dim_is(dy, 1, N, "dy", "out_features of W");
    c_contiguous(dy, "dy");
    same_dtype(dW, W, "dW", "W");
    same_shape(dW, W, "dW", "W");
    c_contiguous(dW, "dW");
    writable(dW, "dW");
    for (auto [arr, name] : {std::pair{&dy, "dy"}, {&x, "x"}, {&W, "W"}})
        no_overlap(dW, *arr, "dW", name);
    py::array db_arr;
    if (!db.is_none()) {
        db_arr = inplace_array(db, "db");
        same_dtype(db_arr, W, "db", "W");
        ndim_is(db_arr, 1, "db");
        dim_is(db_arr, 0, N, "db", "out_features of W");
        c_contiguous(db_arr, "db");
        writable(db_arr, "db");
        no_overlap(db_arr, dy, "db", "dy");
        no_overlap(db_arr, dW, "db", "dW");
    }
    return by_dtype(W, "W", [&](auto tag) -> py::object {
        using T = decltype(tag);
        py::object result = py::none();
        T* dxp = nullptr;
        if (need_dx) {
            auto dx = empty<T>({M, K});
            dxp = dx.mutable_data();
            result = dx;
        }
        T* dWp = mut<T>(dW);
        // No columns, nothing to sum: skip db rather than walk M empty rows (M can be 2**40 when
        // dy is (M, 0), which costs nothing to create).
        T* dbp = db.is_none() || N == 0 ? nullptr : mut<T>(db_arr);
        const T *dyp = ptr<T>(dy), *xp = ptr<T>(x), *Wp = ptr<T>(W);
        py::gil_scoped_release release;
        dense_backward<T>(dxp, dWp, dbp, dyp, xp, Wp, M, K, N);
        return result;
    });
}

}  // namespace

void bind_dense(py::module_& m) {
    m.def("linear", &py_linear, py::arg("x"), py::arg("W"), py::arg("b"), py::arg("activation"),
          py::arg("negative_slope") = 0.01, py::arg("scale") = py::none(),
          py::arg("shift") = py::none());
    m.def("linear_backward", &py_linear_backward, py::arg("dy"), py::arg("x"), py::arg("W"),
          py::arg("dW"), py::arg("db"), py::arg("need_dx"));
}

}  // namespace lamina::python
