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

}  // namespace lamina
