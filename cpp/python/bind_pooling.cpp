// Bindings of pooling: max_pool2d (with its argmax indices), avg_pool2d, adaptive_avg_pool2d and
// their backwards. Sizes come as tuples of ints (kernel, stride, dilation: (h, w); padding: (top,
// bottom, left, right)), layout as "channels_first" or "channels_last"; every size, shape and
// index is checked before an output is allocated.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "kernels/pooling.h"
#include "python/checks.h"

namespace lamina::python {

namespace {

// A tuple or list of n Python ints (integer NumPy scalars too, never bools), each in int64's range.
std::vector<int64_t> int_tuple(const py::handle& obj, size_t n, const char* name) {
    const std::string what = std::string(name) + " must be a tuple of " + std::to_string(n) + " ints";
    if (!py::isinstance<py::tuple>(obj) && !py::isinstance<py::list>(obj)) fail_type(what);
    const py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
    if (seq.size() != n) fail_value(what + ", got " + std::to_string(seq.size()) + " values");
    std::vector<int64_t> out;
    for (size_t i = 0; i < n; ++i) {
        const py::object v = seq[i];
        if (PyBool_Check(v.ptr()) || PyFloat_Check(v.ptr()) || !PyIndex_Check(v.ptr()))
            fail_type(what);
        const py::object index = py::reinterpret_steal<py::object>(PyNumber_Index(v.ptr()));
        if (!index) throw py::error_already_set();
        int overflow = 0;
        const long long value = PyLong_AsLongLongAndOverflow(index.ptr(), &overflow);
        if (overflow) fail_value(std::string(name) + " holds a value out of int64's range");
        if (value == -1 && PyErr_Occurred()) throw py::error_already_set();
        out.push_back(value);
    }
    return out;
}

bool channels_last_of(const std::string& layout) {
    if (layout == "channels_first") return false;
    if (layout == "channels_last") return true;
    fail_value("layout must be 'channels_first' or 'channels_last', got '" + layout + "'");
}

std::string layout_dims(bool channels_last) { return channels_last ? "(N, H, W, C)" : "(N, C, H, W)"; }

// The batch, channel and plane sizes of a 4-D shape in the given layout.
void read_shape(Pool2d& g, const int64_t* shape, bool channels_last) {
    g.channels_last = channels_last;
    g.batch = shape[0];
    g.channels = channels_last ? shape[3] : shape[1];
    g.in_h = channels_last ? shape[1] : shape[2];
    g.in_w = channels_last ? shape[2] : shape[3];
}

// A 4-D float input in the given layout, C-contiguous.
void read_input(Pool2d& g, const py::array& x, const char* name, bool channels_last) {
    float_kind(x, name);
    if (x.ndim() != 4)
        fail_value(std::string(name) + " must be 4-D " + layout_dims(channels_last) +
                   ", got shape " + shape_str(x));
    c_contiguous(x, name);
    const int64_t shape[4] = {x.shape(0), x.shape(1), x.shape(2), x.shape(3)};
    read_shape(g, shape, channels_last);
}

// x_shape of a backward: four sizes whose product fits.
void read_x_shape(Pool2d& g, const py::handle& obj, bool channels_last) {
    const std::vector<int64_t> s = int_tuple(obj, 4, "x_shape");
    int64_t total = 1;
    for (int64_t d : s)
        if (d < 0 || __builtin_mul_overflow(total, d, &total) || total > (int64_t(1) << 60))
            fail_value("x_shape must hold 4 sizes >= 0 of a representable array, got (" +
                       std::to_string(s[0]) + ", " + std::to_string(s[1]) + ", " +
                       std::to_string(s[2]) + ", " + std::to_string(s[3]) + ")");
    read_shape(g, s.data(), channels_last);
}

void read_window(Pool2d& g, const py::handle& kernel, const py::handle& stride,
                 const py::handle& padding) {
    const auto k = int_tuple(kernel, 2, "kernel"), s = int_tuple(stride, 2, "stride");
    const auto p = int_tuple(padding, 4, "padding");
    g.kernel_h = k[0], g.kernel_w = k[1], g.stride_h = s[0], g.stride_w = s[1];
    g.pad_top = p[0], g.pad_bottom = p[1], g.pad_left = p[2], g.pad_right = p[3];
}

void plan_or_fail(Pool2d& g, bool ceil_mode, const char* op) {
    const std::string error = pool2d_plan(g, ceil_mode);
    if (!error.empty()) fail_value(std::string(op) + ": " + error);
}

std::vector<py::ssize_t> output_shape(const Pool2d& g) {
    if (g.channels_last) return {g.batch, g.out_h, g.out_w, g.channels};
    return {g.batch, g.channels, g.out_h, g.out_w};
}

std::vector<py::ssize_t> input_shape(const Pool2d& g) {
    if (g.channels_last) return {g.batch, g.in_h, g.in_w, g.channels};
    return {g.batch, g.channels, g.in_h, g.in_w};
}

// dy has the output shape of g.
void check_dy(const py::array& dy, const Pool2d& g) {
    float_kind(dy, "dy");
    c_contiguous(dy, "dy");
    const auto want = output_shape(g);
    bool same = dy.ndim() == 4;
    for (int d = 0; same && d < 4; ++d) same = dy.shape(d) == want[d];
    if (!same)
        fail_value("dy has shape " + shape_str(dy) + " but the pooling of x_shape gives (" +
                   std::to_string(want[0]) + ", " + std::to_string(want[1]) + ", " +
                   std::to_string(want[2]) + ", " + std::to_string(want[3]) + ")");
}

int64_t divisor_of(const py::object& divisor_override) {
    if (divisor_override.is_none()) return 0;
    const std::vector<int64_t> d = int_tuple(py::make_tuple(divisor_override), 1,
                                             "divisor_override");
    if (d[0] < 1 || d[0] >= kPoolMax)
        fail_value("divisor_override must be None or in [1, 2**31), got " + std::to_string(d[0]));
    return d[0];
}

py::tuple py_max_pool2d(py::array x, py::object kernel, py::object stride, py::object padding,
                        py::object dilation, bool ceil_mode, const std::string& layout) {
    Pool2d g;
    read_input(g, x, "x", channels_last_of(layout));
    read_window(g, kernel, stride, padding);
    const auto d = int_tuple(dilation, 2, "dilation");
    g.dilation_h = d[0], g.dilation_w = d[1];
    plan_or_fail(g, ceil_mode, "max_pool2d");
    return by_dtype(x, "x", [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        auto y = empty<T>(output_shape(g));
        auto indices = empty<int64_t>(output_shape(g));
        T* yp = y.mutable_data();
        int64_t* ip = indices.mutable_data();
        const T* xp = ptr<T>(x);
        {
            py::gil_scoped_release release;
            max_pool2d_forward<T, int64_t>(yp, ip, xp, g);
        }
        return py::make_tuple(y, indices);
    });
}

py::array py_max_pool2d_backward(py::array dy, py::array indices, py::object x_shape,
                                 const std::string& layout) {
    Pool2d g;
    read_x_shape(g, x_shape, channels_last_of(layout));
    float_kind(dy, "dy");
    c_contiguous(dy, "dy");
    if (dy.ndim() != 4)
        fail_value("dy must be 4-D " + layout_dims(g.channels_last) + ", got shape " +
                   shape_str(dy));
    const int64_t n = dy.shape(0), c = dy.shape(g.channels_last ? 3 : 1);
    if (n != g.batch || c != g.channels)
        fail_value("dy has shape " + shape_str(dy) + " but x_shape has batch " +
                   std::to_string(g.batch) + " and " + std::to_string(g.channels) + " channels");
    g.out_h = dy.shape(g.channels_last ? 1 : 2);
    g.out_w = dy.shape(g.channels_last ? 2 : 3);
    if (!same_type(indices.dtype(), py::dtype::of<int64_t>()))
        fail_type("indices must be int64, got dtype " + std::string(py::str(indices.dtype())));
    same_shape(indices, dy, "indices", "dy");
    c_contiguous(indices, "indices");
    // Every index must lie in its (H, W) plane: the scatter writes where they point.
    const int64_t plane = g.in_h * g.in_w;
    const int64_t* ip = ptr<int64_t>(indices);
    for (int64_t i = 0; i < indices.size(); ++i)
        if (ip[i] < 0 || ip[i] >= plane)
            fail_value("indices[flat " + std::to_string(i) + "] = " + std::to_string(ip[i]) +
                       " is outside the " + std::to_string(g.in_h) + " x " +
                       std::to_string(g.in_w) + " input plane");
    return by_dtype(dy, "dy", [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto dx = empty<T>(input_shape(g));
        T* dxp = dx.mutable_data();
        const T* dyp = ptr<T>(dy);
        {
            py::gil_scoped_release release;
            max_pool2d_backward<T, int64_t>(dxp, dyp, ip, g);
        }
        return dx;
    });
}

py::array py_avg_pool2d(py::array x, py::object kernel, py::object stride, py::object padding,
                        bool ceil_mode, bool count_include_pad, py::object divisor_override,
                        const std::string& layout) {
    Pool2d g;
    read_input(g, x, "x", channels_last_of(layout));
    read_window(g, kernel, stride, padding);
    const int64_t divisor = divisor_of(divisor_override);
    plan_or_fail(g, ceil_mode, "avg_pool2d");
    return by_dtype(x, "x", [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto y = empty<T>(output_shape(g));
        T* yp = y.mutable_data();
        const T* xp = ptr<T>(x);
        {
            py::gil_scoped_release release;
            avg_pool2d_forward<T>(yp, xp, g, count_include_pad, divisor);
        }
        return y;
    });
}

py::array py_avg_pool2d_backward(py::array dy, py::object x_shape, py::object kernel,
                                 py::object stride, py::object padding, bool ceil_mode,
                                 bool count_include_pad, py::object divisor_override,
                                 const std::string& layout) {
    Pool2d g;
    read_x_shape(g, x_shape, channels_last_of(layout));
    read_window(g, kernel, stride, padding);
    const int64_t divisor = divisor_of(divisor_override);
    plan_or_fail(g, ceil_mode, "avg_pool2d_backward");
    check_dy(dy, g);
    return by_dtype(dy, "dy", [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto dx = empty<T>(input_shape(g));
        T* dxp = dx.mutable_data();
        const T* dyp = ptr<T>(dy);
        {
            py::gil_scoped_release release;
            avg_pool2d_backward<T>(dxp, dyp, g, count_include_pad, divisor);
        }
        return dx;
    });
}

void read_output_size(Pool2d& g, const py::handle& output_size) {
    const auto o = int_tuple(output_size, 2, "output_size");
    for (int64_t v : o)
        if (v < 1 || v >= kPoolMax)
            fail_value("output_size must hold sizes in [1, 2**31), got (" + std::to_string(o[0]) +
                       ", " + std::to_string(o[1]) + ")");
    g.out_h = o[0], g.out_w = o[1];
}

void check_plane(const Pool2d& g, const char* op) {
    if (g.in_h < 1 || g.in_w < 1 || g.in_h >= kPoolMax || g.in_w >= kPoolMax)
        fail_value(std::string(op) + ": input height and width must be in [1, 2**31), got " +
                   std::to_string(g.in_h) + " x " + std::to_string(g.in_w));
}

py::array py_adaptive_avg_pool2d(py::array x, py::object output_size, const std::string& layout) {
    Pool2d g;
    read_input(g, x, "x", channels_last_of(layout));
    read_output_size(g, output_size);
    check_plane(g, "adaptive_avg_pool2d");
    return by_dtype(x, "x", [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto y = empty<T>(output_shape(g));
        T* yp = y.mutable_data();
        const T* xp = ptr<T>(x);
        {
            py::gil_scoped_release release;
            adaptive_avg_pool2d_forward<T>(yp, xp, g);
        }
        return y;
    });
}

py::array py_adaptive_avg_pool2d_backward(py::array dy, py::object x_shape,
                                          const std::string& layout) {
    Pool2d g;
    read_x_shape(g, x_shape, channels_last_of(layout));
    check_plane(g, "adaptive_avg_pool2d_backward");
    float_kind(dy, "dy");
    if (dy.ndim() != 4)
        fail_value("dy must be 4-D " + layout_dims(g.channels_last) + ", got shape " +
                   shape_str(dy));
    // The output size is dy's; it must be a valid adaptive output size.
    const py::tuple size = g.channels_last ? py::make_tuple(dy.shape(1), dy.shape(2))
                                           : py::make_tuple(dy.shape(2), dy.shape(3));
    read_output_size(g, size);
    check_dy(dy, g);
    return by_dtype(dy, "dy", [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto dx = empty<T>(input_shape(g));
        T* dxp = dx.mutable_data();
        const T* dyp = ptr<T>(dy);
        {
            py::gil_scoped_release release;
            adaptive_avg_pool2d_backward<T>(dxp, dyp, g);
        }
        return dx;
    });
}

}  // namespace

void bind_pooling(py::module_& m) {
    m.def("max_pool2d", &py_max_pool2d, py::arg("x"), py::arg("kernel"), py::arg("stride"),
          py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"), py::arg("layout"));
    m.def("max_pool2d_backward", &py_max_pool2d_backward, py::arg("dy"), py::arg("indices"),
          py::arg("x_shape"), py::arg("layout"));
    m.def("avg_pool2d", &py_avg_pool2d, py::arg("x"), py::arg("kernel"), py::arg("stride"),
          py::arg("padding"), py::arg("ceil_mode"), py::arg("count_include_pad"),
          py::arg("divisor_override"), py::arg("layout"));
    m.def("avg_pool2d_backward", &py_avg_pool2d_backward, py::arg("dy"), py::arg("x_shape"),
          py::arg("kernel"), py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
          py::arg("count_include_pad"), py::arg("divisor_override"), py::arg("layout"));
    m.def("adaptive_avg_pool2d", &py_adaptive_avg_pool2d, py::arg("x"), py::arg("output_size"),
          py::arg("layout"));
    m.def("adaptive_avg_pool2d_backward", &py_adaptive_avg_pool2d_backward, py::arg("dy"),
          py::arg("x_shape"), py::arg("layout"));
}

}  // namespace lamina::python
