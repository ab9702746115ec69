#!/usr/bin/env bash
# Build lamina's extension with AddressSanitizer and UndefinedBehaviorSanitizer (CMake option
# LAMINA_SANITIZE) into its own virtual environment and build directory, then run the whole test
# suite against it. Any sanitizer report fails the run, even one pytest did not notice.
#
#   tools/sanitize.sh [pytest arguments...]        e.g. tools/sanitize.sh -x -k threads
#
# LAMINA_WORK=DIR keeps the environment and build there (reused by the next run); by default they
# go to a temporary directory that is removed at the end. Needs python3 (with venv and pip) and g++.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${LAMINA_WORK:-}" ]; then
    work=$LAMINA_WORK
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
venv="$work/venv-asan"
log="$work/sanitize.log"

step() { printf '\n==== sanitize: %s (%ss)\n' "$1" "$SECONDS"; }

step "environment"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q numpy pytest hypothesis threadpoolctl scikit-build-core pybind11
fi

step "build with -fsanitize=address,undefined"
# A separate build directory: the normal build (build/<wheel tag>) is left alone.
"$venv/bin/pip" install -q --no-build-isolation --no-deps --force-reinstall \
    --config-settings=cmake.define.LAMINA_SANITIZE=ON \
    --config-settings=cmake.build-type=RelWithDebInfo \
    --config-settings=build-dir="$work/build-asan" \
    "$repo"

# The extension must really be instrumented (found without importing it: an ASan library cannot be
# loaded unless the runtime is preloaded).
"$venv/bin/python" - <<'PY'
import glob, importlib.util, os, sys
spec = importlib.util.find_spec("lamina")
so = glob.glob(os.path.join(spec.submodule_search_locations[0], "_native*.so"))
if len(so) != 1:
    sys.exit(f"expected one lamina extension, found {so}")
data = open(so[0], "rb").read()
missing = [s for s in (b"__asan_init", b"__ubsan_handle") if s not in data]
if missing:
    sys.exit(f"{so[0]} is not instrumented (no {missing})")
print("instrumented:", so[0])
PY

# CPython is not instrumented, so the runtime is preloaded; libstdc++ too, or ASan cannot intercept
# C++ exceptions thrown by the extension. CPython keeps memory until exit by design: no leak check.
# allocator_may_return_null: the bad-input tests ask for petabytes and expect a MemoryError.
export LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libstdc++.so)"
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export PYTHONSAFEPATH=1

step "lamina under test"
(cd "$work" && "$venv/bin/python" -c "import lamina; print(lamina.__file__, lamina.build_info())")

step "test suite under ASan + UBSan"
set +e
(cd "$repo" && "$venv/bin/python" -m pytest tests -q -p no:cacheprovider "$@") 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
unset LD_PRELOAD

reports=$(grep -c -E "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer" "$log" || true)
result=$(grep -E "^[0-9]+ (passed|failed)|^=+ .*(passed|failed|error).* =+$" "$log" | tail -1 || true)
step "summary"
echo "pytest: ${result:-no result line} (exit code $rc)"
echo "sanitizer reports: $reports"
if [ "$reports" -ne 0 ]; then
    grep -n -E -A20 "ERROR: AddressSanitizer|runtime error:" "$log" | head -60
    echo "sanitize: FAILED: $reports sanitizer report(s); full log in $log"
    exit 1
fi
if [ "$rc" -eq 5 ]; then echo "sanitize: FAILED: pytest collected no tests"; exit 1; fi
if [ "$rc" -ne 0 ]; then echo "sanitize: FAILED: pytest exit code $rc"; exit "$rc"; fi
echo "sanitize: OK"
