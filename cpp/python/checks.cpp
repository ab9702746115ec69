// Argument checks shared by every binding, and the name tables of activations and losses.
#include "python/checks.h"

#include <cmath>
#include <cstring>
#include <tuple>

namespace lamina::python {

void fail_type(const std::string& msg) { throw py::type_error(msg); }
void fail_value(const std::string& msg) { throw py::value_error(msg); }

std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

bool same_type(const py::dtype& a, const py::dtype& b) { return a.is(b) || a.equal(b); }

Kind float_kind(const py::array& a, const char* name) {
    if (same_type(a.dtype(), py::dtype::of<float>())) return Kind::f32;
    if (same_type(a.dtype(), py::dtype::of<double>())) return Kind::f64;
    fail_type(std::string(name) + " must be float32 or float64, got dtype " +
              std::string(py::str(a.dtype())));
}

void same_dtype(const py::array& a, const py::array& ref, const char* name, const char* ref_name) {
    if (!same_type(a.dtype(), ref.dtype()))
        fail_type(std::string(name) + " has dtype " + std::string(py::str(a.dtype())) + " but " +
                  ref_name + " has dtype " + std::string(py::str(ref.dtype())) +
                  "; cast one of them");
}

void ndim_is(const py::array& a, py::ssize_t nd, const char* name) {
    if (a.ndim() != nd)
        fail_value(std::string(name) + " must be " + std::to_string(nd) + "-D, got shape " +
                   shape_str(a));
}

void dim_is(const py::array& a, py::ssize_t axis, py::ssize_t want, const char* name,
            const char* what) {
    if (a.shape(axis) != want)
        fail_value(std::string(name) + " has shape " + shape_str(a) + " but its axis " +
                   std::to_string(axis) + " must be " + std::to_string(want) + " (" + what + ")");
}

void same_shape(const py::array& a, const py::array& ref, const char* name, const char* ref_name) {
    bool same = a.ndim() == ref.ndim();
    for (py::ssize_t d = 0; same && d < a.ndim(); ++d) same = a.shape(d) == ref.shape(d);
    if (!same)
        fail_value(std::string(name) + " has shape " + shape_str(a) + " but " + ref_name +
                   " has shape " + shape_str(ref));
}

// Also aligned: an array carved out of a byte buffer at an odd offset is C-contiguous but
// misaligned (undefined behaviour to read through a typed pointer).
void c_contiguous(const py::array& a, const char* name) {
    if (!(a.flags() & py::array::c_style))
        fail_value(std::string(name) + " must be C-contiguous (use np.ascontiguousarray)");
    if (a.itemsize() > 0 && reinterpret_cast<std::uintptr_t>(a.data()) % a.itemsize())
        fail_value(std::string(name) + " is not aligned to its element size (pass a copy)");
}

void writable(const py::array& a, const char* name) {
    if (!a.writeable()) fail_value(std::string(name) + " is read-only but is written in place");
}

py::array inplace_array(const py::object& obj, const char* name) {
    if (!py::isinstance<py::array>(obj))
        fail_type(std::string(name) + " must be a NumPy array (it is updated in place)");
    return py::reinterpret_borrow<py::array>(obj);
}

std::pair<std::uintptr_t, std::uintptr_t> extent(const py::array& a) {
    auto base = reinterpret_cast<std::uintptr_t>(a.data());
    if (a.size() == 0) return {base, base};
    std::intptr_t lo = 0, hi = 0;
    for (py::ssize_t d = 0; d < a.ndim(); ++d) {
        const std::intptr_t step = a.strides(d) * (a.shape(d) - 1);
        (step < 0 ? lo : hi) += step;
    }
    return {base + lo, base + hi + a.itemsize()};
}

void no_overlap(const py::array& out, const py::array& in, const char* out_name,
                const char* in_name) {
    auto [a0, a1] = extent(out);
    auto [b0, b1] = extent(in);
    if (a0 < b1 && b0 < a1)
        fail_value(std::string(out_name) + " shares memory with " + in_name +
                   "; pass a separate output array");
}

std::pair<int64_t, int64_t> element_strides(const py::array& a, const char* name) {
    const auto item = a.itemsize();
    if (a.strides(0) % item || a.strides(1) % item ||
        reinterpret_cast<std::uintptr_t>(a.data()) % item)
        fail_value(std::string(name) + " is not aligned to its element size");
    return {a.strides(0) / item, a.strides(1) / item};
}

void check_labels(const py::array& labels, int64_t rows, int64_t classes, const char* rows_are) {
    ndim_is(labels, 1, "labels");
    dim_is(labels, 0, rows, "labels", rows_are);
    const int64_t* lp = static_cast<const int64_t*>(labels.data());
    for (int64_t r = 0; r < rows; ++r)
        if (lp[r] < 0 || lp[r] >= classes)
            fail_value("labels[" + std::to_string(r) + "] = " + std::to_string(lp[r]) +
                       " is out of range for " + std::to_string(classes) + " classes");
}

void finite_hyper(double value, const char* name) {
    if (!std::isfinite(value)) fail_value(std::string(name) + " must be finite");
}

std::pair<py::array, py::array> channel_affine(const py::object& scale, const py::object& shift,
                                               const py::array& ref, const char* ref_name,
                                               int64_t channels) {
    if (scale.is_none() != shift.is_none())
        fail_value("scale and shift must be given together (or both None)");
    if (scale.is_none()) return {py::array(), py::array()};
    std::pair<py::array, py::array> out;
    for (auto [obj, arr, name] : {std::tuple{&scale, &out.first, "scale"},
                                  std::tuple{&shift, &out.second, "shift"}}) {
        *arr = py::array::ensure(*obj);
        if (!*arr) fail_type(std::string(name) + " must be an array");
        same_dtype(*arr, ref, name, ref_name);
        ndim_is(*arr, 1, name);
        dim_is(*arr, 0, channels, name, "output channels");
        c_contiguous(*arr, name);
    }
    return out;
}

void check_dropout_p(double p, const std::string& name) {
    if (!(p >= 0.0 && p < 1.0))  // NaN fails both
        fail_value(name + " must be in [0, 1), got " + std::to_string(p));
}

void check_negative_slope(Activation act, double negative_slope) {
    if (act == Activation::leaky_relu && !std::isfinite(negative_slope))
        fail_value("negative_slope must be finite, got " + std::to_string(negative_slope));
}

uint64_t uint64_arg(const py::handle& value, const char* name) {
    // A Python int, or an integer NumPy scalar (through __index__); never a bool or a float.
    if (PyBool_Check(value.ptr()) || PyFloat_Check(value.ptr()) || !PyIndex_Check(value.ptr()))
        fail_type(std::string(name) + " must be an int, got " +
                  std::string(py::str(py::type::handle_of(value).attr("__name__"))));
    py::object index = py::reinterpret_borrow<py::object>(value);
    if (!PyLong_Check(value.ptr())) {
        index = py::reinterpret_steal<py::object>(PyNumber_Index(value.ptr()));
        if (!index) throw py::error_already_set();
    }
    const unsigned long long v = PyLong_AsUnsignedLongLong(index.ptr());
    if (v == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
        PyErr_Clear();
        fail_value(std::string(name) + " must be in [0, 2**64), got " +
                   std::string(py::str(index)));
    }
    return static_cast<uint64_t>(v);
}

// ---- name tables -----------------------------------------------------------------------------

namespace {

struct ActivationEntry {
    const char* name;
    ActivationKind kind;
};

// Every activation name the bindings accept, in the order error messages list them.
constexpr ActivationEntry kActivations[] = {
    {"relu", {Activation::relu, Normalization::none}},
    {"sigmoid", {Activation::sigmoid, Normalization::none}},
    {"tanh", {Activation::tanh, Normalization::none}},
    {"leaky_relu", {Activation::leaky_relu, Normalization::none}},
    {"gelu", {Activation::gelu, Normalization::none}},
    {"gelu_tanh", {Activation::gelu_tanh, Normalization::none}},
    {"softmax", {Activation::none, Normalization::softmax}},
    {"log_softmax", {Activation::none, Normalization::log_softmax}},
};

struct LossEntry {
    const char* name;
    LossKind kind;
};

constexpr LossEntry kLosses[] = {
    {"cross_entropy", LossKind::cross_entropy},
    {"binary_cross_entropy", LossKind::binary_cross_entropy},
    {"mse", LossKind::mse},
    {"probability_cross_entropy", LossKind::probability_cross_entropy},
    {"probability_binary_cross_entropy", LossKind::probability_binary_cross_entropy},
    {"nll", LossKind::nll},
};

const ActivationEntry* find_activation(const std::string& name) {
    for (const ActivationEntry& e : kActivations)
        if (name == e.name) return &e;
    return nullptr;
}

// "'relu', 'sigmoid' or 'tanh'": the names that `accept` admits.
template <typename Accept>
std::string activation_list(Accept accept) {
    std::vector<std::string> names;
    for (const ActivationEntry& e : kActivations)
        if (accept(e.kind)) names.push_back(std::string("'") + e.name + "'");
    std::string s;
    for (size_t i = 0; i < names.size(); ++i)
        s += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
    return s;
}

bool is_elementwise(const ActivationKind& k) { return k.normalization == Normalization::none; }

}  // namespace

Activation parse_activation(const py::object& name) {
    if (name.is_none()) return Activation::none;
    const std::string s = py::str(name);
    if (s == "none" || s == "linear") return Activation::none;
    const ActivationEntry* e = find_activation(s);
    if (!e || !is_elementwise(e->kind))
        fail_value("activation must be None, " + activation_list(is_elementwise) + ", got '" + s +
                   "'");
    return e->kind.elementwise;
}

ActivationKind parse_activation_kind(const std::string& name) {
    const ActivationEntry* e = find_activation(name);
    if (!e)
        fail_value("unknown activation '" + name + "' (known: " +
                   activation_list([](const ActivationKind&) { return true; }) + ")");
    return e->kind;
}

const char* activation_name(Activation act) {
    for (const ActivationEntry& e : kActivations)
        if (is_elementwise(e.kind) && e.kind.elementwise == act) return e.name;
    return "none";
}

const char* normalization_name(Normalization norm) {
    for (const ActivationEntry& e : kActivations)
        if (e.kind.normalization == norm && norm != Normalization::none) return e.name;
    return "none";
}

Normalization parse_normalization(const py::object& name) {
    if (name.is_none()) return Normalization::none;
    const std::string s = py::str(name);
    const ActivationEntry* e = find_activation(s);
    if (!e || is_elementwise(e->kind))
        fail_value("normalize must be None, " +
                   activation_list([](const ActivationKind& k) { return !is_elementwise(k); }) +
                   ", got '" + s + "'");
    return e->kind.normalization;
}

LossKind parse_loss(const std::string& name) {
    for (const LossEntry& e : kLosses)
        if (name == e.name) return e.kind;
    std::string known;
    for (const LossEntry& e : kLosses) known += std::string(known.empty() ? "" : ", ") + e.name;
    fail_value("unknown loss '" + name + "' (known: " + known + ")");
}

const char* loss_name(LossKind loss) {
    for (const LossEntry& e : kLosses)
        if (e.kind == loss) return e.name;
    return "?";
}

}  // namespace lamina::python
