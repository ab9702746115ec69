"""Run one fuzz target of tests/fuzz/fuzz_targets.py for a bounded time and report the executions.

    python tools/fuzz.py load --seconds 60
    python tools/fuzz.py bindings --seconds 60 --engine random

Engines: "atheris" (coverage-guided libFuzzer over lamina's Python code, used when atheris is
installed) and "random" (random and mutated inputs, no dependency). A failing input (an exception
the target does not allow, or a crash) is written to the artifacts directory and the exit status is
non-zero; add it to tests/fuzz/regressions/ as <target>-<name>.bin so the test suite replays it.
"""
import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
FUZZ_DIR = os.path.join(os.path.dirname(HERE), "tests", "fuzz")


def seed_corpus(targets, name, directory):
    """Starting inputs: for load, every seed archive in raw and structured mode."""
    os.makedirs(directory, exist_ok=True)
    seeds = [b"", b"\x01", b"\x00PK\x03\x04"]
    if name == "load":
        for i, archive in enumerate(targets.seed_archives()):
            seeds += [b"\x00" + archive, b"\x02" + archive, bytes([1, i]), bytes([3, i, 1, 2, 3])]
    else:
        seeds += [bytes([i]) * 8 for i in range(len(targets.NATIVE_SIGNATURES))]
    for i, seed in enumerate(seeds):
        with open(os.path.join(directory, f"seed-{i}"), "wb") as f:
            f.write(seed)
    return seeds


def run_atheris(name, seconds, artifacts):
    import atheris

    sys.path.insert(0, FUZZ_DIR)
    # Coverage feedback from lamina's Python code and the zip reader it drives.
    with atheris.instrument_imports(include=["lamina", "zipfile", "fuzz_targets"]):
        import fuzz_targets as targets
    corpus = os.path.join(artifacts, f"corpus-{name}")
    seed_corpus(targets, name, corpus)
    target = getattr(targets, f"{name}_target")
    scratch = tempfile.mkdtemp(prefix="lamina-fuzz-")

    def one_input(data):
        if name == "load":
            target(data, scratch)
        else:
            target(data)

    args = [sys.argv[0], f"-max_total_time={seconds}", "-print_final_stats=1", "-timeout=20",
            "-rss_limit_mb=4096", "-max_len=65536", f"-artifact_prefix={artifacts}{os.sep}", corpus]
    atheris.Setup(args, one_input)
    atheris.Fuzz()  # exits the process: 0 when the time is up, non-zero on a failing input


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(4)
        if op == 0 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif op == 1:
            data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
        elif op == 2 and data:
            del data[rng.randrange(len(data))]
        else:
            cut = rng.randrange(len(data) + 1)
            data = data[:cut] + bytes(rng.randrange(256) for _ in range(rng.randrange(16))) + data[cut:]
    return bytes(data)


def run_random(name, seconds, artifacts):
    sys.path.insert(0, FUZZ_DIR)
    import fuzz_targets as targets

    target = getattr(targets, f"{name}_target")
    pool = seed_corpus(targets, name, os.path.join(artifacts, f"corpus-{name}"))
    rng = random.Random(int(os.environ.get("LAMINA_FUZZ_SEED", "0")))
    current = os.path.join(artifacts, f"current-{name}")  # kept if the process dies on this input
    executions, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        if rng.random() < 0.5:
            data = mutate(rng, rng.choice(pool))
        else:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1024)))
        with open(current, "wb") as f:
            f.write(data)
        try:
            target(data)
        except Exception:
            path = os.path.join(artifacts, f"failure-{name}-{executions}")
            os.replace(current, path)
            traceback.print_exc()
            print(f"FAILED after {executions} executions; input written to {path}")
            return 1
        executions += 1
        if executions % 64 == 0:
            pool.append(data)
    os.unlink(current)
    print(f"stat::number_of_executed_units: {executions}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("target", choices=["load", "bindings"])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--engine", choices=["auto", "atheris", "random"], default="auto")
    parser.add_argument("--artifacts", default=os.path.join(tempfile.gettempdir(), "lamina-fuzz"))
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.makedirs(args.artifacts, exist_ok=True)
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401
            engine = "atheris"
        except ImportError:
            engine = "random"

    if args.inner:  # the fuzzing process itself
        if engine == "atheris":
            run_atheris(args.target, args.seconds, args.artifacts)
        sys.exit(run_random(args.target, args.seconds, args.artifacts))

    # Run the fuzzer in a child so that a crash (a signal) is reported here with the figures.
    start = time.monotonic()
    cmd = [sys.executable, os.path.abspath(__file__), args.target, "--seconds", str(args.seconds), "--engine", engine,
           "--artifacts", args.artifacts, "--inner"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    elapsed = time.monotonic() - start
    log = os.path.join(args.artifacts, f"log-{args.target}.txt")
    with open(log, "w") as f:
        f.write(proc.stdout)
    found = re.findall(r"stat::number_of_executed_units:\s*(\d+)", proc.stdout)
    executions = int(found[-1]) if found else None
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-6000:])
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit status {proc.returncode}"
        print(f"fuzz {args.target}: FAILED ({how}) after {elapsed:.0f} s, engine {engine}; "
              f"artifacts and log in {args.artifacts}")
        return 1
    if executions is None:
        print(f"fuzz {args.target}: no execution count in the fuzzer's output; see {log}")
        return 1
    print(f"fuzz {args.target}: {executions} executions in {elapsed:.0f} s ({executions / max(elapsed, 1e-9):.0f}/s), "
          f"engine {engine}, no failure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
