"""Turn a pytest-benchmark JSON file (--benchmark-json) into Markdown tables, one per benchmark group,
and a PNG plot of GFLOP/s against size for the square sgemm cases.

Usage: python benches/report.py results.json [more.json ...] [--markdown out.md] [--plot out.png]"""
import argparse
import json
import sys
from collections import defaultdict

LIBRARY_ORDER = ["lamina", "lamina-python", "numpy", "torch", "keras"]
BUSY = 0.05  # other processes' share of the CPU above which a row is marked as disturbed
GROUP_ORDER = ["sgemm", "dgemm", "dense forward", "dense backward", "train step", "predict"]


def load_rows(paths):
    """One dict per benchmark, from every file: group, library, threads, median (s), flops (or None),
    size, dtype, other processes' CPU share; and the first file's header (machine, date)."""
    rows, data = [], None
    for path in paths:
        with open(path) as f:
            file_data = json.load(f)
        data = data or file_data
        rows += _rows(file_data)
    return data, rows


def _rows(data):
    rows = []
    for bench in data["benchmarks"]:
        info = bench.get("extra_info", {})
        rows.append({
            "group": bench.get("group") or bench["name"],
            "library": info.get("library", bench["name"]),
            "threads": info.get("threads"),
            "median": bench["stats"]["median"],
            "flops": info.get("flops"),
            "size": info.get("size"),
            "dtype": info.get("dtype"),
            "foreign": info.get("foreign_cpu"),
        })
    return rows


def format_time(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def library_rank(name):
    return LIBRARY_ORDER.index(name) if name in LIBRARY_ORDER else len(LIBRARY_ORDER)


def group_rank(name):
    """GEMM first, then dense layers, then training; within a kind, the run's order (by size)."""
    return next((i for i, prefix in enumerate(GROUP_ORDER) if name.startswith(prefix)), len(GROUP_ORDER))


def group_table(rows, peak=None):
    """Markdown lines for one group: every library at every thread count, with its share of the
    machine's measured FMA peak (per core times threads), lamina's speed-up over each peer at the
    same thread count and each library's gain from 1 to 2 threads."""
    median = {(r["library"], r["threads"]): r["median"] for r in rows}
    lines = ["| threads | library | median | GFLOP/s | of peak | lamina speed-up | 2 threads / 1 |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["threads"] or 0, library_rank(r["library"]))):
        rate = r["flops"] / r["median"] / 1e9 if r["flops"] else None
        gflops = f"{rate:.3g}" if rate else ""
        share = f"{100 * rate / (peak * (r['threads'] or 1)):.2g}%" if rate and peak else ""
        lamina = median.get(("lamina", r["threads"]))
        speedup = f"{r['median'] / lamina:.2f}×" if lamina and r["library"] != "lamina" else ""
        one = median.get((r["library"], 1))
        scaling = f"{one / r['median']:.2f}×" if r["threads"] == 2 and one else ""
        mark = "*" if (r["foreign"] or 0) > BUSY else ""
        lines.append(f"| {r['threads']} | {r['library']} | {format_time(r['median'])}{mark} | {gflops} "
                     f"| {share} | {speedup} | {scaling} |")
    return lines


def markdown(data, rows):
    groups = defaultdict(list)
    for r in rows:  # dicts keep the run's order, which follows the parametrized sizes
        groups[r["group"]].append(r)
    machine = data.get("machine_info", {})
    cpu = machine.get("cpu", {}).get("brand_raw", "unknown CPU")
    model = machine.get("cpu_model")
    if model:
        cpu = (f"{model['cpu']} ({model['cpu_vendor']} family {model['cpu_family']:#x} "
               f"model {model['cpu_model']:#x})")
    peaks = machine.get("fma_peak_gflops_per_core", {})
    peak = max(peaks.values()) if peaks else None
    lines = [f"Medians on {cpu}, run started {data.get('datetime', '')[:16]}. "
             "lamina speed-up = peer median / lamina median at the same thread count."]
    if peaks:
        lines.append("Measured float32 FMA peak of one core (benches/fma_peak.cpp): "
                     + ", ".join(f"{isa} {value:.0f} GFLOP/s" for isa, value in peaks.items())
                     + "; \"of peak\" divides by the widest one times the threads.")
    lamina_path = machine.get("lamina_isa")
    if lamina_path and machine.get("lamina_isa_supported"):
        lamina_path += f", of the paths it could use here: {', '.join(machine['lamina_isa_supported'])}"
    paths = {"lamina": lamina_path, **machine.get("peers", {})}
    lines.append("Kernel paths: " + "; ".join(f"{lib} {path}" for lib, path in paths.items() if path) + ".")
    if any((r["foreign"] or 0) > BUSY for r in rows):
        lines.append(f"Rows marked * ran while other processes used more than {BUSY:.0%} of the "
                     "machine's CPU: rerun them on an idle machine before trusting them.")
    lines.append("")
    for name, group_rows in sorted(groups.items(), key=lambda kv: group_rank(kv[0])):
        lines += [f"### {name}", ""] + group_table(group_rows, peak) + [""]
    return "\n".join(lines)


def plot(rows, path):
    try:
        import matplotlib
    except ImportError:
        sys.exit("--plot needs matplotlib: pip install matplotlib")
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    lines = defaultdict(list)
    for r in rows:
        if r["group"].startswith("sgemm") and r["flops"] and r["size"]:
            lines[(r["library"], r["threads"])].append((r["size"], r["flops"] / r["median"] / 1e9))
    if not lines:
        sys.exit("no sgemm cases with flops in this file: nothing to plot")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    # one colour per library, solid for 1 thread and dashed for 2, so each library's pair reads together
    colours = {lib: f"C{i}" for i, lib in enumerate(sorted({lib for lib, _ in lines}, key=library_rank))}
    for (library, threads), points in sorted(lines.items(), key=lambda kv: (library_rank(kv[0][0]), kv[0][1])):
        sizes, gflops = zip(*sorted(points))
        ax.plot(sizes, gflops, marker="o", color=colours[library], linestyle="-" if threads == 1 else "--",
                label=f"{library}, {threads} thread{'s' if threads > 1 else ''}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({s for pts in lines.values() for s, _ in pts}))
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("n (C = A @ B, all n x n, float32)")
    ax.set_ylabel("GFLOP/s (median)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title("Square sgemm")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="+", help="file(s) written by pytest --benchmark-json")
    parser.add_argument("--markdown", metavar="OUT.md", help="also write the tables to this file")
    parser.add_argument("--plot", metavar="OUT.png", help="write the sgemm GFLOP/s plot to this file")
    args = parser.parse_args(argv)
    data, rows = load_rows(args.json)
    text = markdown(data, rows)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    if args.plot:
        plot(rows, args.plot)
    print(text)


if __name__ == "__main__":
    main()
