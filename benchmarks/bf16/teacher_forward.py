"""bf16 autocast vs fp32 for one model's forward pass on CPU (batch 32 x 64 tokens), interleaved, 7 rounds.

python -m benchmarks.bf16.teacher_forward demo_runs/bbc/2-teacher
"""

import sys

import torch
from transformers import AutoModelForSequenceClassification

from benchmarks.common import interleaved

model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1]).eval()
ids = torch.randint(1000, 20000, (32, 64), generator=torch.Generator().manual_seed(0))
mask = torch.ones_like(ids)


def forward(bf16: bool):
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        return model(input_ids=ids, attention_mask=mask).logits.float()


medians = interleaved({"fp32": lambda: forward(False), "bf16": lambda: forward(True)}, repeats=7, warmup=2)
a, b = forward(False), forward(True)
print(
    f"threads {torch.get_num_threads()}: fp32 {1000 * medians['fp32']:.0f} ms, bf16 autocast "
    f"{1000 * medians['bf16']:.0f} ms, {medians['fp32'] / medians['bf16']:.2f}x; max |dlogit| "
    f"{float((a - b).abs().max()):.3f}, argmax agreement {float((a.argmax(-1) == b.argmax(-1)).float().mean()):.3f}"
)
