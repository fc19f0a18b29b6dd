"""``tinydistill compare``: several students and their teacher in one table and one accuracy-vs-speed plot.

Every model is re-scored on the same split and timed side by side in this run, so the rows are
comparable even when the runs used different evaluation slices or machines.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tinydistill.config import Config, load_config  # noqa: E402
from tinydistill.data.readers import read_split  # noqa: E402
from tinydistill.errors import TinyDistillError  # noqa: E402
from tinydistill.evaluate import evaluate_model  # noqa: E402
from tinydistill.models import load_classifier, load_tokenizer, usable_length  # noqa: E402
from tinydistill.outputs import CONFIG_FILE, StagingDir, is_complete, read_metrics, write_json  # noqa: E402
from tinydistill.report import ModelEntry, ModelRow, model_table, model_table_view, own_tokenizer, write_report  # noqa: E402
from tinydistill.tasks import task_info  # noqa: E402
from tinydistill.ui import say  # noqa: E402


def model_folders(paths: list[str | Path], teacher: str | Path | None = None) -> tuple[list[Path], Path | None]:
    """Expand run folders (a pipeline run: its teacher and final student) into model folders, teacher first,
    and name the teacher: ``teacher`` if given, else the one fine-tuned teacher found (None when there is none)."""
    folders: list[Path] = []
    for p in map(Path, [*([teacher] if teacher else []), *paths]):
        if (p / "summary.json").is_file():
            teacher_dir = p / "2-teacher"
            if not teacher_dir.exists():  # a task whose teacher serves as is (embedding): the run's teacher
                teacher_dir = Path(yaml.safe_load((p / "pipeline.yaml").read_text(encoding="utf-8"))["teacher"])
            folders += [teacher_dir, p / "4-prediction"]
        elif is_complete(p) or (p / "config.json").is_file():  # a stage folder, or any model (a published teacher)
            folders.append(p)
        else:
            raise TinyDistillError(f"{p} is neither a model folder nor a pipeline run")
    unique = list(dict.fromkeys(f.resolve() for f in folders))
    if teacher:
        return unique, unique[0]
    teachers = [f for f in unique if is_complete(f) and read_metrics(f).get("stage") == "finetune"]
    return teachers + [f for f in unique if f not in teachers], teachers[0] if len(teachers) == 1 else None


def _label(folder: Path) -> str:
    return f"{folder.parent.name}/{folder.name}"


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not beaten on both speed (x) and score (y), sorted by speed."""
    keep = [
        i
        for i, (x, y) in enumerate(points)
        if not any((x2 >= x and y2 >= y) and (x2 > x or y2 > y) for x2, y2 in points)
    ]
    return sorted(keep, key=lambda i: points[i][0])


def compare(
    paths: list[str | Path],
    output_dir: str | Path = "compare",
    split: str = "dev",
    cfg: Config | None = None,
    teacher: str | Path | None = None,
    overwrite: bool = False,
) -> list[ModelRow]:
    """Score and time every model on one split; write compare.json, compare.png and a report.

    "% kept" is relative to the teacher (``teacher``, or the one fine-tuned teacher among the models);
    with no teacher it is left empty and a message says so.
    """
    folders, reference = model_folders(paths, teacher)
    if reference is None:
        say(
            "no teacher among the models (none, or several, fine-tuned teachers): '% kept' is left empty; "
            "pass --teacher FOLDER to measure every model against it"
        )
    cfg = cfg or load_config(folders[0] / CONFIG_FILE)
    inputs = {**cfg.input_paths(), **{f"model {f}": f for f in folders}}
    with StagingDir(output_dir, "compare", inputs, overwrite or cfg.overwrite) as tmp:
        rows = _compare_into(folders, reference, cfg, split, tmp)
    return rows


def _compare_into(folders: list[Path], reference: Path | None, cfg: Config, split: str, out: Path) -> list[ModelRow]:
    task = task_info(cfg.data)
    tokenizer = load_tokenizer(str(folders[0]))
    examples = read_split(cfg.data, split, task, seed=cfg.seed)
    models = [(f, load_classifier(str(f), task, who=str(f)), own_tokenizer(f, tokenizer)) for f in folders]
    # one length for all, so every model reads the same text: the longest each of them takes
    max_length = min(
        usable_length(cfg.data.max_length, f"model {f}", m.config, own or tokenizer) for f, m, own in models
    )
    data = task.encode(examples, tokenizer, max_length)
    entries = []
    for folder, model, own in models:  # each model reads its own tokenization of the split
        rows = data if own is None else task.encode(examples, own, max_length)
        loader = task.loader(rows, own or tokenizer, cfg.prediction.train.eval_batch_size)
        score = evaluate_model(model, loader, task)[task.metric]
        side = task.side_metrics(model, own or tokenizer, cfg.prediction.train.eval_batch_size)
        entries.append(ModelEntry(_label(folder), model, folder, score, own, side))
    rows = model_table(entries, data.head(cfg.report.speed_examples), tokenizer, task.metric)
    if reference is None:
        for r in rows:
            r.kept_percent = None
    relative = _label(reference) if reference else None
    table = [r.to_json() for r in rows]
    write_json(out / "compare.json", {"task": task.name, "split": split, "rows": table, "kept_relative_to": relative})
    plot = _plot(rows, task.metric, out / "compare.png")
    write_report(out, f"Comparison on {task.name} ({split})", [("Models", model_table_view(rows))], [plot], None)
    return rows


def _plot(rows: list[ModelRow], metric: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    xs, ys = [r.examples_per_s for r in rows], [r.score for r in rows]
    sizes = [max(30.0, 6 * r.size_mb) for r in rows]
    ax.scatter(xs, ys, s=sizes, alpha=0.6, c=["tab:red"] + ["tab:blue"] * (len(rows) - 1))
    for r, x, y in zip(rows, xs, ys):
        ax.annotate(f"{r.model}\n{r.size_mb:.0f} MB", (x, y), fontsize=7, xytext=(5, 5), textcoords="offset points")
    front = pareto(list(zip(xs, ys)))
    ax.plot([xs[i] for i in front], [ys[i] for i in front], "--", color="gray", label="frontier")
    ax.set(xlabel="throughput at batch 32 (examples/s)", ylabel=metric, title="accuracy vs speed (marker area ~ size)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
