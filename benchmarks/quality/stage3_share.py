"""Where a stage-3 step goes with a teacher many times the student's cost (issue 17, item 4).

all-mpnet-base-v2 (12 x 768) as the live teacher, paraphrase-MiniLM-L3-v2 (3 x 384) as the student, SST-2 dev
sentences in batches of 32 (max length 64, each model its own tokenizer; single sentences cut into the same pieces).
Per step: the teacher's forward with its layers recorded (no grad), then the student's forward, the loss terms and
the backward, timed separately; medians over the batches, for TinyBERT's terms (embedding, hidden, attention, uniform
map) and MiniLMv2's relations. The teacher's share bounds what caching its intermediate targets could save.

    python -m benchmarks.quality.stage3_share [--batches 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

GLUE = Path(__file__).resolve().parents[3] / "shared" / "data" / "glue" / "SST-2"
RECIPES = {
    "tinybert": {"embedding_weight": 1.0, "hidden_weight": 1.0, "attention_weight": 1.0},
    "minilmv2": {"relation_weight": 1.0, "relation_heads": 48},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from tinydistill.capture import capture
    from tinydistill.config import LossConfig
    from tinydistill.mapping import resolve_map
    from tinydistill.models import load_backbone, load_tokenizer
    from tinydistill.objectives import build_terms, capture_plan, make_projections, projection_layer, setup_for
    from tinydistill.terms import StepContext
    from tinydistill.zoo import all_mpnet_base_v2, paraphrase_minilm_l3

    t_dir, s_dir = str(all_mpnet_base_v2()), str(paraphrase_minilm_l3())
    teacher, student = load_backbone(t_dir).eval(), load_backbone(s_dir).train()
    t_tok, s_tok = load_tokenizer(t_dir), load_tokenizer(s_dir)
    lines = (GLUE / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    texts = sorted((line.split("\t")[0] for line in lines), key=len)  # length-grouped, as the loader does
    batches = [texts[i : i + 32] for i in range(0, len(texts), 32)][:: max(1, len(texts) // 32 // args.batches)]
    for name, weights in RECIPES.items():
        cfg = LossConfig(**weights)
        pairs = resolve_map("uniform", student.config.num_hidden_layers, teacher.config.num_hidden_layers)
        setup = setup_for(pairs, None, student.config, teacher.config)
        plan = capture_plan(cfg, setup)
        proj = make_projections(cfg, setup, student.config.hidden_size, teacher.config.hidden_size)
        terms = build_terms(cfg, setup, has_teacher=True)
        t_times, s_times = [], []
        with (
            capture(student, plan.student_hidden, plan.student_attention, plan.student_qkv) as s_rec,
            capture(teacher, plan.teacher_hidden, plan.teacher_attention, plan.teacher_qkv) as t_rec,
        ):
            for batch in batches:
                t_in = t_tok(batch, padding=True, truncation=True, max_length=64, return_tensors="pt")
                s_in = s_tok(batch, padding=True, truncation=True, max_length=64, return_tensors="pt")
                assert t_in["input_ids"].shape == s_in["input_ids"].shape  # same pieces, same positions
                start = time.perf_counter()
                with torch.no_grad():
                    teacher(input_ids=t_in["input_ids"], attention_mask=t_in["attention_mask"])
                mid = time.perf_counter()
                student(**s_in)
                projected = {k: p(s_rec.hidden[projection_layer(k)]) for k, p in proj.items()}
                ctx = StepContext(s_in["attention_mask"], None, None, None, s_rec, t_rec, projected)
                sum(t.weight * t.fn(ctx) for t in terms).backward()
                student.zero_grad(set_to_none=True)
                end = time.perf_counter()
                t_times.append(mid - start)
                s_times.append(end - mid)
        t_med, s_med = statistics.median(t_times), statistics.median(s_times)
        print(
            f"{name}: teacher forward {1000 * t_med:.0f} ms, student forward + losses + backward {1000 * s_med:.0f} ms "
            f"per batch of 32 (medians of {len(batches)}); teacher share {100 * t_med / (t_med + s_med):.0f}%, "
            f"a step without it {(t_med + s_med) / s_med:.1f}x faster"
        )


if __name__ == "__main__":
    main()
