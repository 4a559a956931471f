"""Rows of results and what is derived from them (GB/s, % of the floor, speed-up over stock,
ratio to the ReLU), and the table, JSON and plot they are reported as. Shared by every
backend: a backend only produces rows.

A row is a dict: level ("op", "block" for AlexNet's ReLU + LRN + max-pool, or "model"), name (what was run, e.g. "lrn1"), shape, pass
("forward", ...), impl, kind ("lrn" for an LRN implementation, "yardstick" for the copy and
ReLU rows that set the floor), stats (a timing.Stats), and for op rows bytes_moved.
"""
import json
import os

import numpy as np

# Speed-ups are over the first of these present in a group: stock TensorFlow, or on the
# CuPy backend the stock GPU path (a ReLU, then cuDNN's LRN).
STOCK_IMPLS = ("stock", "relu+cudnn", "relu+cudnn+pool")
YARDSTICKS = ("copy", "relu")


def op_row(name, shape, pass_name, impl, stats, tensor_bytes, tensors, kind="lrn"):
    """An op-level row; tensors = how many tensors of the input's size the fused op must
    move at least (2 forward, 5 forward+backward)."""
    return {"level": "op", "name": name, "shape": list(shape), "pass": pass_name, "impl": impl, "kind": kind,
            "stats": stats, "bytes_moved": int(tensor_bytes * tensors)}


def model_row(name, shape, pass_name, impl, stats):
    return {"level": "model", "name": name, "shape": list(shape), "pass": pass_name, "impl": impl, "kind": "lrn",
            "stats": stats}


def _group(row):
    return row["level"], row["name"], row["pass"], row.get("dtype")


def add_derived(rows):
    """Fills in, per (level, name, pass, dtype) group: floor_ms (the faster yardstick),
    pct_of_floor, gb_per_s, speedup_vs_stock and x_relu (time / the ReLU's time)."""
    groups = {}
    for r in rows:
        groups.setdefault(_group(r), []).append(r)
    for members in groups.values():
        medians = {r["impl"]: r["stats"].median for r in members}
        yardsticks = [medians[name] for name in YARDSTICKS if name in medians]
        floor = min(yardsticks) if yardsticks else None
        stock = next((medians[name] for name in STOCK_IMPLS if name in medians), None)
        for r in members:
            median = r["stats"].median
            if "bytes_moved" in r:
                r["gb_per_s"] = r["bytes_moved"] / (median * 1e-3) / 1e9
            if floor is not None:
                r["floor_ms"] = floor
                r["pct_of_floor"] = 100.0 * floor / median
            r["speedup_vs_stock"] = stock / median if stock and r["kind"] == "lrn" else None
            r["x_relu"] = median / medians["relu"] if "relu" in medians and r["impl"] != "relu" else None
    return rows


def _format_ms(value):
    return f"{value:9.3f}" if value < 100 else f"{value:9.1f}"


def _optional(value, spec, width):
    return format(value, spec) if value is not None else " " * width


def format_table(rows):
    show_dispatch = any(r["stats"].dispatch_ms is not None for r in rows)
    header = (f"{'level':5} {'what':16} {'pass':17} {'impl':14} {'median ms':>9} {'mean +/- sd ms':>19} "
              f"{'min':>9} {'max':>9} " + (f"{'host us':>7} " if show_dispatch else "") +
              f"{'GB/s':>7} {'% floor':>7} {'speed-up':>8} {'x ReLU':>6}")
    lines = [header, "-" * len(header)]
    for r in rows:
        s = r["stats"]
        dispatch = (_optional(s.dispatch_ms * 1e3 if s.dispatch_ms is not None else None, "7.1f", 7) + " "
                    if show_dispatch else "")
        floor = f"{r['pct_of_floor']:6.0f}%" if "pct_of_floor" in r else " " * 7
        speedup = f"{r['speedup_vs_stock']:7.2f}x" if r.get("speedup_vs_stock") else " " * 8
        lines.append(f"{r['level']:5} {r['name']:16} {r['pass']:17} {r['impl']:14} {_format_ms(s.median)} "
                     f"{s.mean:10.3f} +/- {s.sd:6.3f} {_format_ms(s.min)} {_format_ms(s.max)} {dispatch}"
                     f"{_optional(r.get('gb_per_s'), '7.1f', 7)} {floor} {speedup} "
                     f"{_optional(r.get('x_relu'), '5.2f', 5)}{'x' if r.get('x_relu') else ' '}")
    return "\n".join(lines)


LEGEND = ("per call (op) or batch (model); GB/s counts the fused op's least traffic (2 tensors forward, 5 "
          "forward+backward); % floor = the faster of the copy and ReLU rows / time; speed-up = stock / time; "
          "x ReLU = time / the ReLU's time")


def write_json(path, machine, settings, rows):
    results = []
    for r in rows:
        entry = {k: v for k, v in r.items() if k != "stats"}
        entry.update(r["stats"].as_dict())
        results.append(entry)
    with open(path, "w") as f:
        json.dump({"machine": machine, "settings": dict(settings), "results": results}, f, indent=1)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise SystemExit(f"--plot needs matplotlib (pip install matplotlib): {error}")
    return plt


def check_output_paths(json_path, plot_path):
    """The JSON and the plot are written after the run: a path that cannot be written, or a
    plot without matplotlib, is refused now rather than after minutes of timing."""
    for option, path in (("--json", json_path), ("--plot", plot_path)):
        if path is None:
            continue
        directory = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            raise SystemExit(f"{option} {path}: that is a directory; give a file name")
        if not os.path.isdir(directory):
            raise SystemExit(f"{option} {path}: there is no directory {directory}")
        if not os.access(directory, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
            raise SystemExit(f"{option} {path}: not writable")
    if plot_path is not None:
        _pyplot()


def write_plot(path, rows, title):
    """Median times (log scale) with each group's floors drawn across it (dashed: the copy,
    dotted: the ReLU), and the speed-ups over stock."""
    plt = _pyplot()
    groups = sorted({_group(r) for r in rows}, key=lambda g: (["op", "block", "model"].index(g[0]), str(g)))
    impls = [impl for impl in dict.fromkeys(r["impl"] for r in rows) if impl not in YARDSTICKS]
    fig, (ax_time, ax_speed) = plt.subplots(2, 1, figsize=(max(8, 1.8 * len(groups)), 8))
    width = 0.8 / max(1, len(impls))
    by_key = {(_group(r), r["impl"]): r for r in rows}
    for i, impl in enumerate(impls):
        times = [by_key[(g, impl)]["stats"].median if (g, impl) in by_key else 0 for g in groups]
        speedups = [(by_key[(g, impl)].get("speedup_vs_stock") or 0) if (g, impl) in by_key else 0 for g in groups]
        positions = np.arange(len(groups)) + i * width
        ax_time.bar(positions, times, width, label=impl)
        ax_speed.bar(positions, speedups, width, label=impl)
    for index, g in enumerate(groups):
        left, right = index - width / 2, index + 0.8 - width / 2
        for yardstick, style in (("copy", "--"), ("relu", ":")):
            if (g, yardstick) in by_key:
                label = f"{yardstick} (floor)" if index == 0 else None
                ax_time.hlines(by_key[(g, yardstick)]["stats"].median, left, right, colors="black",
                               linestyles=style, label=label)
    labels = ["\n".join(str(part) for part in g if part) for g in groups]
    for ax in (ax_time, ax_speed):
        ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, labels, fontsize=8)
        ax.legend(fontsize=8)
    ax_time.set_ylabel("median ms")
    ax_time.set_yscale("log")
    ax_speed.set_ylabel("speed-up over stock")
    ax_speed.axhline(1.0, color="gray", linewidth=0.8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
