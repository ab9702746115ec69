// Pooling kernels. Forward: threads split output rows ((n, c, oh) channels_first, (n, oh)
// channels_last); channels_first walks each window cell (i, j) over a whole output row, so the
// inner loop runs over output width, and channels_last runs the inner loop over the contiguous
// channels. Backward scatters into dx, so threads take whole planes (channels_first) or whole
// (sample, channel block)s (channels_last): no two threads ever add into one cell, and each cell
// receives its terms in the same order for any split.
#include "kernels/pooling.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/parallel.h"

namespace lamina {

namespace {

constexpr double kMinWorkPerThread = 1 << 15;  // element operations

// The window cells k in [lo, hi) of one axis whose position start + k*dilation lies in [0, in).
struct Span {
    int64_t lo, hi;
};

inline Span valid_cells(int64_t start, int64_t kernel, int64_t dilation, int64_t in) {
    const int64_t lo = start >= 0 ? 0 : (-start + dilation - 1) / dilation;
    const int64_t hi = start > in - 1 ? 0 : std::min(kernel, (in - 1 - start) / dilation + 1);
    return {lo, std::max(lo, hi)};
}

// The outputs o in [lo, hi) of [0, out) whose cell o*stride + offset lies in [0, in).
inline Span valid_outputs(int64_t offset, int64_t stride, int64_t out, int64_t in) {
    const int64_t lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    const int64_t hi = offset > in - 1 ? 0 : std::min(out, (in - 1 - offset) / stride + 1);
    return {std::min(lo, out), std::max(std::min(lo, out), hi)};
}

// PyTorch's average divisor for the window starting at (hs, ws): clipped to the padded input when
// count_include_pad, else to the input, or divisor_override.
inline int64_t avg_divisor(const Pool2d& g, int64_t hs, int64_t ws, bool count_include_pad,
                           int64_t divisor_override) {
    if (divisor_override > 0) return divisor_override;
    const int64_t he = std::min(hs + g.kernel_h, g.in_h + g.pad_bottom);
    const int64_t we = std::min(ws + g.kernel_w, g.in_w + g.pad_right);
    if (count_include_pad) return (he - hs) * (we - ws);
    return (std::min(he, g.in_h) - std::max(hs, int64_t(0))) *
           (std::min(we, g.in_w) - std::max(ws, int64_t(0)));
}

inline int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return i * in / out; }
inline int64_t adaptive_end(int64_t i, int64_t in, int64_t out) {
    return ((i + 1) * in + out - 1) / out;
}

template <typename T>
constexpr T lowest() { return -std::numeric_limits<T>::infinity(); }

// Channels per work item of a channels_last backward: whole samples when there are enough of them
// to share, otherwise blocks of channels as well.
inline int64_t channel_block(const Pool2d& g) {
    const int64_t threads = get_num_threads();
    return g.batch >= 2 * threads ? std::max<int64_t>(g.channels, 1)
                                  : std::max<int64_t>(std::min<int64_t>(g.channels, 32), 1);
}

}  // namespace

int64_t pool_output_length(int64_t in, int64_t kernel, int64_t stride, int64_t pad_begin,
                           int64_t pad_end, int64_t dilation, bool ceil_mode) {
    // PyTorch's pooling_output_shape, with a floor division that rounds towards -infinity.
    const int64_t num = in + pad_begin + pad_end - dilation * (kernel - 1) - 1 +
                        (ceil_mode ? stride - 1 : 0);
    int64_t out = (num >= 0 ? num / stride : -((-num + stride - 1) / stride)) + 1;
    if (ceil_mode && (out - 1) * stride >= in + pad_begin) --out;
    return out;
}

std::string pool2d_plan(Pool2d& g, bool ceil_mode) {
    auto str = [](int64_t v) { return std::to_string(v); };
    const struct {
        const char* name;
        int64_t value, minimum;
    } sizes[] = {{"kernel_h", g.kernel_h, 1},     {"kernel_w", g.kernel_w, 1},
                 {"stride_h", g.stride_h, 1},     {"stride_w", g.stride_w, 1},
                 {"dilation_h", g.dilation_h, 1}, {"dilation_w", g.dilation_w, 1},
                 {"pad_top", g.pad_top, 0},       {"pad_bottom", g.pad_bottom, 0},
                 {"pad_left", g.pad_left, 0},     {"pad_right", g.pad_right, 0}};
    for (const auto& s : sizes)
        if (s.value < s.minimum || s.value >= kPoolMax)
            return std::string(s.name) + " must be in [" + str(s.minimum) + ", 2**31), got " +
                   str(s.value);
    if (g.batch < 0 || g.channels < 0 || g.in_h < 1 || g.in_w < 1 || g.in_h >= kPoolMax ||
        g.in_w >= kPoolMax)
        return "input height and width must be in [1, 2**31), got " + str(g.in_h) + " x " +
               str(g.in_w);
    g.out_h = pool_output_length(g.in_h, g.kernel_h, g.stride_h, g.pad_top, g.pad_bottom,
                                 g.dilation_h, ceil_mode);
    g.out_w = pool_output_length(g.in_w, g.kernel_w, g.stride_w, g.pad_left, g.pad_right,
                                 g.dilation_w, ceil_mode);
    if (g.out_h < 1 || g.out_w < 1)
        return "kernel larger than the padded input: input " + str(g.in_h) + " x " + str(g.in_w) +
               " padded by (" + str(g.pad_top) + ", " + str(g.pad_bottom) + ", " + str(g.pad_left) +
               ", " + str(g.pad_right) + "), kernel " + str(g.kernel_h) + " x " + str(g.kernel_w) +
               " with dilation " + str(g.dilation_h) + " x " + str(g.dilation_w) +
               " gives an output of " + str(g.out_h) + " x " + str(g.out_w);
    // Every window must hold an input cell (else a max has no value and an average no divisor).
    // Windows that start inside the input do; those that start past it never do (only the last
    // can); of those that start in the leading padding, the first has the fewest cells in the
    // input when the cells are contiguous, but with dilation each is checked (it can step over the
    // input).
    const struct {
        const char* axis;
        int64_t out, in, kernel, stride, pad, dilation;
    } axes[] = {{"rows", g.out_h, g.in_h, g.kernel_h, g.stride_h, g.pad_top, g.dilation_h},
                {"columns", g.out_w, g.in_w, g.kernel_w, g.stride_w, g.pad_left, g.dilation_w}};
    for (const auto& a : axes) {
        auto empty = [&](int64_t o) {
            const Span s = valid_cells(o * a.stride - a.pad, a.kernel, a.dilation, a.in);
            return s.lo >= s.hi;
        };
        int64_t bad = empty(a.out - 1) ? a.out - 1 : -1;
        const int64_t leading = a.dilation == 1 ? 1 : a.out;
        for (int64_t o = 0; bad < 0 && o < leading && o * a.stride < a.pad; ++o)
            if (empty(o)) bad = o;
        if (bad >= 0)
            return "window " + str(bad) + " along the " + a.axis + " lies entirely in the " +
                   "padding (input " + str(a.in) + ", padding " + str(a.pad) + ", kernel " +
                   str(a.kernel) + ", stride " + str(a.stride) + ", dilation " + str(a.dilation) +
                   ")";
    }
    // Far past any memory; keeps every size product below int64's range.
    if (g.out_h * g.out_w >= (int64_t(1) << 48))
        return "output plane of " + str(g.out_h) + " x " + str(g.out_w) + " is too large";
    return "";
}

// ---- max --------------------------------------------------------------------------------------

namespace {

// The running max of one block of outputs and its argmax, kept in an integer L as wide as T
// (int32 for float, int64 for double) so that the compare and both selects vectorise together;
// the block is written out to I at the end. Outputs are processed in blocks of kMaxBlock.
constexpr int64_t kMaxBlock = 256;

// m[k], at[k] = x[k], id(k) if x[k] > m[k] or x[k] is NaN (PyTorch's rule: ties keep the first
// cell, a NaN always takes over), branch-free.
template <typename T, typename L>
inline void max_update(T* m, L* at, const T* x, int64_t stride, L id, L id_step, int64_t n) {
    for (int64_t k = 0; k < n; ++k) {
        const T v = x[k * stride];
        const bool take = (v > m[k]) | (v != v);
        m[k] = take ? v : m[k];
        at[k] = take ? L(id + L(k) * id_step) : at[k];
    }
}

template <typename T>
inline void max_value(T* m, const T* x, int64_t stride, int64_t n) {
    for (int64_t k = 0; k < n; ++k) {
        const T v = x[k * stride];
        m[k] = ((v > m[k]) | (v != v)) ? v : m[k];
    }
}

// What every row of a channels_first pooling shares, computed once per call: the first input
// column of each output's window, and for each kernel column j the outputs whose cell j lies in
// the input.
struct Columns {
    std::vector<int64_t> first;  // (Wo,)
    std::vector<Span> outputs;   // (kernel_w,)
    explicit Columns(const Pool2d& g) : first(g.out_w), outputs(g.kernel_w) {
        for (int64_t ow = 0; ow < g.out_w; ++ow) {
            const int64_t ws = ow * g.stride_w - g.pad_left;
            first[ow] = ws + valid_cells(ws, g.kernel_w, g.dilation_w, g.in_w).lo * g.dilation_w;
        }
        for (int64_t j = 0; j < g.kernel_w; ++j)
            outputs[j] = valid_outputs(j * g.dilation_w - g.pad_left, g.stride_w, g.out_w, g.in_w);
    }
};

// One output row of a channels_first max: outputs [0, Wo) of row oh in plane xp, by blocks.
template <typename T, typename I, typename L>
void max_row_channels_first(T* yr, I* ir, const T* xp, int64_t oh, const Pool2d& g,
                            const Columns& cols) {
    const int64_t W = g.in_w, Wo = g.out_w, sw = g.stride_w;
    const int64_t hs = oh * g.stride_h - g.pad_top;
    const Span rows_in = valid_cells(hs, g.kernel_h, g.dilation_h, g.in_h);
    L at[kMaxBlock];
    for (int64_t a = 0; a < Wo; a += kMaxBlock) {
        const int64_t b = std::min(Wo, a + kMaxBlock);
        T* m = yr + a;
        const int64_t first_row = (hs + rows_in.lo * g.dilation_h) * W;
        for (int64_t ow = a; ow < b; ++ow) m[ow - a] = lowest<T>();
        if (ir)
            for (int64_t ow = a; ow < b; ++ow) at[ow - a] = L(first_row + cols.first[ow]);
        for (int64_t i = rows_in.lo; i < rows_in.hi; ++i) {
            const int64_t ih = hs + i * g.dilation_h;
            const T* xr = xp + ih * W;
            for (int64_t j = 0; j < g.kernel_w; ++j) {
                // The outputs of this block whose cell (i, j) lies in the input.
                const int64_t offset = j * g.dilation_w - g.pad_left;
                const Span o = cols.outputs[j];
                const int64_t lo = std::max(o.lo, a), hi = std::min(o.hi, b);
                if (lo >= hi) continue;
                const T* xs = xr + lo * sw + offset;
                if (ir)
                    max_update<T, L>(m + (lo - a), at + (lo - a), xs, sw, L(ih * W + lo * sw + offset),
                                     L(sw), hi - lo);
                else
                    max_value<T>(m + (lo - a), xs, sw, hi - lo);
            }
        }
        if (ir)
            for (int64_t ow = a; ow < b; ++ow) ir[ow] = I(at[ow - a]);
    }
}

// One output cell (n, oh, ow) of a channels_last max: C channels, by blocks.
template <typename T, typename I, typename L>
void max_cell_channels_last(T* yv, I* iv, const T* xn, int64_t oh, int64_t ow, const Pool2d& g) {
    const int64_t W = g.in_w, C = g.channels;
    const int64_t hs = oh * g.stride_h - g.pad_top, ws = ow * g.stride_w - g.pad_left;
    const Span rows_in = valid_cells(hs, g.kernel_h, g.dilation_h, g.in_h);
    const Span cols_in = valid_cells(ws, g.kernel_w, g.dilation_w, W);
    const L first = L((hs + rows_in.lo * g.dilation_h) * W + ws + cols_in.lo * g.dilation_w);
    L at[kMaxBlock];
    for (int64_t a = 0; a < C; a += kMaxBlock) {
        const int64_t n = std::min(C, a + kMaxBlock) - a;
        T* m = yv + a;
        for (int64_t k = 0; k < n; ++k) m[k] = lowest<T>();
        if (iv)
            for (int64_t k = 0; k < n; ++k) at[k] = first;
        for (int64_t i = rows_in.lo; i < rows_in.hi; ++i)
            for (int64_t j = cols_in.lo; j < cols_in.hi; ++j) {
                const int64_t cell = (hs + i * g.dilation_h) * W + ws + j * g.dilation_w;
                const T* xv = xn + cell * C + a;
                if (iv)
                    max_update<T, L>(m, at, xv, 1, L(cell), L(0), n);
                else
                    max_value<T>(m, xv, 1, n);
            }
        if (iv)
            for (int64_t k = 0; k < n; ++k) iv[a + k] = I(at[k]);
    }
}

template <typename T, typename I, typename L>
void max_pool2d_forward_as(T* y, I* indices, const T* x, const Pool2d& g) {
    const int64_t H = g.in_h, W = g.in_w, Ho = g.out_h, Wo = g.out_w, C = g.channels;
    if (!g.channels_last) {
        const Columns cols(g);
        parallel_for(g.batch * C * Ho, double(Wo * g.kernel_h * g.kernel_w), kMinWorkPerThread,
                     [&](int64_t lo, int64_t hi) {
            for (int64_t r = lo; r < hi; ++r)
                max_row_channels_first<T, I, L>(y + r * Wo, indices ? indices + r * Wo : nullptr,
                                                x + r / Ho * H * W, r % Ho, g, cols);
        });
        return;
    }
    parallel_for(g.batch * Ho, double(Wo * C * g.kernel_h * g.kernel_w), kMinWorkPerThread,
                 [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r)
            for (int64_t ow = 0; ow < Wo; ++ow) {
                const int64_t o = (r * Wo + ow) * C;
                max_cell_channels_last<T, I, L>(y + o, indices ? indices + o : nullptr,
                                                x + r / Ho * H * W * C, r % Ho, ow, g);
            }
    });
}

}  // namespace

template <typename T, typename I>
void max_pool2d_forward(T* y, I* indices, const T* x, const Pool2d& g) {
    if (g.output_size() == 0) return;
    using Narrow = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
    // The argmax is tracked in an integer of T's width unless the plane is too large for it.
    if (g.in_h * g.in_w < (int64_t(1) << 31))
        max_pool2d_forward_as<T, I, Narrow>(y, indices, x, g);
    else
        max_pool2d_forward_as<T, I, int64_t>(y, indices, x, g);
}

template <typename T, typename I>
void max_pool2d_backward(T* dx, const T* dy, const I* indices, const Pool2d& g) {
    const int64_t HW = g.in_h * g.in_w, HoWo = g.out_h * g.out_w, C = g.channels;
    if (g.input_size() == 0) return;
    if (!g.channels_last) {
        parallel_for(g.batch * C, double(HW + HoWo), kMinWorkPerThread,
                     [&](int64_t lo, int64_t hi) {
            for (int64_t p = lo; p < hi; ++p) {
                T* dxp = dx + p * HW;
                const T* dyp = dy + p * HoWo;
                const I* ip = indices + p * HoWo;
                std::fill(dxp, dxp + HW, T(0));
                for (int64_t o = 0; o < HoWo; ++o) dxp[ip[o]] += dyp[o];
            }
        });
        return;
    }
    const int64_t block = channel_block(g), blocks = (C + block - 1) / block;
    parallel_for(g.batch * blocks, double((HW + HoWo) * block), kMinWorkPerThread,
                 [&](int64_t lo, int64_t hi) {
        for (int64_t item = lo; item < hi; ++item) {
            const int64_t n = item / blocks, c0 = item % blocks * block;
            const int64_t c1 = std::min(C, c0 + block);
            T* dxn = dx + n * HW * C;
            const T* dyn = dy + n * HoWo * C;
            const I* in = indices + n * HoWo * C;
            for (int64_t cell = 0; cell < HW; ++cell)
                std::fill(dxn + cell * C + c0, dxn + cell * C + c1, T(0));
            for (int64_t o = 0; o < HoWo; ++o)
                for (int64_t c = c0; c < c1; ++c) dxn[in[o * C + c] * C + c] += dyn[o * C + c];
        }
    });
}

// ---- average ----------------------------------------------------------------------------------

template <typename T>
void avg_pool2d_forward(T* y, const T* x, const Pool2d& g, bool count_include_pad,
                        int64_t divisor_override) {
    const int64_t H = g.in_h, W = g.in_w, Ho = g.out_h, Wo = g.out_w, C = g.channels;
    if (g.output_size() == 0) return;
    if (!g.channels_last) {
        const Columns cols(g);
        parallel_for(g.batch * C * Ho, double(Wo * g.kernel_h * g.kernel_w), kMinWorkPerThread,
                     [&](int64_t lo, int64_t hi) {
            for (int64_t r = lo; r < hi; ++r) {
                const int64_t plane = r / Ho, oh = r % Ho;
                const T* xp = x + plane * H * W;
                T* yr = y + r * Wo;
                const int64_t hs = oh * g.stride_h - g.pad_top;
                const int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min(hs + g.kernel_h, H);
                std::fill(yr, yr + Wo, T(0));
                for (int64_t ih = h0; ih < h1; ++ih) {
                    const T* xr = xp + ih * W;
                    for (int64_t j = 0; j < g.kernel_w; ++j) {
                        const int64_t offset = j - g.pad_left;
                        const Span o = cols.outputs[j];
                        const int64_t sw = g.stride_w;
                        for (int64_t ow = o.lo; ow < o.hi; ++ow) yr[ow] += xr[ow * sw + offset];
                    }
                }
                for (int64_t ow = 0; ow < Wo; ++ow)
                    yr[ow] /= T(avg_divisor(g, hs, ow * g.stride_w - g.pad_left,
                                            count_include_pad, divisor_override));
            }
        });
        return;
    }
    parallel_for(g.batch * Ho, double(Wo * C * g.kernel_h * g.kernel_w), kMinWorkPerThread,
                 [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r) {
            const int64_t n = r / Ho, oh = r % Ho;
            const T* xn = x + n * H * W * C;
            const int64_t hs = oh * g.stride_h - g.pad_top;
            const int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min(hs + g.kernel_h, H);
            for (int64_t ow = 0; ow < Wo; ++ow) {
                T* yv = y + (r * Wo + ow) * C;
                const int64_t ws = ow * g.stride_w - g.pad_left;
                const int64_t w0 = std::max<int64_t>(ws, 0), w1 = std::min(ws + g.kernel_w, W);
                std::fill(yv, yv + C, T(0));
                for (int64_t ih = h0; ih < h1; ++ih)
                    for (int64_t iw = w0; iw < w1; ++iw) {
                        const T* xv = xn + (ih * W + iw) * C;
                        for (int64_t c = 0; c < C; ++c) yv[c] += xv[c];
                    }
                const T div = T(avg_divisor(g, hs, ws, count_include_pad, divisor_override));
                for (int64_t c = 0; c < C; ++c) yv[c] /= div;
            }
        }
    });
}

template <typename T>
void avg_pool2d_backward(T* dx, const T* dy, const Pool2d& g, bool count_include_pad,
                         int64_t divisor_override) {
    const int64_t H = g.in_h, W = g.in_w, Ho = g.out_h, Wo = g.out_w, C = g.channels;
    if (g.input_size() == 0) return;
    const double cells = double(g.kernel_h * g.kernel_w);
    if (!g.channels_last) {
        // Row by row: a block of dy / divisor, then each window cell (i, j) added over the block.
        const Columns cols(g);
        parallel_for(g.batch * C, double(H * W) + double(Ho * Wo) * cells, kMinWorkPerThread,
                     [&](int64_t lo, int64_t hi) {
            T d[kMaxBlock];
            for (int64_t p = lo; p < hi; ++p) {
                T* dxp = dx + p * H * W;
                const T* dyp = dy + p * Ho * Wo;
                std::fill(dxp, dxp + H * W, T(0));
                for (int64_t oh = 0; oh < Ho; ++oh) {
                    const int64_t hs = oh * g.stride_h - g.pad_top;
                    const int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min(hs + g.kernel_h, H);
                    for (int64_t a = 0; a < Wo; a += kMaxBlock) {
                        const int64_t b = std::min(Wo, a + kMaxBlock);
                        for (int64_t ow = a; ow < b; ++ow)
                            d[ow - a] = dyp[oh * Wo + ow] /
                                        T(avg_divisor(g, hs, ow * g.stride_w - g.pad_left,
                                                      count_include_pad, divisor_override));
                        for (int64_t ih = h0; ih < h1; ++ih) {
                            T* dxr = dxp + ih * W;
                            for (int64_t j = 0; j < g.kernel_w; ++j) {
                                const int64_t offset = j - g.pad_left, sw = g.stride_w;
                                const int64_t o0 = std::max(cols.outputs[j].lo, a);
                                const int64_t o1 = std::min(cols.outputs[j].hi, b);
                                for (int64_t ow = o0; ow < o1; ++ow)
                                    dxr[ow * sw + offset] += d[ow - a];
                            }
                        }
                    }
                }
            }
        });
        return;
    }
    const int64_t block = channel_block(g), blocks = (C + block - 1) / block;
    parallel_for(g.batch * blocks, (double(H * W) + double(Ho * Wo) * cells) * double(block),
                 kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        std::vector<T> d(block);  // dy / divisor of one output, added to each cell of its window
        for (int64_t item = lo; item < hi; ++item) {
            const int64_t n = item / blocks, c0 = item % blocks * block;
            const int64_t c1 = std::min(C, c0 + block);
            T* dxn = dx + n * H * W * C;
            const T* dyn = dy + n * Ho * Wo * C;
            for (int64_t cell = 0; cell < H * W; ++cell)
                std::fill(dxn + cell * C + c0, dxn + cell * C + c1, T(0));
            for (int64_t oh = 0; oh < Ho; ++oh) {
                const int64_t hs = oh * g.stride_h - g.pad_top;
                const int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min(hs + g.kernel_h, H);
                for (int64_t ow = 0; ow < Wo; ++ow) {
                    const int64_t ws = ow * g.stride_w - g.pad_left;
                    const int64_t w0 = std::max<int64_t>(ws, 0), w1 = std::min(ws + g.kernel_w, W);
                    const T div = T(avg_divisor(g, hs, ws, count_include_pad, divisor_override));
                    const T* dyv = dyn + (oh * Wo + ow) * C;
                    T* dv = d.data() - c0;
                    for (int64_t c = c0; c < c1; ++c) dv[c] = dyv[c] / div;
                    for (int64_t ih = h0; ih < h1; ++ih)
                        for (int64_t iw = w0; iw < w1; ++iw) {
                            T* dxv = dxn + (ih * W + iw) * C;
                            for (int64_t c = c0; c < c1; ++c) dxv[c] += dv[c];
                        }
                }
            }
        }
    });
}

// ---- adaptive average -------------------------------------------------------------------------

template <typename T>
void adaptive_avg_pool2d_forward(T* y, const T* x, const Pool2d& g) {
    const int64_t H = g.in_h, W = g.in_w, Ho = g.out_h, Wo = g.out_w, C = g.channels;
    if (g.output_size() == 0) return;
    // Window area per output: at most ceil(H/Ho)+1 rows by ceil(W/Wo)+1 columns.
    const double cells = double((H / Ho + 2) * (W / Wo + 2));
    if (!g.channels_last) {
        parallel_for(g.batch * C * Ho, double(Wo) * cells, kMinWorkPerThread,
                     [&](int64_t lo, int64_t hi) {
            for (int64_t r = lo; r < hi; ++r) {
                const int64_t plane = r / Ho, oh = r % Ho;
                const T* xp = x + plane * H * W;
                const int64_t h0 = adaptive_start(oh, H, Ho), h1 = adaptive_end(oh, H, Ho);
                for (int64_t ow = 0; ow < Wo; ++ow) {
                    const int64_t w0 = adaptive_start(ow, W, Wo), w1 = adaptive_end(ow, W, Wo);
                    T sum = 0;
                    for (int64_t ih = h0; ih < h1; ++ih)
                        for (int64_t iw = w0; iw < w1; ++iw) sum += xp[ih * W + iw];
                    // Divided by the height, then the width, as PyTorch does.
                    y[r * Wo + ow] = sum / T(h1 - h0) / T(w1 - w0);
                }
            }
        });
        return;
    }
    parallel_for(g.batch * Ho, double(Wo * C) * cells, kMinWorkPerThread,
                 [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r) {
            const int64_t n = r / Ho, oh = r % Ho;
            const T* xn = x + n * H * W * C;
            const int64_t h0 = adaptive_start(oh, H, Ho), h1 = adaptive_end(oh, H, Ho);
            for (int64_t ow = 0; ow < Wo; ++ow) {
                const int64_t w0 = adaptive_start(ow, W, Wo), w1 = adaptive_end(ow, W, Wo);
                T* yv = y + (r * Wo + ow) * C;
                std::fill(yv, yv + C, T(0));
                for (int64_t ih = h0; ih < h1; ++ih)
                    for (int64_t iw = w0; iw < w1; ++iw) {
                        const T* xv = xn + (ih * W + iw) * C;
                        for (int64_t c = 0; c < C; ++c) yv[c] += xv[c];
                    }
                const T dh = T(h1 - h0), dw = T(w1 - w0);
                for (int64_t c = 0; c < C; ++c) yv[c] = yv[c] / dh / dw;
            }
        }
    });
}

template <typename T>
void adaptive_avg_pool2d_backward(T* dx, const T* dy, const Pool2d& g) {
    const int64_t H = g.in_h, W = g.in_w, Ho = g.out_h, Wo = g.out_w, C = g.channels;
    if (g.input_size() == 0) return;
    const double cells = double((H / Ho + 2) * (W / Wo + 2));
    if (!g.channels_last) {
        parallel_for(g.batch * C, double(H * W) + double(Ho * Wo) * cells, kMinWorkPerThread,
                     [&](int64_t lo, int64_t hi) {
            for (int64_t p = lo; p < hi; ++p) {
                T* dxp = dx + p * H * W;
                const T* dyp = dy + p * Ho * Wo;
                std::fill(dxp, dxp + H * W, T(0));
                for (int64_t oh = 0; oh < Ho; ++oh) {
                    const int64_t h0 = adaptive_start(oh, H, Ho), h1 = adaptive_end(oh, H, Ho);
                    for (int64_t ow = 0; ow < Wo; ++ow) {
                        const int64_t w0 = adaptive_start(ow, W, Wo), w1 = adaptive_end(ow, W, Wo);
                        const T d = dyp[oh * Wo + ow] / T(h1 - h0) / T(w1 - w0);
                        for (int64_t ih = h0; ih < h1; ++ih)
                            for (int64_t iw = w0; iw < w1; ++iw) dxp[ih * W + iw] += d;
                    }
                }
            }
        });
        return;
    }
    const int64_t block = channel_block(g), blocks = (C + block - 1) / block;
    parallel_for(g.batch * blocks, (double(H * W) + double(Ho * Wo) * cells) * double(block),
                 kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        for (int64_t item = lo; item < hi; ++item) {
            const int64_t n = item / blocks, c0 = item % blocks * block;
            const int64_t c1 = std::min(C, c0 + block);
            T* dxn = dx + n * H * W * C;
            const T* dyn = dy + n * Ho * Wo * C;
            for (int64_t cell = 0; cell < H * W; ++cell)
                std::fill(dxn + cell * C + c0, dxn + cell * C + c1, T(0));
            for (int64_t oh = 0; oh < Ho; ++oh) {
                const int64_t h0 = adaptive_start(oh, H, Ho), h1 = adaptive_end(oh, H, Ho);
                for (int64_t ow = 0; ow < Wo; ++ow) {
                    const int64_t w0 = adaptive_start(ow, W, Wo), w1 = adaptive_end(ow, W, Wo);
                    const T dh = T(h1 - h0), dw = T(w1 - w0);
                    const T* dyv = dyn + (oh * Wo + ow) * C;
                    for (int64_t ih = h0; ih < h1; ++ih)
                        for (int64_t iw = w0; iw < w1; ++iw) {
                            T* dxv = dxn + (ih * W + iw) * C;
                            for (int64_t c = c0; c < c1; ++c) dxv[c] += dyv[c] / dh / dw;
                        }
                }
            }
        }
    });
}

template void max_pool2d_forward<float, int64_t>(float*, int64_t*, const float*, const Pool2d&);
template void max_pool2d_forward<double, int64_t>(double*, int64_t*, const double*, const Pool2d&);
template void max_pool2d_forward<float, int32_t>(float*, int32_t*, const float*, const Pool2d&);
template void max_pool2d_backward<float, int64_t>(float*, const float*, const int64_t*,
                                                  const Pool2d&);
template void max_pool2d_backward<double, int64_t>(double*, const double*, const int64_t*,
                                                   const Pool2d&);
template void max_pool2d_backward<float, int32_t>(float*, const float*, const int32_t*,
                                                  const Pool2d&);
template void avg_pool2d_forward<float>(float*, const float*, const Pool2d&, bool, int64_t);
template void avg_pool2d_forward<double>(double*, const double*, const Pool2d&, bool, int64_t);
template void avg_pool2d_backward<float>(float*, const float*, const Pool2d&, bool, int64_t);
template void avg_pool2d_backward<double>(double*, const double*, const Pool2d&, bool, int64_t);
template void adaptive_avg_pool2d_forward<float>(float*, const float*, const Pool2d&);
template void adaptive_avg_pool2d_forward<double>(double*, const double*, const Pool2d&);
template void adaptive_avg_pool2d_backward<float>(float*, const float*, const Pool2d&);
template void adaptive_avg_pool2d_backward<double>(double*, const double*, const Pool2d&);

}  // namespace lamina
