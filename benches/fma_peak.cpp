// The machine's measured single-precision FMA peak for one core, per vector ISA: twelve independent
// chains of fused multiply-adds (enough to cover FMA latency times the FMA ports), timed for about
// a tenth of a second each. Prints "isa GFLOP/s" lines; benches/conftest.py compiles and runs it.
#include <immintrin.h>

#include <chrono>
#include <cstdio>

namespace {

template <typename Body>
double gflops(double flops_per_iter, Body body) {
    long iters = 1 << 16;
    for (;;) {
        const auto t0 = std::chrono::steady_clock::now();
        const float sink = body(iters);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (sink == 12345.0f) std::puts("");  // keeps the chains alive
        if (s > 0.1) return flops_per_iter * double(iters) / s / 1e9;
        iters *= 2;
    }
}

__attribute__((target("avx512f,fma"))) float chains512(long iters) {
    __m512 a[12];
    for (int k = 0; k < 12; ++k) a[k] = _mm512_set1_ps(float(k));
    const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
    for (long i = 0; i < iters; ++i)
        for (int k = 0; k < 12; ++k) a[k] = _mm512_fmadd_ps(a[k], b, c);
    float s = 0;
    for (int k = 0; k < 12; ++k) s += _mm512_reduce_add_ps(a[k]);
    return s;
}

__attribute__((target("avx2,fma"))) float chains256(long iters) {
    __m256 a[12];
    for (int k = 0; k < 12; ++k) a[k] = _mm256_set1_ps(float(k));
    const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
    for (long i = 0; i < iters; ++i)
        for (int k = 0; k < 12; ++k) a[k] = _mm256_fmadd_ps(a[k], b, c);
    float lanes[8], s = 0;
    for (int k = 0; k < 12; ++k) {
        _mm256_storeu_ps(lanes, a[k]);
        for (float v : lanes) s += v;
    }
    return s;
}

}  // namespace

int main() {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma"))
        std::printf("avx512 %.1f\n", gflops(12 * 16 * 2, chains512));
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        std::printf("avx2 %.1f\n", gflops(12 * 8 * 2, chains256));
    return 0;
}
