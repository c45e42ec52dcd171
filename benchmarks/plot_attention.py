"""Plot a ``bench_attention.py`` table: each path's speed against FP16 SDPA's, by context, one
panel per batch size. The table is what the benchmark prints (markdown rows ``| batch |
context | path | GPU time (us) | ...``), saved from its output or copied from RESULTS.md, so
the GPU machine need not have matplotlib.

    python benchmarks/bench_attention.py --batch 1 8 32 --context 4096 32768 > attention.md
    python benchmarks/plot_attention.py attention.md -o attention.png --title "H200, float16"
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*([^|]+?)\s*\|\s*([\d.]+)\s*\|")


def parse_rows(text: str) -> list[dict]:
    """The table's rows as ``{"batch", "context", "path", "us"}``; a row repeated (the
    benchmark prints each case, then the whole table) is kept once."""
    rows = {}
    for line in text.splitlines():
        match = ROW.match(line.strip())
        if match:
            batch, context, path, us = match.groups()
            rows[(int(batch), int(context), path)] = float(us)
    return [{"batch": b, "context": c, "path": p, "us": us} for (b, c, p), us in rows.items()]


def baseline_name(rows: list[dict]) -> str:
    """The dense 16-bit SDPA row every other is compared with (``float16 SDPA`` or ``bfloat16 SDPA``)."""
    names = {r["path"] for r in rows if r["path"].endswith(" SDPA") and r["path"].split()[0] in ("float16", "bfloat16")}
    if len(names) != 1:
        raise ValueError(f"the table needs exactly one 16-bit SDPA path to compare with, found {sorted(names) or 'none'}")
    return names.pop()


def speedups(rows: list[dict]) -> dict[str, dict[int, list[tuple[int, float]]]]:
    """``{path: {batch: [(context, SDPA time / path time), ...]}}``, contexts ascending, for the
    cases that have an SDPA row; the SDPA path itself left out."""
    base = baseline_name(rows)
    sdpa = {(r["batch"], r["context"]): r["us"] for r in rows if r["path"] == base}
    out: dict[str, dict[int, list[tuple[int, float]]]] = {}
    for r in sorted(rows, key=lambda r: (r["batch"], r["context"])):
        key = (r["batch"], r["context"])
        if r["path"] != base and key in sdpa:
            out.setdefault(r["path"], {}).setdefault(r["batch"], []).append((r["context"], sdpa[key] / r["us"]))
    return out


def plot(rows: list[dict], out: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_path = speedups(rows)
    batches = sorted({b for series in by_path.values() for b in series})
    fig, axes = plt.subplots(1, len(batches), figsize=(4.2 * len(batches), 4.0), sharey=True, squeeze=False)
    for ax, batch in zip(axes[0], batches):
        for path, series in by_path.items():
            if batch in series:
                xs, ys = zip(*series[batch])
                ax.plot(xs, ys, marker="o", label=path)
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1)
        ax.set_xscale("log", base=2)
        contexts = sorted({c for series in by_path.values() for c, _ in series.get(batch, [])})
        ax.set_xticks(contexts, [f"{c // 1024}k" if c >= 1024 else str(c) for c in contexts])
        ax.set_xlabel("context (tokens)")
        ax.set_title(f"batch {batch}")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"speed vs {baseline_name(rows)} (x; above 1: faster)")
    axes[0][-1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("table", type=Path, help="bench_attention.py's output (markdown rows)")
    p.add_argument("-o", "--out", type=Path, default=Path("attention.png"))
    p.add_argument("--title", default="")
    p.add_argument("--paths", nargs="+", help="only these paths (as the table names them), beside the SDPA baseline")
    args = p.parse_args(argv)
    rows = parse_rows(args.table.read_text())
    if not rows:
        raise SystemExit(f"{args.table}: no bench_attention.py rows (| batch | context | path | GPU time (us) | ...)")
    if args.paths:
        keep = set(args.paths) | {baseline_name(rows)}
        rows = [r for r in rows if r["path"] in keep]
    print(plot(rows, args.out, args.title))


if __name__ == "__main__":
    main()
