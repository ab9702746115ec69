// Bindings of batch norm and layer norm, forward and backward. Batch norm takes the channel axis
// of x (negative from the end; axis 0 is the batch) and views x as (outer, C, inner); layer norm
// takes how many trailing dims of x each row normalises. Every array shares x's dtype; the running
// statistics are updated in place and never converted.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/normalization.h"
#include "python/checks.h"

namespace lamina::python {

namespace {

std::vector<py::ssize_t> dims_of(const py::array& a, py::ssize_t from, py::ssize_t to) {
    return std::vector<py::ssize_t>(a.shape() + from, a.shape() + to);
}

std::string dims_str(const std::vector<py::ssize_t>& d) {
    std::string s = "(";
    for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
    return s + (d.size() == 1 ? ",)" : ")");
}

// An input array of x's dtype, C-contiguous and aligned, of exactly `shape`.
void input_like(const py::array& a, const py::array& x, const std::vector<py::ssize_t>& shape,
                const char* name, const char* what) {
    same_dtype(a, x, name, "x");
    bool same = size_t(a.ndim()) == shape.size();
    for (size_t d = 0; same && d < shape.size(); ++d) same = a.shape(d) == shape[d];
    if (!same)
        fail_value(std::string(name) + " has shape " + shape_str(a) + ", expected " +
                   dims_str(shape) + " (" + what + ")");
    c_contiguous(a, name);
}

// None, or an array checked as input_like.
py::object optional_input(const py::object& obj, const py::array& x,
                          const std::vector<py::ssize_t>& shape, const char* name, const char* what) {
    if (obj.is_none()) return obj;
    if (!py::isinstance<py::array>(obj))
        fail_type(std::string(name) + " must be None or a NumPy array");
    input_like(py::reinterpret_borrow<py::array>(obj), x, shape, name, what);
    return obj;
}

template <typename T>
const T* ptr_or_null(const py::object& a) {
    return a.is_none() ? nullptr : ptr<T>(py::reinterpret_borrow<py::array>(a));
}

ChannelView channel_view(const py::array& x, int64_t axis, const char* op) {
    const int64_t nd = x.ndim();
    if (nd < 2)
        fail_value(std::string(op) + ": x must have a batch axis and a channel axis, got shape " +
                   shape_str(x));
    const int64_t a = axis < 0 ? axis + nd : axis;
    if (a < 1 || a >= nd)
        fail_value(std::string(op) + ": axis " + std::to_string(axis) +
                   " is not a channel axis of shape " + shape_str(x) + " (axis 0 is the batch)");
    ChannelView v{1, x.shape(a), 1};
    for (int64_t d = 0; d < a; ++d) v.outer *= x.shape(d);
    for (int64_t d = a + 1; d < nd; ++d) v.inner *= x.shape(d);
    return v;
}

void check_eps(double eps, const char* op) {
    if (!(std::isfinite(eps) && eps > 0.0))
        fail_value(std::string(op) + ": eps must be finite and > 0, got " + std::to_string(eps));
}

Activation bn_activation(const py::object& activation) {
    if (activation.is_none()) return Activation::none;
    if (py::isinstance<py::str>(activation) && activation.cast<std::string>() == "relu")
        return Activation::relu;
    fail_value("batch_norm: activation must be None or 'relu', got " +
               std::string(py::repr(activation)));
}

py::tuple py_batch_norm(py::array x, py::object weight, py::object bias, py::object running_mean,
                        py::object running_var, bool training, double momentum, double eps,
                        int64_t axis, bool unbiased, py::object activation) {
    const char* op = "batch_norm";
    float_kind(x, "x");
    c_contiguous(x, "x");
    const ChannelView v = channel_view(x, axis, op);
    const std::vector<py::ssize_t> cshape{v.channels};
    const py::object w = optional_input(weight, x, cshape, "weight", "one per channel");
    const py::object b = optional_input(bias, x, cshape, "bias", "one per channel");
    if (running_mean.is_none() != running_var.is_none())
        fail_value(std::string(op) + ": running_mean and running_var go together (one of them is None)");
    const bool running = !running_mean.is_none();
    py::array rm, rv;
    if (running) {
        rm = inplace_array(running_mean, "running_mean");
        rv = inplace_array(running_var, "running_var");
        for (auto [a, name] : {std::pair<py::array*, const char*>{&rm, "running_mean"},
                               {&rv, "running_var"}}) {
            input_like(*a, x, cshape, name, "one per channel");
            if (training) writable(*a, name);
            no_overlap(*a, x, name, "x");
        }
        if (training) no_overlap(rm, rv, "running_mean", "running_var");
    }
    if (!training && !running)
        fail_value(std::string(op) + ": inference mode (training=False) needs running_mean and running_var");
    if (training && v.per_channel() < 2)
        fail_value(std::string(op) + ": a training-mode batch norm needs more than one value per "
                   "channel, got input of shape " + shape_str(x));
    if (!(momentum >= 0.0 && momentum <= 1.0))
        fail_value(std::string(op) + ": momentum must be in [0, 1], got " + std::to_string(momentum));
    check_eps(eps, op);
    const Activation act = bn_activation(activation);
    return by_dtype(x, "x", [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        auto y = empty_like<T>(x);
        auto mean = empty<T>(cshape), invstd = empty<T>(cshape);
        std::vector<T> var(v.channels), scale(v.channels), shift(v.channels);
        T *yp = y.mutable_data(), *mp = mean.mutable_data(), *ip = invstd.mutable_data();
        const T *xp = ptr<T>(x), *wp = ptr_or_null<T>(w), *bp = ptr_or_null<T>(b);
        // Written only in training (inference reads them, and they may be read-only there).
        T* rmp = running && training ? mut<T>(rm) : nullptr;
        T* rvp = running && training ? mut<T>(rv) : nullptr;
        const T* rm_in = running ? ptr<T>(rm) : nullptr;
        const T* rv_in = running ? ptr<T>(rv) : nullptr;
        {
            py::gil_scoped_release release;
            if (training) {
                batch_norm_forward_training<T>(yp, mp, var.data(), ip, rmp, rvp, xp, wp, bp, v, eps,
                                               momentum, unbiased, act, 0.0);
            } else {
                std::copy(rm_in, rm_in + v.channels, mp);
                batch_norm_affine<T>(scale.data(), shift.data(), ip, rm_in, rv_in, wp, bp,
                                     v.channels, eps);
                batch_norm_apply<T>(yp, xp, scale.data(), shift.data(), v, act, 0.0);
            }
        }
        return py::make_tuple(y, mean, invstd);
    });
}

py::tuple py_batch_norm_backward(py::array dy, py::array x, py::array mean, py::array invstd,
                                 py::object weight, bool training, int64_t axis,
                                 py::object relu_output) {
    const char* op = "batch_norm_backward";
    float_kind(x, "x");
    c_contiguous(x, "x");
    const ChannelView v = channel_view(x, axis, op);
    const std::vector<py::ssize_t> xshape = dims_of(x, 0, x.ndim()), cshape{v.channels};
    input_like(dy, x, xshape, "dy", "x's shape");
    input_like(mean, x, cshape, "mean", "one per channel");
    input_like(invstd, x, cshape, "invstd", "one per channel");
    const py::object w = optional_input(weight, x, cshape, "weight", "one per channel");
    const py::object r = optional_input(relu_output, x, xshape, "relu_output", "x's shape");
    return by_dtype(x, "x", [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        auto dx = empty_like<T>(x);
        auto dw = empty<T>(cshape), db = empty<T>(cshape);
        T *dxp = dx.mutable_data(), *dwp = dw.mutable_data(), *dbp = db.mutable_data();
        const T *dyp = ptr<T>(dy), *xp = ptr<T>(x), *mp = ptr<T>(mean), *ip = ptr<T>(invstd);
        const T *wp = ptr_or_null<T>(w), *rp = ptr_or_null<T>(r);
        {
            py::gil_scoped_release release;
            batch_norm_backward<T>(dxp, dwp, dbp, dyp, xp, rp, mp, ip, wp, v, training);
        }
        return py::make_tuple(dx, dw, db);
    });
}

// (rows, cols) of layer norm over the trailing `dims` dims of x.
std::pair<int64_t, int64_t> rows_cols(const py::array& x, int64_t dims, const char* op) {
    if (dims < 1 || dims > x.ndim())
        fail_value(std::string(op) + ": normalized_dims must be in [1, " + std::to_string(x.ndim()) +
                   "] for x of shape " + shape_str(x) + ", got " + std::to_string(dims));
    int64_t rows = 1, cols = 1;
    for (int64_t d = 0; d < x.ndim(); ++d) (d < x.ndim() - dims ? rows : cols) *= x.shape(d);
    for (int64_t d = x.ndim() - dims; d < x.ndim(); ++d)
        if (x.shape(d) < 1)
            fail_value(std::string(op) + ": the normalized dims of x's shape " + shape_str(x) +
                       " must be >= 1");
    return {rows, cols};
}

py::tuple py_layer_norm(py::array x, int64_t normalized_dims, py::object weight, py::object bias,
                        double eps) {
    const char* op = "layer_norm";
    float_kind(x, "x");
    c_contiguous(x, "x");
    const auto [rows, cols] = rows_cols(x, normalized_dims, op);
    check_eps(eps, op);
    const auto lead = dims_of(x, 0, x.ndim() - normalized_dims);
    const auto trail = dims_of(x, x.ndim() - normalized_dims, x.ndim());
    const py::object w = optional_input(weight, x, trail, "weight", "normalized_shape");
    const py::object b = optional_input(bias, x, trail, "bias", "normalized_shape");
    return by_dtype(x, "x", [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        auto y = empty_like<T>(x);
        auto mean = empty<T>(lead), invstd = empty<T>(lead);
        T *yp = y.mutable_data(), *mp = mean.mutable_data(), *ip = invstd.mutable_data();
        const T *xp = ptr<T>(x), *wp = ptr_or_null<T>(w), *bp = ptr_or_null<T>(b);
        {
            py::gil_scoped_release release;
            layer_norm_forward<T>(yp, mp, ip, xp, wp, bp, rows, cols, eps);
        }
        return py::make_tuple(y, mean, invstd);
    });
}

py::tuple py_layer_norm_backward(py::array dy, py::array x, py::array mean, py::array invstd,
                                 int64_t normalized_dims, py::object weight) {
    const char* op = "layer_norm_backward";
    float_kind(x, "x");
    c_contiguous(x, "x");
    const auto [rows, cols] = rows_cols(x, normalized_dims, op);
    const auto lead = dims_of(x, 0, x.ndim() - normalized_dims);
    const auto trail = dims_of(x, x.ndim() - normalized_dims, x.ndim());
    input_like(dy, x, dims_of(x, 0, x.ndim()), "dy", "x's shape");
    input_like(mean, x, lead, "mean", "one per row");
    input_like(invstd, x, lead, "invstd", "one per row");
    const py::object w = optional_input(weight, x, trail, "weight", "normalized_shape");
    return by_dtype(x, "x", [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        auto dx = empty_like<T>(x);
        auto dw = empty<T>(trail), db = empty<T>(trail);
        T *dxp = dx.mutable_data(), *dwp = dw.mutable_data(), *dbp = db.mutable_data();
        const T *dyp = ptr<T>(dy), *xp = ptr<T>(x), *mp = ptr<T>(mean), *ip = ptr<T>(invstd);
        const T* wp = ptr_or_null<T>(w);
        {
            py::gil_scoped_release release;
            layer_norm_backward<T>(dxp, dwp, dbp, dyp, xp, mp, ip, wp, rows, cols);
        }
        return py::make_tuple(dx, dw, db);
    });
}

}  // namespace

void bind_normalization(py::module_& m) {
    m.def("batch_norm", &py_batch_norm, py::arg("x"), py::arg("weight"), py::arg("bias"),
          py::arg("running_mean"), py::arg("running_var"), py::arg("training"), py::arg("momentum"),
          py::arg("eps"), py::arg("axis"), py::arg("unbiased"), py::arg("activation"));
    m.def("batch_norm_backward", &py_batch_norm_backward, py::arg("dy"), py::arg("x"),
          py::arg("mean"), py::arg("invstd"), py::arg("weight"), py::arg("training"),
          py::arg("axis"), py::arg("relu_output"));
    m.def("layer_norm", &py_layer_norm, py::arg("x"), py::arg("normalized_dims"), py::arg("weight"),
          py::arg("bias"), py::arg("eps"));
    m.def("layer_norm_backward", &py_layer_norm_backward, py::arg("dy"), py::arg("x"),
          py::arg("mean"), py::arg("invstd"), py::arg("normalized_dims"), py::arg("weight"));
}

}  // namespace lamina::python
