// Bindings of the losses: each returns (mean loss, gradient with respect to its input). Class
// labels are int64 and range-checked here; anything else is a target with the input's dtype.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "kernels/losses.h"
#include "python/checks.h"

namespace lamina::python {

namespace {

// Integer labels (rows,) as int64 in [0, cols), or target probabilities with the logits' shape.
// `on_probabilities`: the input is a softmax output (Keras's from_logits=False), not logits.
py::tuple cross_entropy_impl(py::array logits, py::array target, bool on_probabilities) {
    float_kind(logits, "logits");
    ndim_is(logits, 2, "logits");
    c_contiguous(logits, "logits");
    c_contiguous(target, "target");
    const int64_t rows = logits.shape(0), cols = logits.shape(1);
    const bool labels = same_type(target.dtype(), py::dtype::of<int64_t>());
    if (labels) {
        check_labels(target, rows, cols, "batch size of logits");
    } else {
        same_dtype(target, logits, "target", "logits");
        same_shape(target, logits, "target", "logits");
    }
    if (rows > 0 && cols == 0) fail_value("logits must have at least one class");
    return by_dtype(logits, "logits", [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        auto dz = empty<T>({rows, cols});
        T* dzp = dz.mutable_data();
        const T* zp = ptr<T>(logits);
        double loss;
        {
            py::gil_scoped_release release;
            if (on_probabilities)
                loss = labels ? probability_cross_entropy_labels<T>(dzp, zp, ptr<int64_t>(target), rows, cols)
                              : probability_cross_entropy_probs<T>(dzp, zp, ptr<T>(target), rows, cols);
            else
                loss = labels ? cross_entropy_labels<T>(dzp, zp, ptr<int64_t>(target), rows, cols)
                              : cross_entropy_probs<T>(dzp, zp, ptr<T>(target), rows, cols);
        }
        return py::make_tuple(loss, dz);
    });
}

py::tuple py_cross_entropy(py::array logits, py::array target) {
    return cross_entropy_impl(logits, target, false);
}

py::tuple py_probability_cross_entropy(py::array probs, py::array target) {
    return cross_entropy_impl(probs, target, true);
}

// Negative log-likelihood of log-probabilities (rows, cols) with int64 labels (rows,).
py::tuple py_nll(py::array logp, py::array labels) {
    float_kind(logp, "logp");
    ndim_is(logp, 2, "logp");
    c_contiguous(logp, "logp");
    if (!same_type(labels.dtype(), py::dtype::of<int64_t>()))
        fail_type("labels must be int64 class indices, got dtype " +
                  std::string(py::str(labels.dtype())));
    c_contiguous(labels, "labels");
    const int64_t rows = logp.shape(0), cols = logp.shape(1);
    check_labels(labels, rows, cols, "batch size of logp");
    if (rows > 0 && cols == 0) fail_value("logp must have at least one class");
    return by_dtype(logp, "logp", [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        auto grad = empty<T>({rows, cols});
        T* gp = grad.mutable_data();
        const T* lp = ptr<T>(logp);
        const int64_t* label = ptr<int64_t>(labels);
        double loss;
        {
            py::gil_scoped_release release;
            loss = nll<T>(gp, lp, label, rows, cols);
        }
        return py::make_tuple(loss, grad);
    });
}

template <typename Kernel>
py::tuple elementwise_loss(py::array pred, py::array target, const char* pred_name, Kernel kernel) {
    float_kind(pred, pred_name);
    same_dtype(target, pred, "target", pred_name);
    same_shape(target, pred, "target", pred_name);
    c_contiguous(pred, pred_name);
    c_contiguous(target, "target");
    return by_dtype(pred, pred_name, [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        auto grad = empty_like<T>(pred);
        T* gp = grad.mutable_data();
        const T *pp = ptr<T>(pred), *tp = ptr<T>(target);
        const int64_t n = pred.size();
        double loss;
        {
            py::gil_scoped_release release;
            loss = kernel(gp, pp, tp, n);
        }
        return py::make_tuple(loss, grad);
    });
}

py::tuple py_binary_cross_entropy(py::array logits, py::array target) {
    return elementwise_loss(logits, target, "logits", [](auto* g, auto* z, auto* t, int64_t n) {
        return binary_cross_entropy(g, z, t, n);
    });
}

py::tuple py_probability_binary_cross_entropy(py::array probs, py::array target) {
    return elementwise_loss(probs, target, "probs", [](auto* g, auto* p, auto* t, int64_t n) {
        return probability_binary_cross_entropy(g, p, t, n);
    });
}

py::tuple py_mse(py::array pred, py::array target) {
    return elementwise_loss(pred, target, "pred", [](auto* g, auto* p, auto* t, int64_t n) {
        return mse(g, p, t, n);
    });
}

}  // namespace

void bind_losses(py::module_& m) {
    m.def("cross_entropy", &py_cross_entropy, py::arg("logits"), py::arg("target"));
    m.def("binary_cross_entropy", &py_binary_cross_entropy, py::arg("logits"), py::arg("target"));
    m.def("mse", &py_mse, py::arg("pred"), py::arg("target"));
    m.def("probability_cross_entropy", &py_probability_cross_entropy, py::arg("probs"),
          py::arg("target"));
    m.def("probability_binary_cross_entropy", &py_probability_binary_cross_entropy,
          py::arg("probs"), py::arg("target"));
    m.def("nll", &py_nll, py::arg("logp"), py::arg("labels"));
}

}  // namespace lamina::python
