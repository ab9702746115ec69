// Bindings of the convolution: conv2d (y = act(conv(x, w) + b)) and conv2d_backward (dx, and dW,
// db accumulated in place). The geometry is checked here once more, so a direct call of _native
// can never index outside an array.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "kernels/conv.h"
#include "python/checks.h"

namespace lamina::python {

namespace {

std::string str(int64_t v) { return std::to_string(v); }

// Checks x, w (rank 4, same dtype, contiguous) and the geometry; returns the shape.
ConvShape check_conv(const py::array& x, const py::array& w, int64_t stride_h, int64_t stride_w,
                     int64_t pad_top, int64_t pad_bottom, int64_t pad_left, int64_t pad_right,
                     int64_t dilation_h, int64_t dilation_w, int64_t groups,
                     const std::string& layout) {
    float_kind(w, "weight");
    ndim_is(x, 4, "x");
    ndim_is(w, 4, "weight");
    same_dtype(x, w, "x", "weight");
    c_contiguous(x, "x");
    c_contiguous(w, "weight");
    if (layout != "channels_first" && layout != "channels_last")
        fail_value("conv2d: layout must be 'channels_first' or 'channels_last', got '" + layout + "'");
    const bool cl = layout == "channels_last";
    if (stride_h < 1 || stride_w < 1 || dilation_h < 1 || dilation_w < 1 || groups < 1)
        fail_value("conv2d: stride, dilation and groups must be >= 1, got stride (" + str(stride_h) +
                   ", " + str(stride_w) + "), dilation (" + str(dilation_h) + ", " +
                   str(dilation_w) + "), groups " + str(groups));
    if (pad_top < 0 || pad_bottom < 0 || pad_left < 0 || pad_right < 0)
        fail_value("conv2d: padding must be >= 0");
    ConvShape s{};
    s.N = x.shape(0);
    s.C = cl ? x.shape(3) : x.shape(1);
    s.H = cl ? x.shape(1) : x.shape(2);
    s.W = cl ? x.shape(2) : x.shape(3);
    s.Cout = cl ? w.shape(3) : w.shape(0);
    const int64_t wc = cl ? w.shape(2) : w.shape(1);
    s.KH = cl ? w.shape(0) : w.shape(2);
    s.KW = cl ? w.shape(1) : w.shape(3);
    s.stride_h = stride_h, s.stride_w = stride_w;
    s.pad_top = pad_top, s.pad_bottom = pad_bottom, s.pad_left = pad_left, s.pad_right = pad_right;
    s.dilation_h = dilation_h, s.dilation_w = dilation_w;
    s.groups = groups;
    s.channels_last = cl;
    if (s.KH < 1 || s.KW < 1) fail_value("conv2d: kernel size must be >= 1, got weight " + shape_str(w));
    if (s.C % groups != 0 || s.Cout % groups != 0)
        fail_value("conv2d: in_channels " + str(s.C) + " and out_channels " + str(s.Cout) +
                   " must be divisible by groups " + str(groups));
    if (wc != s.C / groups)
        fail_value("conv2d: weight " + shape_str(w) + " has " + str(wc) +
                   " input channels per group, expected " + str(s.C / groups) + " for x " +
                   shape_str(x) + " and groups " + str(groups));
    // Each padded side and dilated kernel within 2**31 positions: far beyond any real image,
    // and small enough that no size below overflows.
    const int64_t limit = int64_t(1) << 31;
    if (pad_top > limit || pad_bottom > limit || pad_left > limit || pad_right > limit ||
        stride_h > limit || stride_w > limit || s.H + pad_top + pad_bottom > limit ||
        s.W + pad_left + pad_right > limit ||
        dilation_h > limit / s.KH || dilation_w > limit / s.KW)
        fail_value("conv2d: a padded side, stride or dilated kernel beyond 2**31 positions");
    if (s.H + pad_top + pad_bottom - dilation_h * (s.KH - 1) - 1 < 0 ||
        s.W + pad_left + pad_right - dilation_w * (s.KW - 1) - 1 < 0)
        fail_value("conv2d: kernel larger than the padded input: input " + str(s.H) + "x" +
                   str(s.W) + " padded to " + str(s.H + pad_top + pad_bottom) + "x" +
                   str(s.W + pad_left + pad_right) + ", dilated kernel " +
                   str(dilation_h * (s.KH - 1) + 1) + "x" + str(dilation_w * (s.KW - 1) + 1));
    return s;
}

std::vector<py::ssize_t> output_shape(const ConvShape& s) {
    if (s.channels_last) return {s.N, s.Ho(), s.Wo(), s.Cout};
    return {s.N, s.Cout, s.Ho(), s.Wo()};
}

py::array py_conv2d(py::array x, py::array w, py::object b, int64_t stride_h, int64_t stride_w,
                    int64_t pad_top, int64_t pad_bottom, int64_t pad_left, int64_t pad_right,
                    int64_t dilation_h, int64_t dilation_w, int64_t groups,
                    const std::string& layout, py::object activation, double negative_slope,
                    py::object scale, py::object shift) {
    const Activation act = parse_activation(activation);
    check_negative_slope(act, negative_slope);
    const ConvShape s = check_conv(x, w, stride_h, stride_w, pad_top, pad_bottom, pad_left,
                                   pad_right, dilation_h, dilation_w, groups, layout);
    py::array barr;
    if (!b.is_none()) {
        barr = py::array::ensure(b);
        if (!barr) fail_type("bias must be an array");
        same_dtype(barr, w, "bias", "weight");
        ndim_is(barr, 1, "bias");
        dim_is(barr, 0, s.Cout, "bias", "out_channels of weight");
        c_contiguous(barr, "bias");
    }
    const auto [sarr, tarr] = channel_affine(scale, shift, w, "weight", s.Cout);
    return by_dtype(w, "weight", [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto y = empty<T>(output_shape(s));
        T* yp = y.mutable_data();
        const T* bp = b.is_none() ? nullptr : ptr<T>(barr);
        const T *xp = ptr<T>(x), *wp = ptr<T>(w);
        const T* sp = scale.is_none() ? nullptr : ptr<T>(sarr);
        const T* tp = scale.is_none() ? nullptr : ptr<T>(tarr);
        py::gil_scoped_release release;
        conv2d_forward<T>(yp, xp, wp, bp, s, act, negative_slope, sp, tp);
        return y;
    });
}

// dW += and db += in place (db None: skipped); returns dx (or None).
py::object py_conv2d_backward(py::array dy, py::array x, py::array w, py::object dW_obj,
                              py::object db, bool need_dx, int64_t stride_h, int64_t stride_w,
                              int64_t pad_top, int64_t pad_bottom, int64_t pad_left,
                              int64_t pad_right, int64_t dilation_h, int64_t dilation_w,
                              int64_t groups, const std::string& layout) {
    const ConvShape s = check_conv(x, w, stride_h, stride_w, pad_top, pad_bottom, pad_left,
                                   pad_right, dilation_h, dilation_w, groups, layout);
    ndim_is(dy, 4, "dy");
    same_dtype(dy, w, "dy", "weight");
    const std::vector<py::ssize_t> ys = output_shape(s);
    for (int a = 0; a < 4; ++a) dim_is(dy, a, ys[a], "dy", "the convolution's output shape");
    c_contiguous(dy, "dy");
    py::array dW = inplace_array(dW_obj, "dW");
    same_dtype(dW, w, "dW", "weight");
    same_shape(dW, w, "dW", "weight");
    c_contiguous(dW, "dW");
    writable(dW, "dW");
    for (auto [arr, name] : {std::pair{&dy, "dy"}, {&x, "x"}, {&w, "weight"}})
        no_overlap(dW, *arr, "dW", name);
    py::array db_arr;
    if (!db.is_none()) {
        db_arr = inplace_array(db, "db");
        same_dtype(db_arr, w, "db", "weight");
        ndim_is(db_arr, 1, "db");
        dim_is(db_arr, 0, s.Cout, "db", "out_channels of weight");
        c_contiguous(db_arr, "db");
        writable(db_arr, "db");
        for (auto [arr, name] : {std::pair{&dy, "dy"}, {&x, "x"}, {&w, "weight"}, {&dW, "dW"}})
            no_overlap(db_arr, *arr, "db", name);
    }
    return by_dtype(w, "weight", [&](auto tag) -> py::object {
        using T = decltype(tag);
        py::object result = py::none();
        T* dxp = nullptr;
        if (need_dx) {
            auto dx = empty_like<T>(x);
            dxp = dx.mutable_data();
            result = dx;
        }
        T* dWp = mut<T>(dW);
        T* dbp = db.is_none() ? nullptr : mut<T>(db_arr);
        const T *dyp = ptr<T>(dy), *xp = ptr<T>(x), *wp = ptr<T>(w);
        py::gil_scoped_release release;
        conv2d_backward<T>(dxp, dWp, dbp, dyp, xp, wp, s);
        return result;
    });
}

}  // namespace

void bind_conv(py::module_& m) {
    m.def("conv2d", &py_conv2d, py::arg("x"), py::arg("weight"), py::arg("bias"),
          py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_top"), py::arg("pad_bottom"),
          py::arg("pad_left"), py::arg("pad_right"), py::arg("dilation_h"), py::arg("dilation_w"),
          py::arg("groups"), py::arg("layout"), py::arg("activation"),
          py::arg("negative_slope") = 0.01, py::arg("scale") = py::none(),
          py::arg("shift") = py::none());
    m.def("conv2d_backward", &py_conv2d_backward, py::arg("dy"), py::arg("x"), py::arg("weight"),
          py::arg("dW"), py::arg("db"), py::arg("need_dx"), py::arg("stride_h"),
          py::arg("stride_w"), py::arg("pad_top"), py::arg("pad_bottom"), py::arg("pad_left"),
          py::arg("pad_right"), py::arg("dilation_h"), py::arg("dilation_w"), py::arg("groups"),
          py::arg("layout"));
}

}  // namespace lamina::python
