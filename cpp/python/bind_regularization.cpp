// Bindings of dropout: dropout(x, p, key, counter), dropout_backward(dy, p, key, counter) and
// dropout_mask(n, p, key, counter). key and counter are Python ints in [0, 2**64); element i of
// the flat C-order array draws from counter + i (kernels/regularization.h).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>

#include "kernels/regularization.h"
#include "python/checks.h"

namespace lamina::python {

namespace {

py::array py_dropout(py::array x, double p, py::object key, py::object counter) {
    check_dropout_p(p, "p");
    const uint64_t k = uint64_arg(key, "key"), c = uint64_arg(counter, "counter");
    float_kind(x, "x");
    c_contiguous(x, "x");
    return by_dtype(x, "x", [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto y = empty_like<T>(x);
        T* yp = y.mutable_data();
        const T* xp = ptr<T>(x);
        const int64_t n = x.size();
        py::gil_scoped_release release;
        dropout_forward<T>(yp, xp, n, p, k, c);
        return y;
    });
}

py::array py_dropout_backward(py::array dy, double p, py::object key, py::object counter) {
    check_dropout_p(p, "p");
    const uint64_t k = uint64_arg(key, "key"), c = uint64_arg(counter, "counter");
    float_kind(dy, "dy");
    c_contiguous(dy, "dy");
    return by_dtype(dy, "dy", [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto dx = empty_like<T>(dy);
        T* dxp = dx.mutable_data();
        const T* dyp = ptr<T>(dy);
        const int64_t n = dy.size();
        py::gil_scoped_release release;
        dropout_backward<T>(dxp, dyp, n, p, k, c);
        return dx;
    });
}

py::array py_dropout_mask(int64_t n, double p, py::object key, py::object counter) {
    check_dropout_p(p, "p");
    const uint64_t k = uint64_arg(key, "key"), c = uint64_arg(counter, "counter");
    if (n < 0) fail_value("n must be >= 0, got " + std::to_string(n));
    py::array_t<bool> keep(std::vector<py::ssize_t>{n});
    bool* kp = keep.mutable_data();
    py::gil_scoped_release release;
    dropout_mask(kp, n, p, k, c);
    return keep;
}

}  // namespace

void bind_regularization(py::module_& m) {
    m.def("dropout", &py_dropout, py::arg("x"), py::arg("p"), py::arg("key"), py::arg("counter"));
    m.def("dropout_backward", &py_dropout_backward, py::arg("dy"), py::arg("p"), py::arg("key"),
          py::arg("counter"));
    m.def("dropout_mask", &py_dropout_mask, py::arg("n"), py::arg("p"), py::arg("key"),
          py::arg("counter"));
}

}  // namespace lamina::python
