"""bf16 autocast vs fp32 for one model's forward pass on CPU (batch 32 x 64 tokens), interleaved, 7 rounds.

.venv/bin/python benchmarks/bf16/teacher_forward.py demo_runs/bbc/2-teacher
"""

import statistics
import sys
import time

import torch
from transformers import AutoModelForSequenceClassification

model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1]).eval()
ids = torch.randint(1000, 20000, (32, 64), generator=torch.Generator().manual_seed(0))
mask = torch.ones_like(ids)


def forward(bf16: bool):
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        start = time.perf_counter()
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
        return time.perf_counter() - start, logits


for bf16 in (False, True):
    forward(bf16), forward(bf16)  # warm-up
times = {False: [], True: []}
for _ in range(7):
    for bf16 in (False, True):
        times[bf16].append(forward(bf16)[0])
(_, a), (_, b) = forward(False), forward(True)
fp32, bf = statistics.median(times[False]), statistics.median(times[True])
print(
    f"threads {torch.get_num_threads()}: fp32 {1000 * fp32:.0f} ms, bf16 autocast {1000 * bf:.0f} ms, "
    f"{fp32 / bf:.2f}x; max |dlogit| {float((a - b).abs().max()):.3f}, "
    f"argmax agreement {float((a.argmax(-1) == b.argmax(-1)).float().mean()):.3f}"
)
