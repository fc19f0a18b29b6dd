"""Where one prediction-KD step of a tinybert-4l-312d student goes (teacher logits cached): forward,
backward, gradient clipping and the optimizer, at SST-2-like lengths, fp32 vs bf16, foreach vs fused AdamW.

    python -m benchmarks.throughput.step_profile [--lengths 12 48] [--repeats 10]

12 tokens is a length-grouped SST-2 batch (mean row length 13); 48 is about the longest row of a
randomly drawn batch (mean of batch maxima 40). Medians of --repeats steps after 3 warm-up steps.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForSequenceClassification


def profile(length: int, fused: bool, bf16: bool, repeats: int) -> list[float]:
    torch.manual_seed(0)
    student = BertForSequenceClassification(
        BertConfig(num_hidden_layers=4, hidden_size=312, num_attention_heads=12, intermediate_size=1200, num_labels=2)
    ).train()
    ids = torch.randint(1000, 30000, (32, length))
    mask = torch.ones_like(ids)
    targets = torch.randn(32, 2)
    opt = torch.optim.AdamW(student.parameters(), lr=1e-4, fused=fused)

    def step() -> tuple[float, ...]:
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = student(input_ids=ids, attention_mask=mask).logits.float()
        loss = -(F.softmax(targets / 2, -1) * F.log_softmax(logits / 2, -1)).sum(-1).mean() * 4
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        t3 = time.perf_counter()
        opt.step()
        opt.zero_grad()
        return t1 - t0, t2 - t1, t3 - t2, time.perf_counter() - t3

    for _ in range(3):
        step()
    runs = [step() for _ in range(repeats)]
    return [1000 * statistics.median(r[i] for r in runs) for i in range(4)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[12, 48])
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    print(
        f"{torch.get_num_threads()} threads\n| length | precision | AdamW | forward ms | backward ms | clip ms | "
        "optimizer ms | step ms |\n|---:|---|---|---:|---:|---:|---:|---:|"
    )
    for length in args.lengths:
        for bf16, fused in ((False, False), (False, True), (True, True)):
            f, b, c, o = profile(length, fused, bf16, args.repeats)
            print(
                f"| {length} | {'bf16' if bf16 else 'fp32'} | {'fused' if fused else 'foreach'} | {f:.1f} | {b:.1f} | "
                f"{c:.1f} | {o:.1f} | {f + b + c + o:.1f} |"
            )


if __name__ == "__main__":
    main()
