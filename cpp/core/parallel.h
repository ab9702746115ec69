// Thread count shared by every kernel, and the OpenMP shim that lets lamina build without OpenMP.
// The count is read once at the start of a call, so set_num_threads from another Python thread
// never changes a call already running.
#pragma once
#include <cstdint>

#ifdef LAMINA_HAVE_OPENMP
#include <omp.h>
#endif

namespace lamina {

void set_num_threads(int n);  // n >= 1; 0 restores the default (OpenMP's own limit)
int get_num_threads();        // min(lamina's setting, OpenMP's limit, e.g. set by threadpoolctl)
bool have_openmp();

// Threads for a job of `work` multiply-adds (or element operations): 1 below `min_work_per_thread`
// per extra thread, so that small jobs do not pay OpenMP's fork and join.
int threads_for(double work, double min_work_per_thread);

// Runs body(lo, hi) over [0, n) split into equal contiguous ranges, one per thread. A job too
// small to share (see threads_for) calls body(0, n) directly, without entering OpenMP at all:
// even a one-thread parallel region costs more than a small layer's whole activation pass.
template <typename Body>
void parallel_for(int64_t n, double work_per_item, double min_work_per_thread, Body&& body) {
    const int threads = n > 1 ? threads_for(double(n) * work_per_item, min_work_per_thread) : 1;
#ifdef LAMINA_HAVE_OPENMP
    if (threads > 1) {
#pragma omp parallel num_threads(threads)
        {
            const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
            body(n * t / nt, n * (t + 1) / nt);
        }
        return;
    }
#endif
    (void)threads;
    body(int64_t(0), n);
}

}  // namespace lamina
