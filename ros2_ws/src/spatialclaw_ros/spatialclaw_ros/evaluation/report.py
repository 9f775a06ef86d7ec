"""The run's report from ``results.jsonl``: per-category and overall scores per interface side by side, cost per
question, plots, and the worst questions linked to their session reports; as ``summary.md`` (plots in
``plots/``) and a self-contained ``report.html`` (plots embedded).
"""

from __future__ import annotations

import base64
import html
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)

from ..session_log.log import REPORT_FILE  # noqa: E402
from .dataset import RowProblem  # noqa: E402

SUMMARY_FILE = "summary.md"
HTML_FILE = "report.html"
PLOTS_DIR = "plots"
WORST = 10
COST_KEYS = (("tokens", "tokens / q"), ("model_s", "model s / q"), ("perception_s", "perception s / q"),
             ("kernel_s", "kernel s / q"), ("elapsed_s", "wall s / q"))


@dataclass
class InterfaceScores:
    """One interface's scores: per category (mean, count), over all questions, and the mean of the categories."""

    interface: str
    categories: dict[str, tuple[float, int]]
    overall: float
    category_mean: float
    count: int
    costs: dict[str, float] = field(default_factory=dict)


def _tokens(record: dict) -> float:
    return float((record.get("tokens") or {}).get("total_tokens") or 0)


def summarise(records: list[dict], order: Sequence[str] = ()) -> list[InterfaceScores]:
    """Scores and mean cost per interface, those in ``order`` first (in that order), then as they appear."""
    by_interface: dict[str, list[dict]] = {name: [] for name in order}
    for record in records:
        by_interface.setdefault(record["interface"], []).append(record)
    summaries = []
    for interface, rows in by_interface.items():
        if not rows:
            continue
        groups: dict[str, list[float]] = defaultdict(list)
        for row in rows:
            groups[row["question_type"]].append(row["score"])
        categories = {name: (statistics.fmean(scores), len(scores)) for name, scores in sorted(groups.items())}
        costs = {key: statistics.fmean(_tokens(row) if key == "tokens" else float(row.get(key) or 0.0) for row in rows)
                 for key, _ in COST_KEYS}
        for extra in sorted({key for row in rows for key in (row.get("cost") or {})}):
            values = [row["cost"][extra] for row in rows if isinstance((row.get("cost") or {}).get(extra), (int, float))]
            if values:
                costs[extra] = statistics.fmean(values)
        summaries.append(InterfaceScores(interface, categories, statistics.fmean(r["score"] for r in rows),
                                         statistics.fmean(mean for mean, _ in categories.values()), len(rows), costs))
    return summaries


def comparison_table(summaries: list[InterfaceScores]) -> list[list[str]]:
    """Rows of the side-by-side table: interface, overall, mean of categories, then each category (percent)."""
    categories = sorted({name for summary in summaries for name in summary.categories})
    table = [["interface", "questions", "overall", "category mean", *categories]]
    for summary in summaries:
        cells = [f"{100 * summary.categories[name][0]:.1f} ({summary.categories[name][1]})"
                 if name in summary.categories else "-" for name in categories]
        table.append([summary.interface, str(summary.count), f"{100 * summary.overall:.1f}",
                      f"{100 * summary.category_mean:.1f}", *cells])
    return table


def cost_table(summaries: list[InterfaceScores]) -> list[list[str]]:
    """Rows of the mean cost per question per interface (the cost stream's figures too when present)."""
    keys = list(dict.fromkeys(key for summary in summaries for key in summary.costs))
    labels = dict(COST_KEYS)
    table = [["interface", *(labels.get(key, f"{key} / q") for key in keys)]]
    for summary in summaries:
        table.append([summary.interface, *(f"{summary.costs[key]:.2f}" if key in summary.costs else "-" for key in keys)])
    return table


def worst_questions(records: list[dict], count: int = WORST) -> list[dict]:
    """The lowest-scoring questions (slowest first among equals)."""
    return sorted(records, key=lambda r: (r["score"], -float(r.get("elapsed_s") or 0.0)))[:count]


def _plots(records: list[dict], summaries: list[InterfaceScores], folder: Path) -> dict[str, Path]:
    """accuracy.png (per category), scores.png (distribution), cost.png (latency and tokens per question)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    categories = sorted({name for summary in summaries for name in summary.categories})
    width = 0.8 / max(len(summaries), 1)
    figure, axes = plt.subplots(figsize=(max(6.0, 1.2 * len(categories) + 2), 3.6))
    for number, summary in enumerate(summaries):
        values = [100 * summary.categories.get(name, (0.0, 0))[0] for name in categories]
        axes.bar([i + number * width for i in range(len(categories))], values, width, label=summary.interface)
    axes.set_xticks([i + width * (len(summaries) - 1) / 2 for i in range(len(categories))], categories, rotation=20,
                    ha="right", fontsize=8)
    axes.set_ylabel("score (%)")
    axes.set_ylim(0, 100)
    axes.set_title("Score per category")
    axes.legend(fontsize=8)
    paths["accuracy"] = _save(figure, folder / "accuracy.png")
    figure, axes = plt.subplots(figsize=(6, 3.2))
    axes.hist([[r["score"] for r in records if r["interface"] == s.interface] for s in summaries], bins=10,
              range=(0, 1), label=[s.interface for s in summaries])
    axes.set_xlabel("score per question")
    axes.set_ylabel("questions")
    axes.set_title("Score distribution")
    axes.legend(fontsize=8)
    paths["scores"] = _save(figure, folder / "scores.png")
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    for summary in summaries:
        rows = sorted((r for r in records if r["interface"] == summary.interface), key=lambda r: r["id"])
        left.plot(range(1, len(rows) + 1), [float(r.get("elapsed_s") or 0.0) for r in rows], "o-", label=summary.interface)
        right.plot(range(1, len(rows) + 1), [_tokens(r) for r in rows], "o-", label=summary.interface)
    left.set_xlabel("question (by id)")
    left.set_ylabel("wall time (s)")
    left.set_title("Latency per question")
    right.set_xlabel("question (by id)")
    right.set_ylabel("tokens")
    right.set_title("Tokens per question")
    left.legend(fontsize=8)
    paths["cost"] = _save(figure, folder / "cost.png")
    return paths


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _markdown_table(table: list[list[str]]) -> str:
    lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join(row) + " |" for row in table[1:]]
    return "\n".join(lines)


def _html_table(table: list[list[str]], link_last: bool = False) -> str:
    """An HTML table, everything escaped; ``link_last`` makes the last cell of each row a link to itself."""
    def cell(text: str, link: bool) -> str:
        text = html.escape(text)
        return f'<td><a href="{text}">{text}</a></td>' if link else f"<td>{text}</td>"

    head = "".join(f"<th>{html.escape(name)}</th>" for name in table[0])
    body = "".join("<tr>" + "".join(cell(text, link_last and i == len(row) - 1) for i, text in enumerate(row)) + "</tr>"
                   for row in table[1:])
    return f"<table><tr>{head}</tr>{body}</table>"


def _worst_rows(records: list[dict]) -> list[list[str]]:
    rows = [["id", "interface", "category", "score", "predicted (SI)", "truth (SI)", "status", "session"]]
    for record in worst_questions(records):
        predicted = record.get("predicted")
        rows.append([record["id"], record["interface"], record["question_type"], f"{record['score']:.2f}",
                     "-" if predicted is None else (f"{predicted:.3g}" if isinstance(predicted, float) else str(predicted)),
                     f"{record['truth']:.3g}" if isinstance(record["truth"], float) else str(record["truth"]),
                     record["error_code"] or record["status"], f"{record['session_dir']}/{REPORT_FILE}"])
    return rows


def write_report(out: str | Path, records: list[dict], bad_rows: list[RowProblem], *, title: str = "spatialclaw eval",
                 note: str = "", order: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write ``summary.md`` and ``report.html`` into ``out`` (interfaces in ``order`` first); returns their paths."""
    out = Path(out)
    summaries = summarise(records, order)
    plots = _plots(records, summaries, out / PLOTS_DIR) if records else {}
    comparison, costs, worst = comparison_table(summaries), cost_table(summaries), _worst_rows(records)
    md = [f"# {title}", "", note, "", "## Scores (percent; per category: score (questions))", "",
          _markdown_table(comparison), "", "Multiple choice: exact letter match; numbers: mean relative accuracy "
          "(VSI-Bench MRA, thresholds 0.50-0.95).", "", "## Cost per question (means)", "", _markdown_table(costs), "",
          *(f"![{name}]({PLOTS_DIR}/{path.name})" for name, path in plots.items()), "",
          f"## Worst questions (lowest score first; {REPORT_FILE} is the session report)", "",
          _markdown_table([row[:-1] + [f"[report]({row[-1]})"] if i else row for i, row in enumerate(worst)]), ""]
    if bad_rows:
        md += ["## Rows skipped", "", *(f"- `{p.id}` ({p.where}): {p.reason}" for p in bad_rows), ""]
    summary_path = out / SUMMARY_FILE
    summary_path.write_text("\n".join(md), encoding="utf-8")
    images = "".join(f'<figure><img alt="{name}" src="data:image/png;base64,'
                     f'{base64.b64encode(path.read_bytes()).decode()}"></figure>' for name, path in plots.items())
    skipped = "".join(f"<li><code>{html.escape(p.id)}</code> ({html.escape(p.where)}): {html.escape(p.reason)}</li>"
                      for p in bad_rows)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif;margin:2em;max-width:72em}table{border-collapse:collapse;margin:1em 0}"
            "td,th{border:1px solid #bbb;padding:.25em .6em;text-align:right}th{background:#eee}"
            "img{max-width:100%}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(note)}</p><h2>Scores (percent)</h2>"
            f"{_html_table(comparison)}<h2>Cost per question (means)</h2>{_html_table(costs)}{images}"
            f"<h2>Worst questions</h2>{_html_table(worst, link_last=True)}"
            + (f"<h2>Rows skipped</h2><ul>{skipped}</ul>" if skipped else "") + "</body></html>")
    html_path = out / HTML_FILE
    html_path.write_text(page, encoding="utf-8")
    return summary_path, html_path
