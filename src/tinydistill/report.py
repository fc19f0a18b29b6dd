"""Run reports people look at: ``report.html`` (one self-contained file, images embedded) and
``report.md`` (PNG files beside it) in every stage folder and pipeline run.

Contents: the resolved configuration and the environment; curves over steps (total loss and each
loss term, learning rate, dev metric at each evaluation); the final teacher-vs-student table
(task metric, % kept, parameters, size on disk, latency at batch 1, throughput at batch 32, all
measured in the same run); for the pipeline, one row per stage.
"""

from __future__ import annotations

import base64
import html
import os
import platform
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from tinydistill.data.loaders import encode_examples  # noqa: E402
from tinydistill.registry import kinds  # noqa: E402
from tinydistill.speed import count_parameters, measure_speed, size_on_disk  # noqa: E402

PLOTS_DIR = "plots"
NON_TERMS = {"step", "lr", "loss"}


@dataclass
class ModelEntry:
    """A model to put in the final table: in memory, where it is saved, its dev score (if any), its own
    tokenizer where it differs from the table's (a teacher of another vocabulary), and the task's side metrics."""

    name: str
    model: nn.Module
    folder: Path
    score: float | None
    tokenizer: Any = None
    side: dict[str, float] = field(default_factory=dict)  # e.g. an embedding's classification probe


def environment() -> dict[str, str]:
    import accelerate
    import transformers

    device = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else f"CPU ({platform.processor() or platform.machine()})"
    )
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
        "device": device,
        "threads": str(torch.get_num_threads()),
        "cpu cores": str(os.cpu_count()),
        "platform": platform.platform(),
    }


def own_tokenizer(folder: Path, shared):
    """The folder's own tokenizer where its vocabulary differs from ``shared`` (None: the shared one serves)."""
    from tinydistill.data.alignment import same_vocabulary
    from tinydistill.models import load_tokenizer

    own = load_tokenizer(str(folder))
    return None if same_vocabulary(own, shared) else own


@dataclass
class ModelRow:
    """One model's row of a teacher-vs-student table; as JSON one flat object, the task's side metrics beside."""

    model: str
    metric: str | None
    score: float | None
    kept_percent: float | None  # of the first row's score
    parameters: int
    size_mb: float
    latency_ms: float | None  # at batch 1
    examples_per_s: float | None  # at batch 32
    side: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        return out | out.pop("side")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelRow:
        known = {f.name for f in fields(cls)} - {"side"}
        return cls(**{k: data.get(k) for k in known}, side={k: v for k, v in data.items() if k not in known})


def model_table(entries: list[ModelEntry], data, tokenizer, metric: str | None) -> list[ModelRow]:
    """One row per model; speed measured here, side by side (interleaved), on the same texts (a model with its
    own tokenizer is timed on its own tokenization of them). ``% kept`` is relative to the first entry."""
    own = {}
    if data is not None and data.examples is not None:
        longest = max((len(r["input_ids"]) for r in data.rows), default=8)
        own = {
            e.name: (encode_examples(data.examples, e.tokenizer, longest), e.tokenizer)
            for e in entries
            if e.tokenizer is not None
        }
    speed = measure_speed({e.name: e.model for e in entries}, data, tokenizer, own=own) if data is not None else {}
    ref = entries[0].score
    return [
        ModelRow(
            e.name,
            metric,
            e.score,
            100 * e.score / ref if (e.score is not None and ref) else None,
            count_parameters(e.model),
            size_on_disk(e.folder) / 2**20,
            speed.get(e.name, {}).get("latency_ms"),
            speed.get(e.name, {}).get("examples_per_s"),
            dict(e.side),
        )
        for e in entries
    ]


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


@dataclass
class Table:
    """A table built once and rendered as Markdown and as HTML. ``align`` is 'l' or 'r' per column."""

    header: list[str]
    rows: list[list[str]]
    align: str

    def markdown(self) -> str:
        rule = "|" + "|".join("---:" if a == "r" else "---" for a in self.align) + "|"
        return "\n".join(
            ["| " + " | ".join(self.header) + " |", rule] + ["| " + " | ".join(r) + " |" for r in self.rows]
        )

    def html(self, table_id: str) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in self.rows)
        return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def model_table_view(rows: list[ModelRow]) -> Table:
    """The teacher-vs-student rows of :func:`model_table` as a table."""
    metric = next((r.metric for r in rows if r.metric), "metric")
    titles = {k: v for kind in kinds().values() for k, v in kind.side_metric_titles.items()}
    side = [k for k in titles if any(k in r.side for r in rows)]
    return Table(
        ["model", metric, "% kept", *(titles[k] for k in side), "parameters", "size (MB)", "latency @1 (ms)"]
        + ["throughput @32 (ex/s)"],
        [
            [
                r.model,
                _fmt(r.score, ".4f"),
                _fmt(r.kept_percent, ".1f"),
                *(_fmt(r.side.get(k), ".4f") for k in side),
                f"{r.parameters:,}",
                f"{r.size_mb:.1f}",
                _fmt(r.latency_ms, ".2f"),
                _fmt(r.examples_per_s, ".1f"),
            ]
            for r in rows
        ],
        "lrr" + "r" * len(side) + "rrrr",
    )


def stage_table(stages: dict[str, dict]) -> Table:
    """One row per stage: steps, time, objective before -> after, dev metrics."""
    rows = []
    for name, m in stages.items():
        before, after = (m.get("objective_before") or {}).get("total"), (m.get("objective_after") or {}).get("total")
        dev = ", ".join(f"{k} {v:.4f}" for k, v in (m.get("dev") or {}).items() if k not in ("step", "epoch"))
        rows.append(
            [
                name,
                str(m.get("steps", "–")),
                _fmt(m.get("train_seconds"), ".1f"),
                f"{_fmt(before, '.4g')} → {_fmt(after, '.4g')}",
                dev or "–",
            ]
        )
    return Table(["stage", "steps", "train time (s)", "objective before → after", "dev"], rows, "lrrll")


def plot_curves(metrics: dict, folder: Path, prefix: str = "") -> list[Path]:
    """PNG plots of one stage's history: losses (total and each term), learning rate, dev metrics.
    ``prefix`` (e.g. '2-teacher-') names the files and titles the plots of one stage among several."""
    history, evals = metrics.get("history") or [], metrics.get("evals") or []
    title = f"{prefix.rstrip('-')}: " if prefix else ""
    out_dir = folder / PLOTS_DIR
    out_dir.mkdir(exist_ok=True)
    paths = []
    if history:
        steps = [h["step"] for h in history]
        fig, ax = plt.subplots(figsize=(7, 3.6))
        ax.plot(steps, [h["loss"] for h in history], label="total", color="black", linewidth=2)
        terms = [k for k in history[0] if k not in NON_TERMS]
        for k in terms:
            ax.plot(steps, [h[k] for h in history], label=k)
        if all(h[k] > 0 for h in history for k in ["loss", *terms]):
            ax.set_yscale("log")
        ax.set(xlabel="step", ylabel="loss", title=f"{title}training loss")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        paths.append(_save(fig, out_dir / f"{prefix}loss.png"))
        fig, ax = plt.subplots(figsize=(7, 2.6))
        ax.plot(steps, [h["lr"] for h in history], color="tab:purple")
        ax.set(xlabel="step", ylabel="learning rate", title=f"{title}learning rate")
        ax.grid(alpha=0.3)
        paths.append(_save(fig, out_dir / f"{prefix}lr.png"))
    if evals:
        fig, ax = plt.subplots(figsize=(7, 3))
        for k in [k for k in evals[0] if k not in ("step", "epoch")]:
            ax.plot([e["step"] for e in evals], [e[k] for e in evals], marker="o", label=k)
        ax.set(xlabel="step", ylabel="dev", title=f"{title}dev metric at each evaluation")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        paths.append(_save(fig, out_dir / f"{prefix}dev.png"))
    return paths


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:980px;margin:2em auto;
padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}
img{max-width:100%;display:block;margin:.5em 0}h1{font-size:1.6em}
h2{border-bottom:1px solid #ddd;padding-bottom:.2em}"""


def write_report(
    folder: Path, title: str, sections: list[tuple[str, Table]], plots: list[Path], config_yaml: str | None
) -> None:
    """Write ``report.md`` and a self-contained ``report.html`` into ``folder``.

    sections: (heading, table) pairs, shown first; the first is the final table (id ``final-table``).
    """
    env = environment()
    md = [f"# {title}", ""]
    body = [f"<h1>{html.escape(title)}</h1>"]
    for i, (heading, table) in enumerate(sections):
        md += [f"## {heading}", "", table.markdown(), ""]
        body += [f"<h2>{html.escape(heading)}</h2>", table.html("final-table" if i == 0 else f"table-{i}")]
    if plots:
        md += ["## Curves", ""]
        body.append("<h2>Curves</h2>")
        for p in plots:
            rel = p.relative_to(folder).as_posix()
            md += [f"![{p.stem}]({rel})", ""]
            data = base64.b64encode(p.read_bytes()).decode()
            body.append(f'<img alt="{html.escape(p.stem)}" src="data:image/png;base64,{data}">')
    env_text = "\n".join(f"{k}: {v}" for k, v in env.items())
    md += ["## Environment", "", "```", env_text, "```", ""]
    body += ["<h2>Environment</h2>", f"<pre>{html.escape(env_text)}</pre>"]
    if config_yaml:
        md += ["## Configuration", "", "```yaml", config_yaml.rstrip(), "```", ""]
        body += ["<h2>Configuration</h2>", f"<pre>{html.escape(config_yaml)}</pre>"]
    (folder / "report.md").write_text("\n".join(md), encoding="utf-8")
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>"
    )
    (folder / "report.html").write_text(page, encoding="utf-8")
