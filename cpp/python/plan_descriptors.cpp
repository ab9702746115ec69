// Reading the plan's step descriptors (plan_descriptors.h): the table of kinds with the arrays and
// attributes each takes, and the checks of every attribute value.
#include "python/plan_descriptors.h"

#include <cmath>
#include <string>
#include <vector>

namespace lamina::python {

bool is_int(const py::handle& v) { return PyLong_Check(v.ptr()) && !PyBool_Check(v.ptr()); }

// The value of an int (checked by the caller) in int64's range, else a ValueError.
int64_t int64_value(const py::handle& v, const std::string& what) {
    int overflow = 0;
    const long long value = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
    if (overflow) fail_value(what + " is out of int64's range");
    if (value == -1 && PyErr_Occurred()) throw py::error_already_set();
    return value;
}

namespace {

struct KindEntry {
    const char* name;
    StepKind kind;
    std::vector<const char*> arrays;  // the array names it takes
    std::vector<const char*> attrs;   // the attribute names it takes
};

const std::vector<KindEntry>& step_kinds() {
    static const std::vector<KindEntry> kinds = {
        {"dense", StepKind::dense, {"weight", "bias", "weight_grad", "bias_grad"},
         {"activation", "negative_slope", "normalize"}},
        {"conv2d", StepKind::conv2d, {"weight", "bias", "weight_grad", "bias_grad"},
         {"stride_h", "stride_w", "pad_top", "pad_bottom", "pad_left", "pad_right", "dilation_h",
          "dilation_w", "groups", "layout", "activation", "negative_slope"}},
        {"activation", StepKind::activation, {}, {"activation", "negative_slope", "normalize"}},
        {"dropout", StepKind::dropout, {}, {"p"}},
        {"flatten", StepKind::flatten, {}, {"start_dim", "end_dim"}},
        {"max_pool2d", StepKind::max_pool2d, {},
         {"kernel_h", "kernel_w", "stride_h", "stride_w", "pad_top", "pad_bottom", "pad_left",
          "pad_right", "dilation_h", "dilation_w", "ceil_mode", "layout"}},
        {"avg_pool2d", StepKind::avg_pool2d, {},
         {"kernel_h", "kernel_w", "stride_h", "stride_w", "pad_top", "pad_bottom", "pad_left",
          "pad_right", "ceil_mode", "count_include_pad", "divisor_override", "layout"}},
        {"adaptive_avg_pool2d", StepKind::adaptive_avg_pool2d, {}, {"out_h", "out_w", "layout"}},
        {"batch_norm", StepKind::batch_norm,
         {"weight", "bias", "weight_grad", "bias_grad", "running_mean", "running_var",
          "num_batches_tracked"},
         {"axis", "eps", "momentum", "unbiased", "stats", "activation"}},
        {"layer_norm", StepKind::layer_norm, {"weight", "bias", "weight_grad", "bias_grad"},
         {"eps", "normalized_dims"}},
    };
    return kinds;
}

std::string names_of(const std::vector<const char*>& names) {
    std::string s;
    for (const char* n : names) s += std::string(s.empty() ? "" : ", ") + n;
    return s.empty() ? "none" : s;
}

bool is_number(const py::handle& v) { return is_int(v) || PyFloat_Check(v.ptr()); }


// The value of a number (checked by the caller) as a double, else a ValueError (an int past
// double's range).
double double_value(const py::handle& v, const std::string& what) {
    const double value = PyFloat_AsDouble(v.ptr());
    if (value == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        fail_value(what + " is out of double's range");
    }
    return value;
}

template <typename Attr, typename Integer>
void read_pool_attrs(StepSpec& s, const py::dict& attrs, Attr attr, Integer integer);
template <typename Attr, typename Number, typename Integer>
void read_norm_attrs(StepSpec& s, const py::dict& attrs, Attr attr, Number number,
                     Integer integer);

// A flag attribute: a Python bool or a NumPy one (fallback when absent or None).
bool flag_value(const py::object& v, const std::string& what, bool fallback) {
    if (v.is_none()) return fallback;
    if (!PyBool_Check(v.ptr()) && std::string(Py_TYPE(v.ptr())->tp_name) != "numpy.bool" &&
        std::string(Py_TYPE(v.ptr())->tp_name) != "numpy.bool_")
        fail_type(what + " must be True or False");
    return PyObject_IsTrue(v.ptr()) == 1;
}



// A pooling step's attributes: kernel and stride required (out_h, out_w for adaptive), padding 0,
// dilation 1, flags False (count_include_pad True), divisor_override None, layout
// "channels_first" by default.
template <typename Attr, typename Integer>
void read_pool_attrs(StepSpec& s, const py::dict& attrs, Attr attr, Integer integer) {
    auto required = [&](const char* key) {
        if (!attrs.contains(key)) fail_value(std::string("needs attrs['") + key + "']");
        return integer(key, 0);
    };
    auto flag = [&](const char* key, bool fallback) {
        return flag_value(attr(key), s.name + " attrs['" + key + "']", fallback);
    };
    const py::object layout = attr("layout");
    if (!layout.is_none() && !py::isinstance<py::str>(layout))
        fail_type(s.name + " attrs['layout'] must be a string");
    const std::string name = layout.is_none() ? "channels_first" : std::string(py::str(layout));
    if (name != "channels_first" && name != "channels_last")
        fail_value("attrs['layout'] must be 'channels_first' or 'channels_last', got '" + name +
                   "'");
    s.pool.channels_last = name == "channels_last";
    if (s.kind == StepKind::adaptive_avg_pool2d) {
        s.pool.out_h = required("out_h");
        s.pool.out_w = required("out_w");
        return;
    }
    s.pool.kernel_h = required("kernel_h");
    s.pool.kernel_w = required("kernel_w");
    s.pool.stride_h = required("stride_h");
    s.pool.stride_w = required("stride_w");
    s.pool.pad_top = integer("pad_top", 0);
    s.pool.pad_bottom = integer("pad_bottom", 0);
    s.pool.pad_left = integer("pad_left", 0);
    s.pool.pad_right = integer("pad_right", 0);
    s.pool.dilation_h = integer("dilation_h", 1);
    s.pool.dilation_w = integer("dilation_w", 1);
    s.ceil_mode = flag("ceil_mode", false);
    if (s.kind == StepKind::avg_pool2d) {
        s.count_include_pad = flag("count_include_pad", true);
        s.divisor_override = integer("divisor_override", 0);
        if (attrs.contains("divisor_override") && !attr("divisor_override").is_none() &&
            s.divisor_override < 1)
            fail_value("attrs['divisor_override'] must be None or >= 1, got " +
                       std::to_string(s.divisor_override));
    }
}

// A normalization step's attributes. batch_norm: axis (the channel axis of a sample, negative
// from the end; default 0), eps (> 0; 1e-5), momentum (in [0, 1], or None for a cumulative
// average; 0.1 when absent), unbiased (True), stats ("batch", "batch_always" or "running";
// "batch"), activation (None or "relu"). layer_norm: eps (1e-5), normalized_dims (>= 1; 1).
template <typename Attr, typename Number, typename Integer>
void read_norm_attrs(StepSpec& s, const py::dict& attrs, Attr attr, Number number,
                     Integer integer) {
    s.eps = number("eps", 1e-5);
    if (!(s.eps > 0.0) || !std::isfinite(s.eps))
        fail_value("attrs['eps'] must be > 0 and finite, got " + std::to_string(s.eps));
    if (s.kind == StepKind::layer_norm) {
        s.normalized_dims = integer("normalized_dims", 1);
        return;
    }
    s.axis = integer("axis", 0);
    // Absent: PyTorch's default 0.1; None: the cumulative average (PyTorch's momentum=None).
    s.momentum = attrs.contains("momentum") ? number("momentum", std::nan("")) : 0.1;
    if (!std::isnan(s.momentum) && !(s.momentum >= 0.0 && s.momentum <= 1.0))
        fail_value("attrs['momentum'] must be in [0, 1] or None, got " +
                   std::to_string(s.momentum));
    s.unbiased = flag_value(attr("unbiased"), s.name + " attrs['unbiased']", true);
    const py::object stats = attr("stats");
    if (!stats.is_none() && !py::isinstance<py::str>(stats))
        fail_type(s.name + " attrs['stats'] must be a string");
    const std::string name = stats.is_none() ? "batch" : std::string(py::str(stats));
    if (name == "batch") s.stats = BatchStats::batch;
    else if (name == "batch_always") s.stats = BatchStats::batch_always;
    else if (name == "running") s.stats = BatchStats::running;
    else
        fail_value("attrs['stats'] must be 'batch', 'batch_always' or 'running', got '" + name +
                   "'");
    const py::object act = attr("activation");
    if (!act.is_none() && !py::isinstance<py::str>(act))
        fail_type(s.name + " attrs['activation'] must be None or a string");
    s.activation = parse_activation(act);
    if (s.activation != Activation::none && s.activation != Activation::relu)
        fail_value("attrs['activation'] must be None or 'relu', got '" +
                   std::string(py::str(act)) + "'");
}

}  // namespace

StepSpec read_step(const py::handle& obj, size_t i) {
    const std::string where = "plan step " + std::to_string(i);
    if (!py::isinstance<py::dict>(obj))
        fail_type(where + " must be a dict {'kind': ..., 'arrays': {...}, 'attrs': {...}}, got " +
                  std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
    const py::dict d = py::reinterpret_borrow<py::dict>(obj);
    for (auto item : d) {
        const std::string key = py::str(item.first);
        if (key != "kind" && key != "arrays" && key != "attrs")
            fail_value(where + " has an unknown key '" + key + "' (known: kind, arrays, attrs)");
    }
    if (!d.contains("kind")) fail_value(where + " has no kind");
    if (!py::isinstance<py::str>(d["kind"])) fail_type(where + " kind must be a string");
    const std::string kind = py::str(d["kind"]);
    const KindEntry* entry = nullptr;
    for (const KindEntry& e : step_kinds())
        if (kind == e.name) entry = &e;
    if (!entry) {
        std::vector<const char*> known;
        for (const KindEntry& e : step_kinds()) known.push_back(e.name);
        fail_value(where + ": unknown kind '" + kind + "' (known: " + names_of(known) + ")");
    }
    StepSpec s;
    s.name = where + " (" + kind + ")";
    s.kind = entry->kind;
    s.weight = s.bias = s.weight_grad = s.bias_grad = py::none();
    s.running_mean = s.running_var = s.num_batches_tracked = py::none();

    auto section = [&](const char* key) -> py::dict {
        if (!d.contains(key)) return py::dict();
        if (!py::isinstance<py::dict>(d[key])) fail_type(s.name + " " + key + " must be a dict");
        return py::reinterpret_borrow<py::dict>(d[key]);
    };
    auto check_names = [&](const py::dict& section, const std::vector<const char*>& allowed,
                           const char* what) {
        for (auto item : section) {
            const std::string key = py::str(item.first);
            bool ok = false;
            for (const char* a : allowed) ok = ok || key == a;
            if (!ok)
                fail_value(s.name + " has an unknown " + what + " '" + key + "' (known: " +
                           names_of(allowed) + ")");
        }
    };
    const py::dict arrays = section("arrays"), attrs = section("attrs");
    check_names(arrays, entry->arrays, "array");
    check_names(attrs, entry->attrs, "attr");

    auto attr = [&](const char* key) -> py::object {
        return attrs.contains(key) ? py::object(attrs[key]) : py::object(py::none());
    };
    auto number = [&](const char* key, double fallback) {
        const py::object v = attr(key);
        if (v.is_none()) return fallback;
        // A TypeError names the step here; a ValueError is named by the catch below.
        const std::string what = std::string("attrs['") + key + "']";
        if (!is_number(v)) fail_type(s.name + " " + what + " must be a number");
        return double_value(v, what);
    };
    auto integer = [&](const char* key, int64_t fallback) {
        const py::object v = attr(key);
        if (v.is_none()) return fallback;
        const std::string what = std::string("attrs['") + key + "']";
        if (!is_int(v)) fail_type(s.name + " " + what + " must be an int");
        return int64_value(v, what);
    };
    auto name_or_none = [&](const char* key) {
        const py::object v = attr(key);
        if (!v.is_none() && !py::isinstance<py::str>(v))
            fail_type(s.name + " attrs['" + key + "'] must be None or a string");
        return v;
    };
    try {
        if (s.kind == StepKind::dense || s.kind == StepKind::activation) {
            s.activation = parse_activation(name_or_none("activation"));
            s.normalize = parse_normalization(name_or_none("normalize"));
            s.negative_slope = number("negative_slope", 0.01);
            check_negative_slope(s.activation, s.negative_slope);
        } else if (s.kind == StepKind::conv2d) {
            s.activation = parse_activation(name_or_none("activation"));
            s.negative_slope = number("negative_slope", 0.01);
            check_negative_slope(s.activation, s.negative_slope);
            ConvShape& g = s.conv;
            g.stride_h = integer("stride_h", 1), g.stride_w = integer("stride_w", 1);
            g.pad_top = integer("pad_top", 0), g.pad_bottom = integer("pad_bottom", 0);
            g.pad_left = integer("pad_left", 0), g.pad_right = integer("pad_right", 0);
            g.dilation_h = integer("dilation_h", 1), g.dilation_w = integer("dilation_w", 1);
            g.groups = integer("groups", 1);
            const py::object layout = name_or_none("layout");
            const std::string name = layout.is_none() ? "channels_first" : std::string(py::str(layout));
            if (name != "channels_first" && name != "channels_last")
                fail_value("attrs['layout'] must be 'channels_first' or 'channels_last', got '" +
                           name + "'");
            g.channels_last = name == "channels_last";
        } else if (s.kind == StepKind::dropout) {
            if (!attrs.contains("p")) fail_value("needs attrs['p']");
            s.p = number("p", 0.0);
            check_dropout_p(s.p, "p");
        } else if (s.kind == StepKind::max_pool2d || s.kind == StepKind::avg_pool2d ||
                   s.kind == StepKind::adaptive_avg_pool2d) {
            read_pool_attrs(s, attrs, attr, integer);
        } else if (s.kind == StepKind::batch_norm || s.kind == StepKind::layer_norm) {
            read_norm_attrs(s, attrs, attr, number, integer);
        } else {
            s.start_dim = integer("start_dim", 1);
            s.end_dim = integer("end_dim", -1);
        }
    } catch (const py::value_error& e) {  // name the step in messages from the shared checks
        fail_value(s.name + " " + e.what());
    }
    if (!entry->arrays.empty()) {
        const bool norm = s.kind == StepKind::batch_norm || s.kind == StepKind::layer_norm;
        if (!norm && (!arrays.contains("weight") || arrays["weight"].is_none()))
            fail_value(s.name + " needs arrays['weight']");
        auto get = [&](const char* key) {
            return arrays.contains(key) ? py::object(arrays[key]) : py::object(py::none());
        };
        s.weight = get("weight");
        s.bias = get("bias");
        s.weight_grad = get("weight_grad");
        s.bias_grad = get("bias_grad");
        s.running_mean = get("running_mean");
        s.running_var = get("running_var");
        s.num_batches_tracked = get("num_batches_tracked");
    }
    return s;
}

}  // namespace lamina::python
