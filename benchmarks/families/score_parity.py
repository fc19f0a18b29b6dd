"""Max |Δ| between softmax(captured scores, the model's own mask) and each family's eager attention
probabilities, per family and attention implementation, on tiny random configs (the test's models).

    python -m benchmarks.families.score_parity
"""

from __future__ import annotations

import torch
from transformers import AutoModel

from tests.helpers import CONFIGS, padded_batch, tiny_config
from tinydistill.capture import capture


def max_delta(model_type: str, implementation: str) -> float:
    torch.manual_seed(1)
    config = tiny_config(model_type)
    config._attn_implementation = "eager"
    model = AutoModel.from_config(config).eval()
    ids, mask = padded_batch()
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask, output_attentions=True)
        model.config._attn_implementation = implementation
        with capture(model, [], [1, 2, 3]) as rec:
            model(input_ids=ids, attention_mask=mask)
    worst = 0.0
    for layer in (1, 2, 3):
        scores, allowed = rec.scores[layer], rec.allowed[layer]
        if allowed is not None:
            scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        worst = max(worst, (scores.softmax(-1) - reference.attentions[layer - 1]).abs().max().item())
    return worst


def main() -> None:
    print("| family | implementation | max abs diff |\n|---|---|---:|")
    for case in CONFIGS:
        sdpa = AutoModel.from_config(tiny_config(case)).config._attn_implementation == "sdpa"
        for implementation in ("eager", "sdpa") if sdpa else ("eager",):
            print(f"| {case} | {implementation} | {max_delta(case, implementation):.1e} |")


if __name__ == "__main__":
    main()
