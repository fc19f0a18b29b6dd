"""One contender of the throughput benchmark, in its own process: trains, records the time of every
optimizer step (one global hook, the same for every contender), and prints one JSON line.

    python contender.py NAME WORKLOAD WORK_DIR STEPS
        NAME      reference | textbrewer | tinydistill-matched | tinydistill-default
        WORKLOAD  prediction | intermediate

Every contender loads the same saved teacher and student, reads the same 64-token rows in the same
order, uses AdamW (lr 1e-4, weight decay 0.01), a linear warmup/decay schedule, clipping at 1.0,
and the same loss weights: soft CE at T=2 times T^2, or embedding + hidden (through a 312->768
projection) + attention MSE over the uniform layer map (student 1..4 -> teacher 3, 6, 9, 12).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

START = time.perf_counter()
STEP_TIMES: list[float] = []
register_optimizer_step_post_hook(lambda *_: STEP_TIMES.append(time.perf_counter()))

T = 2.0
LR, WD, CLIP, BATCH, LENGTH = 1e-4, 0.01, 1.0, 32, 64
TEACHER_OF = {1: 3, 2: 6, 3: 9, 4: 12}  # uniform map g(m) = 3m; hidden_states[0] is the embedding output


def load(work: Path, eager: bool):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    kw = {"attn_implementation": "eager"} if eager else {}
    teacher = AutoModelForSequenceClassification.from_pretrained(work / "teacher", **kw).eval()
    student = AutoModelForSequenceClassification.from_pretrained(work / "student", **kw).train()
    return teacher, student, AutoTokenizer.from_pretrained(work / "teacher")


def batches(work: Path, tokenizer, steps: int) -> list[dict[str, torch.Tensor]]:
    """The training rows in file order, 32 per batch, padded to the longest row (all are 64 tokens)."""
    lines = (work / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    texts = [line.split("\t")[0] for line in lines][: steps * BATCH]
    out = []
    for i in range(0, len(texts), BATCH):
        enc = tokenizer(texts[i : i + BATCH], truncation=True, max_length=LENGTH, padding=True, return_tensors="pt")
        out.append(dict(enc))
    return out


def optimizer_for(params, steps: int):
    from transformers import get_linear_schedule_with_warmup

    opt = torch.optim.AdamW(params, lr=LR, weight_decay=WD)
    return opt, get_linear_schedule_with_warmup(opt, int(0.1 * steps), steps)


def soft_ce(student_logits, teacher_logits):
    return -(F.softmax(teacher_logits / T, -1) * F.log_softmax(student_logits / T, -1)).sum(-1).mean() * T * T


def intermediate_loss(s_out, t_out, proj: nn.Module):
    loss = F.mse_loss(proj(s_out.hidden_states[0]), t_out.hidden_states[0])
    for m, n in TEACHER_OF.items():
        loss = loss + F.mse_loss(proj(s_out.hidden_states[m]), t_out.hidden_states[n])
        loss = loss + F.mse_loss(s_out.attentions[m - 1], t_out.attentions[n - 1])
    return loss


def reference(work: Path, workload: str, steps: int) -> None:
    """A plain PyTorch loop: what a user writes by hand."""
    inter = workload == "intermediate"
    teacher, student, tok = load(work, eager=inter)
    proj = nn.Linear(student.config.hidden_size, teacher.config.hidden_size)
    params = list(student.parameters()) + (list(proj.parameters()) if inter else [])
    opt, sched = optimizer_for(params, steps)
    extra = {"output_hidden_states": True, "output_attentions": True} if inter else {}
    for batch in batches(work, tok, steps):
        with torch.no_grad():
            t_out = teacher(**batch, **extra)
        s_out = student(**batch, **extra)
        loss = intermediate_loss(s_out, t_out, proj) if inter else soft_ce(s_out.logits, t_out.logits)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()
        sched.step()
        opt.zero_grad()


def textbrewer(work: Path, workload: str, steps: int) -> None:
    """TextBrewer 0.2.1.post1's GeneralDistiller (its 'ce' loss has no T^2: kd_loss_weight = T^2 instead)."""
    from textbrewer import DistillationConfig, GeneralDistiller, TrainingConfig
    from transformers import get_linear_schedule_with_warmup

    inter = workload == "intermediate"
    teacher, student, tok = load(work, eager=True)
    if inter:
        matches = [
            {
                "layer_T": 0,
                "layer_S": 0,
                "feature": "hidden",
                "loss": "hidden_mse",
                "weight": 1,
                "proj": ["linear", student.config.hidden_size, teacher.config.hidden_size],
            }
        ]
        for m, n in TEACHER_OF.items():
            matches.append(
                {
                    "layer_T": n,
                    "layer_S": m,
                    "feature": "hidden",
                    "loss": "hidden_mse",
                    "weight": 1,
                    "proj": ["linear", student.config.hidden_size, teacher.config.hidden_size],
                }
            )
            matches.append(
                {"layer_T": n - 1, "layer_S": m - 1, "feature": "attention", "loss": "attention_mse", "weight": 1}
            )
        dcfg = DistillationConfig(intermediate_matches=matches, kd_loss_weight=0.0, hard_label_weight=0.0)

        def adaptor(batch, out):
            return {"hidden": out.hidden_states, "attention": out.attentions, "inputs_mask": batch["attention_mask"]}
    else:
        dcfg = DistillationConfig(temperature=T, kd_loss_type="ce", kd_loss_weight=T * T, hard_label_weight=0.0)

        def adaptor(_batch, out):
            return {"logits": out.logits}

    tcfg = TrainingConfig(device="cpu", output_dir=str(work / "textbrewer_out"), log_dir=None, ckpt_steps=10**9)
    distiller = GeneralDistiller(
        train_config=tcfg, distill_config=dcfg, model_T=teacher, model_S=student, adaptor_T=adaptor, adaptor_S=adaptor
    )
    opt = torch.optim.AdamW(student.parameters(), lr=LR, weight_decay=WD)
    extra = {"output_hidden_states": True, "output_attentions": True} if inter else {}
    with distiller:
        distiller.train(
            opt,
            batches(work, tok, steps),
            num_steps=steps,
            max_grad_norm=CLIP,
            scheduler_class=get_linear_schedule_with_warmup,
            scheduler_args={"num_warmup_steps": int(0.1 * steps), "num_training_steps": steps},
            **extra,
        )


def tinydistill(work: Path, workload: str, steps: int, matched: bool) -> None:
    """The real `tinydistill distill` code path. matched: fp32, live teacher, no length grouping."""
    from tinydistill.config import load_config
    from tinydistill.stages import distill

    sets = [
        f"teacher={work / 'teacher'}",
        f"student={{checkpoint: {work / 'student'}}}",
        "data.task=classification",
        f"data.train_file={work / 'train.tsv'}",
        f"data.dev_file={work / 'dev.tsv'}",
        f"data.max_length={LENGTH}",
        "report.enabled=false",
        f"output_dir={work / 'td_out'}",
        f"cache_dir={work / 'td_cache'}",
    ]
    train = {
        "max_steps": steps,
        "epochs": 1,
        "batch_size": BATCH,
        "learning_rate": LR,
        "weight_decay": WD,
        "warmup_ratio": 0.1,
        "max_grad_norm": CLIP,
    }
    sets += [f"{workload}.train.{k}={v}" for k, v in train.items()]
    if workload == "intermediate":
        sets += ["intermediate.losses={embedding_weight: 1, hidden_weight: 1, attention_weight: 1}"]
    else:
        sets += [f"prediction.losses={{soft_weight: 1, hard_weight: 0, temperature: {T}, soft_loss: ce}}"]
    if matched:
        sets += [f"{workload}.train.mixed_precision=no", f"{workload}.train.group_by_length=false"]
        sets += ["prediction.teacher_cache=false"] if workload == "prediction" else []
    distill(load_config(None, sets), workload)


def main() -> None:
    name, workload, work, steps = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    torch.manual_seed(0)
    if name == "reference":
        reference(work, workload, steps)
    elif name == "textbrewer":
        textbrewer(work, workload, steps)
    elif name.startswith("tinydistill"):
        tinydistill(work, workload, steps, matched=name.endswith("matched"))
    else:
        raise SystemExit(f"unknown contender {name}")
    step_ms = [1000 * (b - a) for a, b in zip(STEP_TIMES, STEP_TIMES[1:])]
    print(
        json.dumps(
            {
                "contender": name,
                "workload": workload,
                "steps": len(STEP_TIMES),
                "step_ms": step_ms,
                "setup_s": STEP_TIMES[0] - START if STEP_TIMES else None,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
