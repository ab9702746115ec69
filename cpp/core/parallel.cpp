// Thread-count state: lamina's own setting, capped by OpenMP's limit so that threadpoolctl and
// OMP_NUM_THREADS apply to lamina as they do to other OpenMP libraries.
#include "core/parallel.h"

#include <algorithm>
#include <atomic>

namespace lamina {

static std::atomic<int> requested_threads{0};  // 0: follow OpenMP's default

void set_num_threads(int n) { requested_threads.store(n < 0 ? 0 : n); }

int get_num_threads() {
#ifdef LAMINA_HAVE_OPENMP
    const int limit = omp_get_max_threads();
#else
    const int limit = 1;
#endif
    const int want = requested_threads.load();
    return std::max(1, want == 0 ? limit : std::min(want, limit));
}

bool have_openmp() {
#ifdef LAMINA_HAVE_OPENMP
    return true;
#else
    return false;
#endif
}

int threads_for(double work, double min_work_per_thread) {
    // Too small for two threads whatever the setting: answered without asking OpenMP for its
    // limit (most calls of a small model).
    if (work < 2.0 * min_work_per_thread) return 1;
    const int n = get_num_threads();
    if (n <= 1) return 1;
    const double useful = work / min_work_per_thread;
    // Compare as doubles first: casting a huge quotient to int would be undefined.
    return useful < 2.0 ? 1 : useful >= double(n) ? n : static_cast<int>(useful);
}

}  // namespace lamina
