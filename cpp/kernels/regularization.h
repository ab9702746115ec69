// Dropout with a counter-based generator: element i of a call is kept or dropped by a hash of
// (key, counter + i), so a mask depends on neither the thread count nor the path that draws it
// (a layer's own call, or a step of the plan), and backward recomputes it instead of storing it.
//   bits(i) = mix(key + (counter + i + 1) * 0x9E3779B97F4A7C15)     (uint64, wrapping)
//   kept(i) = (bits(i) >> 32) >= floor(p * 2^32)
//   y = kept ? x * scale : 0, scale = 1 / (1 - p) (in double, rounded once to T)
#pragma once
#include <cstdint>

namespace lamina {

// SplitMix64's finaliser: a bijection of 64-bit values whose every output bit depends on every
// input bit.
inline uint64_t mix64(uint64_t z) {
    z ^= z >> 30;
    z *= 0xBF58476D1CE4E5B9ull;
    z ^= z >> 27;
    z *= 0x94D049BB133111EBull;
    z ^= z >> 31;
    return z;
}

constexpr uint64_t kDropoutStride = 0x9E3779B97F4A7C15ull;  // 2^64 / golden ratio, odd

// floor(p * 2^32) for p in [0, 1): an element is dropped when the top 32 bits of its hash fall
// below it.
inline uint64_t dropout_threshold(double p) { return static_cast<uint64_t>(p * 4294967296.0); }

inline bool dropout_keeps(uint64_t key, uint64_t counter, uint64_t i, uint64_t threshold) {
    return (mix64(key + (counter + i + 1) * kDropoutStride) >> 32) >= threshold;
}

// y = kept ? x * scale : 0 over the flat index i of n elements; p in [0, 1) (checked by the
// caller).
template <typename T>
void dropout_forward(T* y,         // y is (n,)
                     const T* x,   // x is (n,)
                     int64_t n, double p, uint64_t key, uint64_t counter);

// dx = kept ? dy * scale : 0, the mask recomputed from (key, counter).
template <typename T>
void dropout_backward(T* dx,        // dx is (n,)
                      const T* dy,  // dy is (n,)
                      int64_t n, double p, uint64_t key, uint64_t counter);

// keep[i] = kept(i), for tests and for anyone who wants to see a mask.
void dropout_mask(bool* keep,  // keep is (n,)
                  int64_t n, double p, uint64_t key, uint64_t counter);

}  // namespace lamina
