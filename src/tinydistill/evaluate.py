"""Task metrics, prediction over a loader, and the ``evaluate`` command (any model folder, any split)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
from torch import nn
from torch.utils.data import DataLoader

from tinydistill.config import Config
from tinydistill.data.loaders import encode_examples, make_loader
from tinydistill.data.readers import TaskInfo, read_split, task_info
from tinydistill.errors import TinyDistillError
from tinydistill.ui import track


def compute_metrics(task: TaskInfo, outputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """GLUE metrics from raw model outputs (logits (N, C), or (N, 1) / (N,) for regression)."""
    if task.is_regression:
        pred = outputs.reshape(-1).astype(np.float64)
        gold = labels.reshape(-1).astype(np.float64)
        if len(pred) < 2 or np.std(pred) == 0 or np.std(gold) == 0:
            return {"pearson": 0.0, "spearman": 0.0}
        return {"pearson": float(pearsonr(pred, gold)[0]), "spearman": float(spearmanr(pred, gold)[0])}
    pred = outputs.argmax(-1)
    out = {"accuracy": float(accuracy_score(labels, pred))}
    if task.metric == "f1":
        out["f1"] = float(f1_score(labels, pred, zero_division=0.0))
    if task.metric == "matthews_corrcoef":
        out["matthews_corrcoef"] = float(matthews_corrcoef(labels, pred))
    return out


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, accelerator=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Model outputs (and labels, when the data has them) over a whole loader, in eval mode.

    ``model`` is a transformers classifier or anything called the same way (an ONNX session wrapper).
    With an ``accelerator``, outputs are gathered from every process without duplicates.
    """
    was_training = model.training
    model.eval()
    outs, golds = [], []
    device = next(model.parameters()).device if isinstance(model, nn.Module) else torch.device("cpu")
    for batch in track(loader, "evaluate"):
        labels = batch.pop("labels", None)
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(**batch).logits.float()
        if accelerator is not None:
            logits, labels = accelerator.gather_for_metrics((logits, labels.to(device) if labels is not None else None))
        outs.append(logits.cpu())
        if labels is not None:
            golds.append(labels.cpu())
    model.train(was_training)
    return torch.cat(outs).numpy(), (torch.cat(golds).numpy() if golds else None)


def evaluate_model(model: nn.Module, loader: DataLoader, task: TaskInfo, accelerator=None) -> dict[str, float]:
    outputs, labels = predict(model, loader, accelerator)
    if labels is None:
        raise TinyDistillError("this split has no labels to score against")
    return compute_metrics(task, outputs, labels)


def evaluate(cfg: Config, model_dir: str | Path, split: str = "dev") -> dict[str, float]:
    """Score a saved model folder on a split of ``cfg.data`` with the task's metrics.

    Returns e.g. ``{"accuracy": 0.91, "examples": 872}``.
    """
    from tinydistill.models import load_classifier, load_tokenizer

    task = task_info(cfg.data)
    model = load_classifier(str(model_dir), task, who=str(model_dir))
    tokenizer = load_tokenizer(str(model_dir))
    examples = read_split(cfg.data, split, task, seed=cfg.seed)
    loader = make_loader(
        encode_examples(examples, tokenizer, cfg.data.max_length),
        tokenizer,
        cfg.prediction.train.eval_batch_size,
        shuffle=False,
    )
    metrics = evaluate_model(model, loader, task)
    return {**metrics, "examples": len(examples)}
