"""Sweep outputs: results.json, summary.csv, tables.md (the paper's Tables 5-10 layout) and plots."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import statistics
from pathlib import Path


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a kill mid-write leaves the previous file whole."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


METRICS = {
    "perplexity": "Perplexity",
    "kl_divergence": "KL divergence from the clean fp16 run (nats/token)",
    "top5_accuracy": "Top-5 accuracy",
    "catastrophic_rate": "Catastrophic-failure rate (windows)",
    "corrected": "Corrected codewords (per trial)",
    "parity_only": "Parity-only codewords: the overall parity bit alone flipped, data valid (per trial)",
    "detected": "Detected-uncorrectable codewords (per trial)",
    "silent": "Silent corruptions (values, per trial)",
    "meta_corrected": "Corrected scale codewords (per trial)",
    "meta_detected": "Detected-uncorrectable scale codewords (per trial)",
    "meta_silent": "Silent corruptions of scales and zero points (words, per trial)",
}
COUNTS = ("corrected", "parity_only", "detected", "silent", "meta_corrected", "meta_detected", "meta_silent")

# Two-sided 95% Student-t quantiles by degrees of freedom (scipy.stats.t.ppf(0.975, dof)).
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042}


def t975(dof: int) -> float:
    if dof in _T975:
        return _T975[dof]
    below = [d for d in _T975 if d <= dof]
    return _T975[max(below)] if dof <= 30 else 1.96


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and 95% confidence half-width across seeds (0 for one seed, inf if any is inf)."""
    if any(not math.isfinite(v) for v in values):
        return math.inf, math.inf
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, t975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def summarize(records: list[dict]) -> list[dict]:
    groups: dict[tuple[str, float], list[dict]] = {}
    for r in records:
        groups.setdefault((r["mode"], r["ber"]), []).append(r)
    rows = []
    for (mode, ber), rs in groups.items():
        row = {"mode": mode, "ber": ber, "seeds": len(rs)}
        for metric in METRICS:
            # Trials written before a counter existed count as 0 of it.
            row[metric], row[f"{metric}_ci95"] = mean_ci([r.get(metric, 0) for r in rs])
        rows.append(row)
    return rows


def _fmt(mean: float, ci: float, metric: str) -> str:
    if not math.isfinite(mean):
        return "inf"
    if metric in COUNTS:
        return f"{mean:.0f} ± {ci:.0f}"
    digits = 5 if metric == "perplexity" else 4
    return f"{mean:.{digits}g} ± {ci:.2g}"


def tables_markdown(summary: list[dict]) -> str:
    modes = list(dict.fromkeys(r["mode"] for r in summary))
    bers = sorted({r["ber"] for r in summary})
    by = {(r["mode"], r["ber"]): r for r in summary}
    out = []
    for metric, title in METRICS.items():
        out.append(f"### {title}\n")
        out.append("| mode | " + " | ".join(f"BER {b:g}" for b in bers) + " |")
        out.append("|---|" + "---:|" * len(bers))
        for mode in modes:
            cells = [_fmt(by[(mode, b)][metric], by[(mode, b)][f"{metric}_ci95"], metric) if (mode, b) in by else "-" for b in bers]
            out.append(f"| {mode} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def plot(summary: list[dict], directory: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    directory.mkdir(exist_ok=True)
    paths = []
    modes = list(dict.fromkeys(r["mode"] for r in summary))
    nonzero = [r["ber"] for r in summary if r["ber"] > 0]
    linthresh = min(nonzero) if nonzero else 1e-4
    for metric, title in METRICS.items():
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for mode in modes:
            rows = sorted((r for r in summary if r["mode"] == mode), key=lambda r: r["ber"])
            xs = [r["ber"] for r in rows]
            ys = [r[metric] if math.isfinite(r[metric]) else float("nan") for r in rows]
            err = [r[f"{metric}_ci95"] if math.isfinite(r[f"{metric}_ci95"]) else 0.0 for r in rows]
            infinite = [f"{r['ber']:g}" for r in rows if not math.isfinite(r[metric])]
            label = mode + (f" (inf at BER {', '.join(infinite)})" if infinite else "")
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=label)
        ax.set_xscale("symlog", linthresh=linthresh)  # log scale that still shows BER 0
        if metric == "perplexity":
            ax.set_yscale("log")
            # plain numbers (86.7, 130), not 6 x 10^1; minor ticks labelled too, since a
            # perplexity axis often spans less than a decade
            plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(plain)
        elif metric in COUNTS:  # the codes cut counts by orders of magnitude; 0 stays on the axis
            ax.set_yscale("symlog", linthresh=1)
        ax.set_xlabel("bit error rate")
        ax.set_ylabel(title.split(" (")[0])
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = directory / f"{metric}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def write_reports(out: Path, records: list[dict], settings, environment: dict) -> None:
    summary = summarize(records)
    atomic_write(
        out / "results.json",
        json.dumps({"settings": dataclasses.asdict(settings), "environment": environment, "trials": records}, indent=2),
    )
    columns = ["mode", "ber", "seeds"] + [c for m in METRICS for c in (m, f"{m}_ci95")]
    tmp = out / "summary.csv.tmp"
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(summary)
    tmp.replace(out / "summary.csv")
    header = (
        f"# Sweep: {settings.model}\n\nFault model {settings.fault_model} at the {settings.fault_site} site, striking "
        f"{'every stored byte (values, scales, zero points)' if settings.fault_targets == 'all' else 'the value bytes only'}; "
        f"windows of {settings.window} tokens, stride {settings.stride}, {records[0]['windows'] if records else 0} windows per trial; "
        f"mean ± 95% CI across seeds {settings.seeds}.\n\n"
    )
    atomic_write(out / "tables.md", header + tables_markdown(summary))
    plot(summary, out / "plots")
