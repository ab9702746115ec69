// Bindings of the recurrent layers (rnn, lstm, gru: forward returns the outputs and the workspace,
// backward accumulates the parameter gradients into arrays passed in) and of the embedding. Every
// size, dtype and index is checked here once more, so a direct call of _native can never index
// outside an array.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "kernels/recurrent.h"
#include "python/checks.h"

namespace lamina::python {

namespace {

std::string str(int64_t v) { return std::to_string(v); }

void shape_is(const py::array& a, std::initializer_list<int64_t> want, const std::string& op,
              const char* name, const char* what) {
    bool same = a.ndim() == py::ssize_t(want.size());
    py::ssize_t d = 0;
    for (int64_t w : want) same = same && a.shape(d++) == w;
    if (!same) {
        std::string expected = "(";
        d = 0;
        for (int64_t w : want) expected += (d++ ? ", " : "") + str(w);
        fail_value(op + ": " + name + " has shape " + shape_str(a) + ", expected " + expected +
                   (want.size() == 1 ? ",)" : ")") + " " + what);
    }
}

// "No array" (None was passed): a null handle, not py::array(), which is an empty float64 array.
py::array absent() { return py::reinterpret_borrow<py::array>(py::handle()); }

// One recurrent layer's operands, checked: x (T, N, I), W_ih (G*H, I), W_hh (G*H, H).
struct Layer {
    std::string op;
    int64_t G;
    RecurrentShape s;
    py::array x, w_ih, w_hh;
    std::vector<py::array> inputs;  // every array read, for the overlap checks of the outputs
    std::vector<const char*> names;

    Layer(std::string op_, int64_t gates, py::array x_, py::array w_ih_, py::array w_hh_)
        : op(std::move(op_)), G(gates), x(std::move(x_)), w_ih(std::move(w_ih_)), w_hh(std::move(w_hh_)) {
        float_kind(w_hh, "weight_hh");
        ndim_is(x, 3, "x");
        ndim_is(w_ih, 2, "weight_ih");
        ndim_is(w_hh, 2, "weight_hh");
        same_dtype(x, w_hh, "x", "weight_hh");
        same_dtype(w_ih, w_hh, "weight_ih", "weight_hh");
        s = RecurrentShape{x.shape(0), x.shape(1), x.shape(2), w_hh.shape(1)};
        if (s.H < 1) fail_value(op + ": hidden size must be >= 1, got weight_hh " + shape_str(w_hh));
        if (s.T < 1) fail_value(op + ": zero-length sequence: x has shape " + shape_str(x));
        if (s.N < 1) fail_value(op + ": empty batch: x has shape " + shape_str(x));
        if (s.I < 1) fail_value(op + ": input_size must be >= 1, got x " + shape_str(x));
        shape_is(w_hh, {G * s.H, s.H}, op, "weight_hh", "(gates * hidden_size, hidden_size)");
        shape_is(w_ih, {G * s.H, s.I}, op, "weight_ih", "(gates * hidden_size, input_size)");
        for (auto [a, name] : {std::pair{&x, "x"}, {&w_ih, "weight_ih"}, {&w_hh, "weight_hh"}}) {
            c_contiguous(*a, name);
            read(*a, name);
        }
    }

    void read(const py::array& a, const char* name) {
        inputs.push_back(a);
        names.push_back(name);
    }

    // An optional input (None: absent) of the layer's dtype and the given shape.
    py::array optional(const py::object& obj, const char* name, std::initializer_list<int64_t> shape,
                       const char* what) {
        if (obj.is_none()) return absent();
        py::array a = py::array::ensure(obj);
        if (!a) fail_type(op + ": " + name + " must be an array or None");
        same_dtype(a, w_hh, name, "weight_hh");
        shape_is(a, shape, op, name, what);
        c_contiguous(a, name);
        read(a, name);
        return a;
    }

    py::array state(const py::object& obj, const char* name) {
        return optional(obj, name, {s.N, s.H}, "(batch, hidden_size)");
    }

    py::array bias(const py::object& obj, const char* name) {
        return optional(obj, name, {G * s.H}, "(gates * hidden_size)");
    }

    // A gradient accumulated in place (None: not wanted): never converted, never overlapping an
    // input or an earlier output.
    py::array output(const py::object& obj, const char* name, std::initializer_list<int64_t> shape,
                     std::vector<std::pair<py::array, const char*>>& outputs) {
        if (obj.is_none()) return absent();
        py::array a = inplace_array(obj, name);
        same_dtype(a, w_hh, name, "weight_hh");
        shape_is(a, shape, op, name, "(the parameter's shape)");
        c_contiguous(a, name);
        writable(a, name);
        for (size_t k = 0; k < inputs.size(); ++k) no_overlap(a, inputs[k], name, names[k]);
        for (auto& [other, other_name] : outputs) no_overlap(a, other, name, other_name);
        outputs.emplace_back(a, name);
        return a;
    }
};

template <typename T>
const T* opt_ptr(const py::array& a) { return a ? static_cast<const T*>(a.data()) : nullptr; }
template <typename T>
T* opt_mut(py::array& a) { return a ? static_cast<T*>(a.mutable_data()) : nullptr; }

RnnActivation parse_nonlinearity(const std::string& name) {
    if (name == "tanh") return RnnActivation::tanh;
    if (name == "relu") return RnnActivation::relu;
    fail_value("rnn: nonlinearity must be 'tanh' or 'relu', got '" + name + "'");
}

// The parameter gradients of a backward call: (dW_ih, dW_hh, db_ih, db_hh), each None or an array.
struct Grads {
    py::array dW_ih, dW_hh, db_ih, db_hh;
    Grads(Layer& L, const py::object& dW_ih_, const py::object& dW_hh_, const py::object& db_ih_,
          const py::object& db_hh_) {
        std::vector<std::pair<py::array, const char*>> outs;
        const RecurrentShape& s = L.s;
        dW_ih = L.output(dW_ih_, "dW_ih", {L.G * s.H, s.I}, outs);
        dW_hh = L.output(dW_hh_, "dW_hh", {L.G * s.H, s.H}, outs);
        db_ih = L.output(db_ih_, "db_ih", {L.G * s.H}, outs);
        db_hh = L.output(db_hh_, "db_hh", {L.G * s.H}, outs);
    }
};

// What the three backward bindings share: h0 and dh_n (None: zeros), dy (None: zeros) and y of
// (T, N, H), the forward's workspace of ws_gates * H values per row (0: none), then the parameter
// gradients (checked against every input read before them); and, per dtype, the outputs dx (when
// asked) and dh0 and every pointer the kernel takes.
struct Backward {
    py::array h0, dh_n, dy, y, ws;
    Grads g;
    bool need_dx;

    Backward(Layer& L, const py::object& dy_, const py::object& dh_n_, const py::object& h0_,
             const py::object& y_, const py::object& ws_, int64_t ws_gates, const py::object& dW_ih,
             const py::object& dW_hh, const py::object& db_ih, const py::object& db_hh, bool need)
        : h0(L.state(h0_, "h0")),
          dh_n(L.state(dh_n_, "dh_n")),
          dy(L.optional(dy_, "dy", {L.s.T, L.s.N, L.s.H}, "(time, batch, hidden_size)")),
          y(L.optional(y_, "y", {L.s.T, L.s.N, L.s.H}, "(time, batch, hidden_size)")),
          ws(workspace(L, ws_, ws_gates)),
          g(L, dW_ih, dW_hh, db_ih, db_hh),
          need_dx(need) {}

    static py::array workspace(Layer& L, const py::object& obj, int64_t gates) {
        if (!gates) return absent();
        const std::string what = "(time, batch, " + str(gates) + " * hidden_size)";
        return L.optional(obj, "workspace", {L.s.T, L.s.N, gates * L.s.H}, what.c_str());
    }

    template <typename T>
    struct Call {
        py::array dx, dh0;
        T *dxp, *dh0p, *dwi, *dwh, *dbi, *dbh;
        const T *dyp, *dhnp, *xp, *h0p, *wi, *wh, *yp, *wsp;
    };

    template <typename T>
    Call<T> call(const Layer& L) {
        const RecurrentShape& s = L.s;
        Call<T> c;
        c.dx = empty<T>({need_dx ? s.T : 0, s.N, s.I});
        c.dh0 = empty<T>({s.N, s.H});
        c.dxp = need_dx ? opt_mut<T>(c.dx) : nullptr;
        c.dh0p = opt_mut<T>(c.dh0);
        c.dwi = opt_mut<T>(g.dW_ih), c.dwh = opt_mut<T>(g.dW_hh);
        c.dbi = opt_mut<T>(g.db_ih), c.dbh = opt_mut<T>(g.db_hh);
        c.dyp = opt_ptr<T>(dy), c.dhnp = opt_ptr<T>(dh_n), c.xp = ptr<T>(L.x);
        c.h0p = opt_ptr<T>(h0), c.wi = ptr<T>(L.w_ih), c.wh = ptr<T>(L.w_hh);
        c.yp = ptr<T>(y), c.wsp = opt_ptr<T>(ws);
        return c;
    }

    py::object dx(const py::array& dx) const { return need_dx ? py::object(dx) : py::none(); }
};

// ---- rnn -------------------------------------------------------------------------------------

py::tuple py_rnn(py::array x, py::object h0, py::array w_ih, py::array w_hh, py::object b_ih,
                 py::object b_hh, const std::string& nonlinearity) {
    const RnnActivation act = parse_nonlinearity(nonlinearity);
    Layer L("rnn", 1, x, w_ih, w_hh);
    py::array h0a = L.state(h0, "h0"), bi = L.bias(b_ih, "bias_ih"), bh = L.bias(b_hh, "bias_hh");
    return by_dtype(w_hh, "weight_hh", [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        const RecurrentShape s = L.s;
        auto y = empty<T>({s.T, s.N, s.H});
        auto h_n = empty<T>({s.N, s.H});
        T *yp = y.mutable_data(), *hp = h_n.mutable_data();
        const T *xp = ptr<T>(L.x), *h0p = opt_ptr<T>(h0a), *wi = ptr<T>(L.w_ih), *wh = ptr<T>(L.w_hh);
        const T *bip = opt_ptr<T>(bi), *bhp = opt_ptr<T>(bh);
        {
            py::gil_scoped_release release;
            rnn_forward<T>(yp, hp, xp, h0p, wi, wh, bip, bhp, s, act);
        }
        return py::make_tuple(y, h_n);
    });
}

py::tuple py_rnn_backward(py::object dy, py::object dh_n, py::array x, py::object h0, py::array w_ih,
                          py::array w_hh, py::array y, py::object dW_ih, py::object dW_hh,
                          py::object db_ih, py::object db_hh, bool need_dx,
                          const std::string& nonlinearity) {
    const RnnActivation act = parse_nonlinearity(nonlinearity);
    Layer L("rnn_backward", 1, x, w_ih, w_hh);
    Backward b(L, dy, dh_n, h0, y, py::none(), 0, dW_ih, dW_hh, db_ih, db_hh, need_dx);
    return by_dtype(w_hh, "weight_hh", [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        auto c = b.call<T>(L);
        {
            py::gil_scoped_release release;
            rnn_backward<T>(c.dxp, c.dh0p, c.dwi, c.dwh, c.dbi, c.dbh, c.dyp, c.dhnp, c.xp, c.h0p,
                            c.wi, c.wh, c.yp, L.s, act);
        }
        return py::make_tuple(b.dx(c.dx), c.dh0);
    });
}

// ---- lstm ------------------------------------------------------------------------------------

py::tuple py_lstm(py::array x, py::object h0, py::object c0, py::array w_ih, py::array w_hh,
                  py::object b_ih, py::object b_hh) {
    Layer L("lstm", 4, x, w_ih, w_hh);
    py::array h0a = L.state(h0, "h0"), c0a = L.state(c0, "c0");
    py::array bi = L.bias(b_ih, "bias_ih"), bh = L.bias(b_hh, "bias_hh");
    return by_dtype(w_hh, "weight_hh", [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        const RecurrentShape s = L.s;
        auto y = empty<T>({s.T, s.N, s.H});
        auto h_n = empty<T>({s.N, s.H});
        auto c_n = empty<T>({s.N, s.H});
        auto ws = empty<T>({s.T, s.N, 5 * s.H});
        T *yp = y.mutable_data(), *hp = h_n.mutable_data(), *cp = c_n.mutable_data(),
          *wsp = ws.mutable_data();
        const T *xp = ptr<T>(L.x), *h0p = opt_ptr<T>(h0a), *c0p = opt_ptr<T>(c0a),
                *wi = ptr<T>(L.w_ih), *wh = ptr<T>(L.w_hh), *bip = opt_ptr<T>(bi), *bhp = opt_ptr<T>(bh);
        {
            py::gil_scoped_release release;
            lstm_forward<T>(yp, hp, cp, wsp, xp, h0p, c0p, wi, wh, bip, bhp, s);
        }
        return py::make_tuple(y, h_n, c_n, ws);
    });
}

py::tuple py_lstm_backward(py::object dy, py::object dh_n, py::object dc_n, py::array x,
                           py::object h0, py::object c0, py::array w_ih, py::array w_hh, py::array y,
                           py::array workspace, py::object dW_ih, py::object dW_hh,
                           py::object db_ih, py::object db_hh, bool need_dx) {
    Layer L("lstm_backward", 4, x, w_ih, w_hh);
    py::array c0a = L.state(c0, "c0"), dcn = L.state(dc_n, "dc_n");
    Backward b(L, dy, dh_n, h0, y, workspace, 5, dW_ih, dW_hh, db_ih, db_hh, need_dx);
    return by_dtype(w_hh, "weight_hh", [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        auto c = b.call<T>(L);
        py::array dc0 = empty<T>({L.s.N, L.s.H});
        T* dc0p = opt_mut<T>(dc0);
        const T *dcnp = opt_ptr<T>(dcn), *c0p = opt_ptr<T>(c0a);
        {
            py::gil_scoped_release release;
            lstm_backward<T>(c.dxp, c.dh0p, dc0p, c.dwi, c.dwh, c.dbi, c.dbh, c.dyp, c.dhnp, dcnp,
                             c.xp, c.h0p, c0p, c.wi, c.wh, c.yp, c.wsp, L.s);
        }
        return py::make_tuple(b.dx(c.dx), c.dh0, dc0);
    });
}

// ---- gru -------------------------------------------------------------------------------------

py::tuple py_gru(py::array x, py::object h0, py::array w_ih, py::array w_hh, py::object b_ih,
                 py::object b_hh, bool reset_after) {
    Layer L("gru", 3, x, w_ih, w_hh);
    py::array h0a = L.state(h0, "h0"), bi = L.bias(b_ih, "bias_ih"), bh = L.bias(b_hh, "bias_hh");
    return by_dtype(w_hh, "weight_hh", [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        const RecurrentShape s = L.s;
        auto y = empty<T>({s.T, s.N, s.H});
        auto h_n = empty<T>({s.N, s.H});
        auto ws = empty<T>({s.T, s.N, 4 * s.H});
        T *yp = y.mutable_data(), *hp = h_n.mutable_data(), *wsp = ws.mutable_data();
        const T *xp = ptr<T>(L.x), *h0p = opt_ptr<T>(h0a), *wi = ptr<T>(L.w_ih), *wh = ptr<T>(L.w_hh);
        const T *bip = opt_ptr<T>(bi), *bhp = opt_ptr<T>(bh);
        {
            py::gil_scoped_release release;
            gru_forward<T>(yp, hp, wsp, xp, h0p, wi, wh, bip, bhp, s, reset_after);
        }
        return py::make_tuple(y, h_n, ws);
    });
}

py::tuple py_gru_backward(py::object dy, py::object dh_n, py::array x, py::object h0, py::array w_ih,
                          py::array w_hh, py::array y, py::array workspace, py::object dW_ih,
                          py::object dW_hh, py::object db_ih, py::object db_hh, bool need_dx,
                          bool reset_after) {
    Layer L("gru_backward", 3, x, w_ih, w_hh);
    Backward b(L, dy, dh_n, h0, y, workspace, 4, dW_ih, dW_hh, db_ih, db_hh, need_dx);
    return by_dtype(w_hh, "weight_hh", [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        auto c = b.call<T>(L);
        {
            py::gil_scoped_release release;
            gru_backward<T>(c.dxp, c.dh0p, c.dwi, c.dwh, c.dbi, c.dbh, c.dyp, c.dhnp, c.xp, c.h0p,
                            c.wi, c.wh, c.yp, c.wsp, L.s, reset_after);
        }
        return py::make_tuple(b.dx(c.dx), c.dh0);
    });
}

// ---- embedding -------------------------------------------------------------------------------

// indices: int64, C-contiguous, every value in [0, rows).
int64_t check_indices(const std::string& op, const py::array& indices, int64_t rows) {
    if (!same_type(indices.dtype(), py::dtype::of<int64_t>()))
        fail_type(op + ": indices must be int64, got dtype " + std::string(py::str(indices.dtype())));
    c_contiguous(indices, "indices");
    const int64_t count = indices.size();
    const int64_t* ip = static_cast<const int64_t*>(indices.data());
    for (int64_t j = 0; j < count; ++j)
        if (ip[j] < 0 || ip[j] >= rows)
            fail_value(op + ": index " + str(ip[j]) + " at position " + str(j) +
                       " is out of range [0, " + str(rows) + ")");
    return count;
}

py::array py_embedding(py::array indices, py::array weight) {
    float_kind(weight, "weight");
    ndim_is(weight, 2, "weight");
    c_contiguous(weight, "weight");
    const int64_t count = check_indices("embedding", indices, weight.shape(0));
    const int64_t D = weight.shape(1);
    std::vector<py::ssize_t> shape(indices.shape(), indices.shape() + indices.ndim());
    shape.push_back(D);
    return by_dtype(weight, "weight", [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto y = empty<T>(shape);
        T* yp = y.mutable_data();
        const int64_t* ip = static_cast<const int64_t*>(indices.data());
        const T* wp = ptr<T>(weight);
        py::gil_scoped_release release;
        embedding_forward<T>(yp, ip, wp, count, D);
        return y;
    });
}

// dW += the rows of dy gathered back to their indices, none into row padding_idx (-1: none).
void py_embedding_backward(py::array dy, py::array indices, py::object dW_obj, int64_t padding_idx) {
    py::array dW = inplace_array(dW_obj, "dW");
    float_kind(dW, "dW");
    ndim_is(dW, 2, "dW");
    c_contiguous(dW, "dW");
    writable(dW, "dW");
    same_dtype(dy, dW, "dy", "dW");
    c_contiguous(dy, "dy");
    const int64_t rows = dW.shape(0), D = dW.shape(1);
    const int64_t count = check_indices("embedding_backward", indices, rows);
    bool shape_ok = dy.ndim() == indices.ndim() + 1 && dy.shape(dy.ndim() - 1) == D;
    for (py::ssize_t d = 0; shape_ok && d < indices.ndim(); ++d) shape_ok = dy.shape(d) == indices.shape(d);
    if (!shape_ok)
        fail_value("embedding_backward: dy has shape " + shape_str(dy) + ", expected indices' shape " +
                   shape_str(indices) + " + (" + str(D) + ",)");
    if (padding_idx < -1 || padding_idx >= rows)
        fail_value("embedding_backward: padding_idx must be in [0, " + str(rows) + ") or -1 (none), got " +
                   str(padding_idx));
    no_overlap(dW, dy, "dW", "dy");
    no_overlap(dW, indices, "dW", "indices");
    by_dtype(dW, "dW", [&](auto tag) {
        using T = decltype(tag);
        T* dWp = mut<T>(dW);
        const T* dyp = ptr<T>(dy);
        const int64_t* ip = static_cast<const int64_t*>(indices.data());
        py::gil_scoped_release release;
        embedding_backward<T>(dWp, dyp, ip, count, D, padding_idx);
        return 0;
    });
}

}  // namespace

void bind_recurrent(py::module_& m) {
    m.def("rnn", &py_rnn, py::arg("x"), py::arg("h0"), py::arg("weight_ih"), py::arg("weight_hh"),
          py::arg("bias_ih"), py::arg("bias_hh"), py::arg("nonlinearity"));
    m.def("rnn_backward", &py_rnn_backward, py::arg("dy"), py::arg("dh_n"), py::arg("x"),
          py::arg("h0"), py::arg("weight_ih"), py::arg("weight_hh"), py::arg("y"), py::arg("dW_ih"),
          py::arg("dW_hh"), py::arg("db_ih"), py::arg("db_hh"), py::arg("need_dx"),
          py::arg("nonlinearity"));
    m.def("lstm", &py_lstm, py::arg("x"), py::arg("h0"), py::arg("c0"), py::arg("weight_ih"),
          py::arg("weight_hh"), py::arg("bias_ih"), py::arg("bias_hh"));
    m.def("lstm_backward", &py_lstm_backward, py::arg("dy"), py::arg("dh_n"), py::arg("dc_n"),
          py::arg("x"), py::arg("h0"), py::arg("c0"), py::arg("weight_ih"), py::arg("weight_hh"),
          py::arg("y"), py::arg("workspace"), py::arg("dW_ih"), py::arg("dW_hh"), py::arg("db_ih"),
          py::arg("db_hh"), py::arg("need_dx"));
    m.def("gru", &py_gru, py::arg("x"), py::arg("h0"), py::arg("weight_ih"), py::arg("weight_hh"),
          py::arg("bias_ih"), py::arg("bias_hh"), py::arg("reset_after"));
    m.def("gru_backward", &py_gru_backward, py::arg("dy"), py::arg("dh_n"), py::arg("x"),
          py::arg("h0"), py::arg("weight_ih"), py::arg("weight_hh"), py::arg("y"),
          py::arg("workspace"), py::arg("dW_ih"), py::arg("dW_hh"), py::arg("db_ih"),
          py::arg("db_hh"), py::arg("need_dx"), py::arg("reset_after"));
    m.def("embedding", &py_embedding, py::arg("indices"), py::arg("weight"));
    m.def("embedding_backward", &py_embedding_backward, py::arg("dy"), py::arg("indices"),
          py::arg("dW"), py::arg("padding_idx"));
}

}  // namespace lamina::python
