"""latest.png: time and memory of both engines, with the issue's targets drawn in."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _median_run(summary: dict[str, Any]) -> dict[str, Any]:
    """The run with the median total, so its stacked phases add up to the median shown."""
    runs = sorted(summary["runs"], key=lambda r: r["total_ms"])
    return dict(runs[(len(runs) - 1) // 2])


def draw(result: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lb, pp, xl = result["loadbay"], result["papaparse"], result["xlsx"]
    csv = result["files"]["csv"]
    fig, (ax_t, ax_m, ax_x) = plt.subplots(1, 3, figsize=(14, 4.8))
    fig.suptitle(
        f"loadbay vs PapaParse, {csv['rows']:,} rows x {csv['cols']} cols CSV "
        f"({csv['bytes'] / 1e6:.0f} MB), median of {result['runs']}, "
        f"{result['machine']['nproc']} cores, Chromium {result['machine']['chromium']}"
    )

    # Time: loadbay's phases stacked (median run), PapaParse's total; whiskers: min-max.
    phases = [
        ("copy_ms", "mount + packages", "#9ecae1"),
        ("parse_ms", "parse", "#3182bd"),
        ("match_ms", "match", "#6baed6"),
        ("validate_ms", "validate", "#08519c"),
    ]
    bottom = 0.0
    middle = _median_run(lb)
    for key, label, colour in phases:
        value = (middle.get(key) or 0) / 1000
        ax_t.bar(0, value, bottom=bottom, color=colour, label=label)
        bottom += value
    ax_t.bar(1, pp["total_ms"] / 1000, color="#e6550d", label="PapaParse + JS rules")
    for x, summary in ((0, lb), (1, pp)):
        s = summary["stats"]["total_ms"]
        ax_t.errorbar(
            x,
            s["median"] / 1000,
            yerr=[[(s["median"] - s["min"]) / 1000], [(s["max"] - s["median"]) / 1000]],
            color="black",
            capsize=6,
        )
        ax_t.text(x, s["max"] / 1000, f" {s['median'] / 1000:.2f} s", ha="center", va="bottom")
    ax_t.axhline(4, color="grey", linestyle="--", linewidth=1, label="target 4 s")
    ax_t.set_xticks([0, 1], ["loadbay", "PapaParse"])
    ax_t.set_ylabel("seconds (boot excluded)")
    speed = result["ratio_speed"]
    ax_t.set_title(f"CSV parse + validate (PapaParse / loadbay = {speed:.2f})" if speed else "CSV")
    top = max(lb["stats"]["total_ms"]["max"], pp["stats"]["total_ms"]["max"], 4000) / 1000
    ax_t.set_ylim(0, top * 1.5)
    ax_t.legend(fontsize=7, loc="upper right", ncol=2)

    # Memory: peak tab RSS / file size.
    ratios = [result["ratio_mem"] or 0, result["ratio_mem_papaparse"] or 0]
    bars = ax_m.bar([0, 1], ratios, color=["#3182bd", "#e6550d"])
    for bar, summary in zip(bars, (lb, pp), strict=True):
        peak = summary["peak_mem_bytes"] or 0
        ax_m.text(
            bar.get_x() + bar.get_width() / 2,
            bar.get_height(),
            f"{peak / 1e6:.0f} MB",
            ha="center",
            va="bottom",
        )
    ax_m.axhline(3, color="grey", linestyle="--", linewidth=1, label="target 3x")
    ax_m.set_xticks([0, 1], ["loadbay", "PapaParse"])
    ax_m.set_ylabel("peak tab RSS / file size")
    ax_m.set_title("Peak tab memory")
    ax_m.set_ylim(0, max(*ratios, 3) * 1.2)
    ax_m.legend(fontsize=8)

    # Excel.
    if xl.get("skipped"):
        ax_x.text(0.5, 0.5, f"xlsx skipped:\n{xl.get('note', '')}", ha="center", wrap=True)
        ax_x.set_axis_off()
    else:
        xfile = result["files"]["xlsx"]
        bottom = 0.0
        middle = _median_run(xl)
        for key, label, colour in phases:
            value = (middle.get(key) or 0) / 1000
            ax_x.bar(0, value, bottom=bottom, color=colour, label=label)
            bottom += value
        s = xl["stats"]["total_ms"]
        ax_x.errorbar(
            0,
            s["median"] / 1000,
            yerr=[[(s["median"] - s["min"]) / 1000], [(s["max"] - s["median"]) / 1000]],
            color="black",
            capsize=6,
        )
        ax_x.text(0, s["max"] / 1000, f" {s['median'] / 1000:.2f} s", ha="center", va="bottom")
        ax_x.axhline(20, color="grey", linestyle="--", linewidth=1, label="target 20 s")
        ax_x.set_xlim(-1, 1)
        ax_x.set_xticks([0], ["loadbay"])
        ax_x.set_ylim(0, max(s["max"] / 1000, 20) * 1.5)
        ax_x.set_ylabel("seconds")
        ax_x.set_title(f"xlsx {xfile['rows']:,} rows ({xfile['bytes'] / 1e6:.0f} MB)")
        ax_x.legend(fontsize=7, loc="upper right", ncol=2)

    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
