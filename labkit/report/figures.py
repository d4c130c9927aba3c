"""Static plots of the cohort view (matplotlib, Agg backend): heatmaps, KPI trajectories, mentor load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen first)
from matplotlib.colors import ListedColormap  # noqa: E402

LEVEL_COLOURS = ["#eeeeee", "#fde0c5", "#f9b984", "#6baed6", "#2171b5"]
"""Not rated, then levels 1-4 (warm = sandbox only, blue = production levels 3-4)."""


def heatmap(path: Path, trainees: list[str], capabilities: list[str], levels: dict[str, dict[str, Any]],
            title: str, red: set[str]) -> Path:
    """Trainee x capability levels; red-zone capabilities labelled in red."""
    grid = [[(levels.get(t, {}).get(c) or 0) for c in capabilities] for t in trainees]
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * len(capabilities), 1.6 + 0.38 * len(trainees)), dpi=110)
    ax.imshow(grid, cmap=ListedColormap(LEVEL_COLOURS), vmin=-0.5, vmax=4.5, aspect="auto")
    for i, row in enumerate(grid):
        for j, level in enumerate(row):
            ax.text(j, i, str(level) if level else "-", ha="center", va="center", fontsize=8,
                    color="white" if level >= 3 else "#333333")
    ax.set_xticks(range(len(capabilities)), capabilities, rotation=55, ha="right", fontsize=8)
    ax.set_yticks(range(len(trainees)), trainees, fontsize=8)
    for label in ax.get_xticklabels():
        if label.get_text() in red:
            label.set_color("#c0392b")
            label.set_fontweight("bold")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def trajectory(path: Path, kpi: dict[str, Any], days: list[int], series: dict[str, list[float | None]],
               median: list[float | None]) -> Path:
    """One KPI by program day: each trainee faint, the cohort median bold, the target dashed."""
    fig, ax = plt.subplots(figsize=(4.2, 2.6), dpi=110)
    for values in series.values():
        ax.plot(days, [float("nan") if v is None else v for v in values], color="#9ecae1", lw=0.8, alpha=0.7)
    ax.plot(days, [float("nan") if v is None else v for v in median], color="#08519c", lw=2, marker="o",
            ms=3, label="cohort median")
    if kpi.get("target") is not None:
        ax.axhline(kpi["target"], color="#c0392b", ls="--", lw=1, label=f"target {kpi['target']:g}")
        ax.axvline(kpi["target_by_day"], color="#c0392b", ls=":", lw=0.8)
    ax.set_xlabel("program day", fontsize=8)
    ax.set_ylabel(kpi["unit"], fontsize=8)
    ax.set_title(kpi["name"], fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def mentor_bars(path: Path, mentors: list[Any]) -> Path:
    """Sessions and reviews of the last 30 days per mentor, and how many trainees each carries."""
    names = [m.mentor for m in mentors]
    fig, ax = plt.subplots(figsize=(4.6, 2.6), dpi=110)
    x = range(len(names))
    ax.bar([i - 0.27 for i in x], [len(m.trainees) for m in mentors], width=0.27, label="trainees", color="#6baed6")
    ax.bar(list(x), [m.sessions_30d for m in mentors], width=0.27, label="sessions (30 d)", color="#2171b5")
    ax.bar([i + 0.27 for i in x], [m.reviews_30d for m in mentors], width=0.27, label="reviews (30 d)", color="#f9b984")
    ax.set_xticks(list(x), names, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)
    ax.set_title("Mentor load", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
