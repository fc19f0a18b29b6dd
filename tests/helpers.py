"""What many test files share: running the command line in-process, tiny distill command lines, and a callback that
stops training where a test needs it to (a crash, Ctrl-C) without reaching into the trainer."""

from __future__ import annotations

import sys

import torch
from transformers import AutoConfig

from tinydistill.trainer import Callback, TrainState


def run_cli(monkeypatch, capsys, *args):
    """``tinydistill ARGS`` in this process: (exit code, stdout, stderr)."""
    from tinydistill.cli import main

    capsys.readouterr()  # drop what fixtures printed
    monkeypatch.setattr(sys, "argv", ["tinydistill", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


class StopAt(Callback):
    """Raise ``error`` at the end of optimizer step ``step`` of stage ``stage`` (any stage: None)."""

    def __init__(self, step: int, error: BaseException | None = None, stage: str | None = None) -> None:
        self.step, self.stage = step, stage
        self.error = error if error is not None else RuntimeError("simulated crash")

    def on_step_end(self, state: TrainState, losses: dict[str, float]) -> None:
        if state.steps == self.step and self.stage in (None, state.stage):
            raise self.error


def sets(*pairs: str) -> list[str]:
    """``-s KEY=VALUE`` for each pair, as the command line takes overrides."""
    return [arg for pair in pairs for arg in ("-s", pair)]


SMALL_STUDENT = "student={layers: 1, hidden: 16, heads: 4, ffn: 32}"


def slice_of(train: int = 64, dev: int = 16, length: int = 24) -> tuple[str, ...]:
    """Settings that read the first ``dev`` dev rows and a seeded ``train`` of train, cut at ``length`` tokens."""
    return f"data.max_train_examples={train}", f"data.max_eval_examples={dev}", f"data.max_length={length}"


def distill_args(
    teacher, out, *settings: str, stage: str = "prediction", task: str | None = "sst-2", data=None, student=None
) -> list[str]:
    """A ``distill`` command line (``settings``: its ``-s`` overrides)."""
    args = ["distill", "--stage", stage, "--teacher", str(teacher)]
    args += ["--student", str(student)] if student is not None else []
    args += ["--task", task] if task else []
    args += ["--data-dir", str(data)] if data is not None else []
    return [*args, "-o", str(out), *sets(*settings)]


def config_of(args: list) -> object:
    """The configuration a ``tinydistill`` command line (a stage command) runs with, as the command line builds it."""
    from tinydistill.config import load_config

    named = {"-o": "output_dir", "--teacher": "teacher", "--task": "data.task", "--data-dir": "data.dir"}
    overrides, rest, items = [], [], iter(map(str, args[1:]))
    for arg in items:
        if arg in ("-s", "--set"):
            overrides.append(next(items))
        elif arg in named:
            rest.append(f"{named[arg]}={next(items)}")
        elif arg == "--stage":
            next(items)
    return load_config(None, overrides + rest)


#: tiny configs of every family (and released layouts of one), for the family tests
VOCAB = 30522  # the MiniLM tokenizer's, so the distillation runs can use it with every family
SHAPE = {
    "hidden_size": 32,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
    "vocab_size": VOCAB,
    "pad_token_id": 0,
}
CONFIGS = {
    "bert": {},
    "roberta": {},
    "xlm-roberta": {},
    "camembert": {},
    "ernie": {},
    "electra": {"embedding_size": 16},
    "distilbert": {"dim": 32, "n_layers": 3, "n_heads": 4, "hidden_dim": 64},
    "albert": {"embedding_size": 16},
    "mpnet": {},
    "deberta-v2": {
        "relative_attention": True,
        "pos_att_type": ["c2p", "p2c"],
        "max_relative_positions": 16,
        "position_buckets": 8,
        "position_biased_input": False,
    },
    # the layout every released DeBERTa-v3 checkpoint ships (deberta-v3-base/-small/-xsmall config.json)
    "deberta-v3": {
        "relative_attention": True,
        "pos_att_type": "p2c|c2p",
        "max_relative_positions": -1,
        "position_buckets": 8,
        "position_biased_input": False,
        "share_att_key": True,
        "norm_rel_ebd": "layer_norm",
        "type_vocab_size": 0,
        "layer_norm_eps": 1e-7,
    },
    "modernbert": {
        "global_attn_every_n_layers": 2,
        "local_attention": 4,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "cls_token_id": 1,
        "sep_token_id": 2,
    },
}
#: cases that are a layout of another model type
MODEL_TYPE = {"deberta-v3": "deberta-v2"}


def model_type_of(case: str) -> str:
    return MODEL_TYPE.get(case, case)


def tiny_config(case: str, **kw):
    """A tiny random config of one family case (3 layers, width 32, 4 heads)."""
    model_type = model_type_of(case)
    shape = {
        k: v
        for k, v in SHAPE.items()
        if model_type != "distilbert"
        or k not in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
    }
    return AutoConfig.for_model(model_type, **shape, **CONFIGS[case], **kw)


def padded_batch():
    """Two rows of random ids, the second padded after 6 tokens."""
    torch.manual_seed(0)
    ids = torch.randint(5, 1000, (2, 10))
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, 6:] = 0  # padding in the second row
    ids[1, 6:] = 0
    return ids, mask


def corpus_file(tmp_path, n: int = 40):
    """A corpus of ``n`` passages of varied length with blank lines inside; (path, passages)."""
    lines = [f"passage number {i} " + "with a few more words " * (i % 7) for i in range(n)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines[: n // 2]) + "\n\n  \n" + "\n".join(lines[n // 2 :]) + "\n", encoding="utf-8")
    return path, lines
