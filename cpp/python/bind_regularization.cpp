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

// out = kept ? in * scale : 0 with `kernel` (forward on x, backward on dy: the same masked scale).
template <typename Kernel>
py::array masked(py::array in, const char* name, double p, py::object key, py::object counter,
                 Kernel kernel) {
    check_dropout_p(p, "p");
    const uint64_t k = uint64_arg(key, "key"), c = uint64_arg(counter, "counter");
    float_kind(in, name);
    c_contiguous(in, name);
    return by_dtype(in, name, [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto out = empty_like<T>(in);
        T* op = out.mutable_data();
        const T* ip = ptr<T>(in);
        const int64_t n = in.size();
        py::gil_scoped_release release;
        kernel(op, ip, n, p, k, c);
        return out;
    });
}

py::array py_dropout(py::array x, double p, py::object key, py::object counter) {
    return masked(x, "x", p, key, counter,
                  [](auto* y, auto* xp, int64_t n, double q, uint64_t k, uint64_t c) {
                      dropout_forward(y, xp, n, q, k, c);
                  });
}

py::array py_dropout_backward(py::array dy, double p, py::object key, py::object counter) {
    return masked(dy, "dy", p, key, counter,
                  [](auto* dx, auto* dyp, int64_t n, double q, uint64_t k, uint64_t c) {
                      dropout_backward(dx, dyp, n, q, k, c);
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
