#!/usr/bin/env bash
# Run tools/valgrind_subset.py under valgrind memcheck and fail on any invalid access, use of
# uninitialised memory or definite leak whose stack passes through lamina's extension. CPython and
# NumPy report their own (by design) errors at start-up and exit; those stacks never touch lamina
# and are counted but not failed on.
#
#   tools/valgrind.sh [PYTHON]
#
# PYTHON: an interpreter with lamina installed (a normal, not a sanitizer, build); without it the
# script builds one in a temporary virtual environment. Needs valgrind, python3 and g++.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { printf '\n==== valgrind: %s (%ss)\n' "$1" "$SECONDS"; }

py=${1:-}
if [ -z "$py" ]; then
    step "build lamina (RelWithDebInfo: symbols and lines in the reports)"
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install -q --upgrade pip
    "$work/venv/bin/pip" install -q numpy scikit-build-core pybind11
    "$work/venv/bin/pip" install -q --no-build-isolation --no-deps \
        --config-settings=cmake.build-type=RelWithDebInfo --config-settings=build-dir="$work/build" "$repo"
    py="$work/venv/bin/python"
fi

step "memcheck on the subset"
xml="$work/memcheck.xml"
set +e
# PYTHONMALLOC=malloc: every allocation goes through malloc, where memcheck can see it.
(cd "$work" && PYTHONMALLOC=malloc PYTHONSAFEPATH=1 valgrind --tool=memcheck --leak-check=full \
    --show-leak-kinds=definite --errors-for-leak-kinds=definite --num-callers=50 \
    --xml=yes --xml-file="$xml" "$py" "$repo/tools/valgrind_subset.py")
rc=$?
set -e

step "summary"
"$py" - "$xml" "$rc" <<'PY'
import os
import sys
import xml.etree.ElementTree as ET


def in_lamina(frame):
    obj = frame.findtext("obj") or ""
    return (os.path.basename(os.path.dirname(obj)) == "lamina" and os.path.basename(obj).startswith("_native")) \
        or "/cpp/" in (frame.findtext("dir") or "") + "/"

path, rc = sys.argv[1], int(sys.argv[2])
errors = list(ET.parse(path).getroot().iter("error"))
ours, others = [], {}
for err in errors:
    kind = err.findtext("kind")
    frames = [f for stack in err.iter("stack") for f in stack.iter("frame")]
    if any(in_lamina(f) for f in frames):
        ours.append((kind, err, frames))
    else:
        others[kind] = others.get(kind, 0) + 1
print(f"memcheck: {len(errors)} reports in total; outside lamina (CPython, NumPy, the loader): "
      f"{sum(others.values())} {dict(sorted(others.items()))}")
print(f"memcheck: reports whose stack passes through lamina's extension: {len(ours)}")
for kind, err, frames in ours[:10]:
    what = err.findtext("what") or err.findtext("xwhat/text") or ""
    print(f"\n{kind}: {what}")
    for f in frames[:15]:
        where = f"{f.findtext('file')}:{f.findtext('line')}" if f.findtext("file") else (f.findtext("obj") or "?")
        print(f"    {f.findtext('fn') or '?'}  ({where})")
if rc != 0:
    sys.exit(f"valgrind: FAILED: the subset exited with status {rc}")
if ours:
    sys.exit(f"valgrind: FAILED: {len(ours)} report(s) in lamina's code")
print("valgrind: OK")
PY
