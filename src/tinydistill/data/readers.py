"""Read labelled examples from GLUE TSVs, generic CSV / TSV / JSONL files, or Hugging Face datasets.

Every reader returns :class:`Examples`; one place (:func:`read_split`) turns raw label strings into
ids through the task's label set, so label maps are decided here and nowhere else.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from tinydistill.config import DataConfig
from tinydistill.data.files import MAX_FIELD_BYTES, data_path
from tinydistill.data.tasks import TaskSpec, glue_task
from tinydistill.errors import TinyDistillError
from tinydistill.ui import say

csv.field_size_limit(MAX_FIELD_BYTES)

SPLITS = ("train", "dev", "test")


@dataclass
class Examples:
    """Texts (and optional second texts) with label ids (classification), floats (regression) or, for per-token
    tasks, one tag id per word."""

    texts: list[str]
    pairs: list[str] | None
    labels: list[int] | list[float] | list[list[int]] | None
    source: str
    words: list[list[str]] | None = None  # per-token tasks: each text's words (``texts`` joins them with spaces)
    soft: list | None = None  # given logits per example (data.soft_label_column, several teachers); per QA window

    def __len__(self) -> int:
        return len(self.texts)


def _non_blank(path: Path, rows: list[list[str]]) -> list[list[str]]:
    """Drop blank rows, saying how many (they are skipped, not errors)."""
    kept = [r for r in rows if any(cell.strip() for cell in r)]
    if len(kept) < len(rows):
        say(f"{path}: skipped {len(rows) - len(kept)} blank line(s)")
    return kept


def _as_dicts(path: Path, header: list[str], body: list[list[str]], first_line: int) -> list[dict[str, str]]:
    """Rows keyed by column; a row with more fields than the header is refused (a stray delimiter
    would silently shift or drop text). Rows with fewer fields are reported where a column is read."""
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise TinyDistillError(
            f"{path}: the header names column {twice[0]!r} more than once; rename one of them "
            "(a later column would silently replace the earlier one)"
        )
    for i, r in enumerate(body):
        if len(r) > len(header):
            raise TinyDistillError(
                f"{path}: row {i + first_line} has {len(r)} fields but the header has {len(header)} "
                "(wrong delimiter, or a stray tab/comma inside a field?)"
            )
    return [dict(zip(header, r)) for r in body]


def _open_text(path: Path, encoding: str):
    return path.open(encoding="utf-8-sig" if encoding.lower().replace("_", "-") == "utf-8" else encoding, newline="")


def _read_rows(
    path: Path,
    delimiter: str,
    quoting: int,
    encoding: str = "utf-8",
    header: bool = True,
    max_fields: int | None = None,
) -> list[dict[str, str]]:
    """Rows of a delimited file as dicts: the header row names the columns, or without ``header`` their positions
    do ("0", "1", ...). With ``max_fields`` each line is split at most that many times less one (no quoting)."""
    with _open_text(path, encoding) as fh:
        if max_fields:
            rows = [line.rstrip("\r\n").split(delimiter, max_fields - 1) for line in fh]
        else:
            reader = csv.reader(fh, delimiter=delimiter, quoting=quoting)
            rows, ends = [], []
            for row in reader:
                rows.append(row)
                ends.append(reader.line_num)
            if quoting != csv.QUOTE_NONE and len(rows) > 1:
                _check_swallowed(path, rows, ends, delimiter)
    rows = _non_blank(path, rows)
    if not rows:
        return []
    if not header:
        _check_even(path, rows, delimiter)
        return _as_dicts(path, [str(i) for i in range(max(len(r) for r in rows))], rows, 1)
    return _as_dicts(path, rows[0], rows[1:], 1)


def _check_even(path: Path, rows: list[list[str]], delimiter: str) -> None:
    """Lines of a file without a header must split alike: a few rows with extra trailing fields are published data
    (the STS Benchmark's source columns: 7 or 9 fields), but lines that split into many different numbers of fields
    hold the delimiter inside their texts, and reading them by position would cut each text silently."""
    widths = sorted({len(r) for r in rows})
    if len(widths) > 2:
        odd = next(i for i, r in enumerate(rows) if len(r) != len(rows[0]))
        raise TinyDistillError(
            f"{path}: its lines split at {delimiter!r} into {len(widths)} different numbers of fields ({widths[0]} "
            f"to {widths[-1]}; row {odd + 1} has {len(rows[odd])}, row 1 {len(rows[0])}): if a text holds the "
            "delimiter, set data.max_fields to the number of fields (e.g. 2 for 'label text' lines: the last keeps "
            "the rest of the line), else fix data.delimiter"
        )


def _check_swallowed(path: Path, rows: list[list[str]], ends: list[int], delimiter: str) -> None:
    """Refuse a quote left open: the quoted field then runs over the next lines, swallowing them as text.
    A deliberate multi-line field is kept; one whose inner lines each parse as a whole row is not deliberate."""
    width = len(rows[0])
    for n in range(1, len(rows)):
        start, end = ends[n - 1] + 1, ends[n]
        if end == start or width < 2:
            continue
        inner = [line for field in rows[n] if "\n" in field for line in field.split("\n")[1:] if line.strip()]
        looks_like_rows = [line for line in inner if len(next(csv.reader([line], delimiter=delimiter))) >= width]
        if looks_like_rows:
            raise TinyDistillError(
                f"{path}: row {n} (line {start}) opens a quote that closes only on line {end}, "
                f"swallowing {end - start} line(s) such as {looks_like_rows[0][:40]!r}; close the "
                'quote, or write a literal quote inside a quoted field as ""'
            )


def _read_glue_tsv(path: Path, spec: TaskSpec) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = _non_blank(path, list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)))
    if not rows:
        return []
    if spec.headerless_columns and spec.text not in rows[0]:  # CoLA train/dev have no header row
        return _as_dicts(path, list(spec.headerless_columns), rows, 1)
    return _as_dicts(path, rows[0], rows[1:], 1)


def _read_json_array(path: Path) -> list[dict]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TinyDistillError(
            f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}); a .json file holds one array "
            "of objects, a .jsonl file one object per line"
        ) from None
    bad = next((i for i, r in enumerate(rows) if not isinstance(r, dict)), None)
    if bad is not None:
        raise TinyDistillError(
            f"{path}: item {bad + 1} of the array is not an object (expected one object per example)"
        )
    return rows


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith("["):  # one JSON array (what json.dump writes), not one object per line
        return _read_json_array(path)
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TinyDistillError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise TinyDistillError(
                    f"{path}:{n}: each line must be a JSON object (or the file one JSON array of objects)"
                )
            rows.append(row)
    return rows


def read_table(path: str | Path, cfg: DataConfig | None = None) -> list[dict]:
    """Rows of a data file, each a dict keyed by column name (by position, "0", "1", ..., without a header):
    CSV / TSV (data.delimiter, data.encoding, data.header), JSONL / JSON, Parquet, a folder saved by
    ``datasets.save_to_disk``, or a folder with one sub-folder of ``.txt`` files per label."""
    path = data_path(path, "data file")
    if path.is_dir():
        return _read_folder(path)
    suffix = path.suffix.lower()
    delimiter = cfg.delimiter if cfg is not None and cfg.delimiter else None
    encoding = cfg.encoding if cfg is not None else "utf-8"
    header = cfg.header if cfg is not None else True
    quoting = cfg.quoting if cfg is not None else None
    fields = cfg.max_fields if cfg is not None else None
    try:
        if suffix in (".jsonl", ".json"):
            return _read_jsonl(path)
        if suffix == ".parquet":
            return _read_parquet(path)
        if suffix == ".csv" or (delimiter and suffix not in (".tsv", ".txt")):
            return _read_rows(path, delimiter or ",", _quote(quoting, True), encoding, header, fields)
        if suffix in (".tsv", ".txt"):
            return _read_rows(path, delimiter or "\t", _quote(quoting, False), encoding, header, fields)
    except UnicodeDecodeError as exc:
        raise TinyDistillError(
            f"{path} is not {'UTF-8' if encoding.lower() in ('utf-8', 'utf8') else encoding} text (byte {exc.start}: "
            f"{exc.reason}); set data.encoding (e.g. latin-1)"
        ) from None
    except LookupError:
        raise TinyDistillError(f"data.encoding {encoding!r} is not an encoding Python knows") from None
    except csv.Error as exc:  # a field over MAX_FIELD_BYTES: not a text file, or a quote that never closes
        raise TinyDistillError(
            f"{path}: {exc} ({MAX_FIELD_BYTES >> 20} MB): is it a text table, or is a quote left open?"
        ) from None
    raise TinyDistillError(
        f"{path}: unsupported file type {suffix!r} (use .csv, .tsv, .jsonl, .parquet, or set data.delimiter)"
    )


def _quote(quoting: bool | None, default: bool) -> int:
    """The csv module's quoting for data.quoting (None: the file type's ``default``)."""
    return csv.QUOTE_MINIMAL if (default if quoting is None else quoting) else csv.QUOTE_NONE


def _read_parquet(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow's own error types
        raise TinyDistillError(f"{path} is not a readable Parquet file ({str(exc).splitlines()[0]})") from None


def _read_folder(path: Path) -> list[dict]:
    """A ``datasets.save_to_disk`` folder, or one sub-folder per label holding one ``.txt`` file per example."""
    if (path / "dataset_info.json").is_file() or (path / "state.json").is_file():
        import datasets

        try:
            return datasets.load_from_disk(str(path)).to_list()
        except Exception as exc:
            raise TinyDistillError(
                f"{path}: not a dataset saved by save_to_disk ({str(exc).splitlines()[0]})"
            ) from None
    labels = sorted(p for p in path.iterdir() if p.is_dir())
    if not labels:
        raise TinyDistillError(
            f"{path} is a folder but neither a saved dataset nor one sub-folder per label; expected a data file"
        )
    rows = []
    for folder in labels:
        for f in sorted(folder.glob("*.txt")):
            try:
                rows.append({"text": f.read_text(encoding="utf-8").strip(), "label": folder.name})
            except UnicodeDecodeError as exc:
                raise TinyDistillError(f"{f} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    if not rows:
        raise TinyDistillError(f"{path}: its label folders ({', '.join(p.name for p in labels)}) hold no .txt files")
    return rows


def column(rows: list[dict], name: str | None, source: str, required: bool = True) -> list | None:
    if name is None:
        return None
    if rows and name not in rows[0]:
        if not required:
            return None
        names = list(map(str, rows[0]))
        if name.isdigit() and all(n.isdigit() for n in names):
            raise TinyDistillError(
                f"{source}: column position {name} is out of range (its rows have {len(names)} fields, 0 to "
                f"{len(names) - 1})"
            )
        raise TinyDistillError(f"{source}: no column {name!r}; {_header_hint(names)}")
    values = [r.get(name) for r in rows]
    for i, v in enumerate(values):
        if v is None:
            if not required:
                return None
            raise TinyDistillError(f"{source}: row {i + 1} has no value in column {name!r} (ragged row?)")
        if isinstance(v, (dict, list)):
            kind = "an object" if isinstance(v, dict) else "a list"
            raise TinyDistillError(
                f"{source}: row {i + 1}, column {name!r} holds {kind} ({json.dumps(v)[:40]}); "
                "expected a single text or label"
            )
    return values


def _header_hint(names: list[str]) -> str:
    """What the columns are, and what a wrong header most likely means: a first row of data, or another delimiter."""
    if any(len(n.split()) >= 4 or len(n) > 40 for n in names) or all(_number(n) for n in names if n):
        first = ", ".join(repr(n[:30]) for n in names[:3])
        return (
            f"the first row ({first}{', ...' if len(names) > 3 else ''}) looks like data, not a header: set "
            "data.header: false and name the columns by position (data.text_column: 1, data.label_column: 0, ...)"
        )
    listed = f"columns are {', '.join(names)}"
    fits = [d for d in ";|," if len(names) == 1 and len(names[0].split(d)) > 1]
    return listed + (f"; the file looks {fits[0]!r}-separated: set data.delimiter" if fits else "")


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def labels_of(rows: list[dict], name: str, cfg: DataConfig, source: str, required: bool = True) -> list | None:
    """The raw labels in column ``name``: each the first group (or whole match) of data.label_pattern if set, then
    its name in data.label_map if set (a value the map does not cover is refused with its row)."""
    raw = _matched(column(rows, name, source, required), cfg, source)
    if raw is None or cfg.label_map is None:
        return raw
    return [mapped_label(value, cfg.label_map, source, i) for i, value in enumerate(raw)]


def mapped_label(value, label_map: dict[str, str], source: str, row: int) -> str:
    """The name data.label_map gives a label value of row ``row`` (0-based), or a one-line refusal."""
    key = str(value).strip()
    if key not in label_map:
        raise TinyDistillError(
            f"{source}: row {row + 1}: label value {key!r} is not in data.label_map (it maps "
            f"{', '.join(map(repr, label_map))}); add it, or fix the row"
        )
    return label_map[key]


def _matched(raw: list | None, cfg: DataConfig, source: str) -> list | None:
    """``raw`` labels through data.label_pattern (as they are without one)."""
    if raw is None or not cfg.label_pattern:
        return raw
    pattern = re.compile(cfg.label_pattern)
    out = []
    for i, value in enumerate(raw):
        found = pattern.search(str(value))
        if found is None:
            raise TinyDistillError(
                f"{source}: row {i + 1}: label {str(value)!r} does not match data.label_pattern {cfg.label_pattern!r}"
            )
        out.append(found.group(1) if pattern.groups else found.group(0))
    return out


def _visible(text: str) -> bool:
    """Text a tokenizer keeps: something besides white space, control and zero-width (format) characters."""
    return any(not c.isspace() and unicodedata.category(c) not in ("Cc", "Cf") and c != "\ufffd" for c in text)


def _check_texts(values: list, source: str, column: str) -> None:
    for i, t in enumerate(values):
        if not _visible(str(t)):
            what = (
                "an empty text"
                if not str(t).strip()
                else "no visible text (only zero-width, control or space characters)"
            )
            raise TinyDistillError(f"{source}: row {i + 1} has {what} in column {column!r}")


def _split_file(cfg: DataConfig, split: str) -> Path | None:
    spec = glue_task(cfg.task)
    if cfg.dir is not None:
        return Path(cfg.dir) / f"{split}.tsv"
    given = {"train": cfg.train_file, "dev": cfg.dev_file, "test": cfg.test_file}[split]
    if given is None and spec is not None:
        raise TinyDistillError(f"GLUE task {cfg.task!r} needs data.dir (a folder with train.tsv, dev.tsv, test.tsv)")
    return Path(given) if given else None


def _read_class_files(cfg: DataConfig) -> tuple[list[dict], str]:
    """Rows of one file per class, one text per line (blank lines skipped): the text in data.text_column, the file's
    class in data.label_column."""
    rows = []
    for label, name in cfg.class_files.items():
        path = data_path(name, f"class file of {label!r}", folder=False)
        try:
            with _open_text(path, cfg.encoding) as fh:
                lines = [line.strip() for line in fh]
        except UnicodeDecodeError as exc:
            raise TinyDistillError(
                f"{path} is not {cfg.encoding} text (byte {exc.start}: {exc.reason}); set data.encoding"
            ) from None
        texts = [t for t in lines if t]
        if not texts:
            raise TinyDistillError(f"class file of {label!r} {path} has no texts")
        rows += [{cfg.text_column: t, cfg.label_column: label} for t in texts]
    return rows, " + ".join(cfg.class_files.values())


def texts_of(rows: list[dict], name: str | list[str], cfg: DataConfig, source: str) -> list | None:
    """The texts in column ``name``, or the columns of a list joined by data.text_separator (empty parts left out)."""
    if not isinstance(name, list):
        return column(rows, name, source)
    parts = [column(rows, n, source) for n in name]
    return [cfg.text_separator.join(str(p) for p in row if str(p).strip()) for row in zip(*parts)]


def raw_rows(cfg: DataConfig, split: str) -> tuple[list[dict], str, TaskSpec | None]:
    """A split's rows as read (its own settings over the flat ones), where they came from, and the GLUE spec."""
    cfg = cfg.for_split(split)
    spec = glue_task(cfg.task)
    if cfg.hf_dataset:
        return hf_rows(cfg, split), f"{cfg.hf_dataset}[{split}]", spec
    if split == "train" and cfg.class_files:
        return *_read_class_files(cfg), spec
    path = _split_file(cfg, split)
    if path is None:
        raise TinyDistillError(f"no {split} data: set data.{split}_file")
    data_path(path, f"{split} file")
    if spec is not None and path.suffix.lower() == ".tsv":
        if path.is_dir():
            raise TinyDistillError(f"{path} is a folder; expected a GLUE .tsv file")
        try:
            return _read_glue_tsv(path, spec), str(path), spec
        except UnicodeDecodeError as exc:
            raise TinyDistillError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    return read_table(path, cfg), str(path), spec


def hf_rows(cfg: DataConfig, split: str, label_column: str | None = None) -> list[dict]:
    """A Hugging Face dataset split as row dicts, class ids in ``label_column`` (default data.label_column) turned
    into their names (per token, for a sequence of class labels); -1 (no label) drops the label."""
    import datasets

    hf_split = {"dev": "validation"}.get(split, split)
    try:
        ds = datasets.load_dataset(cfg.hf_dataset, cfg.hf_config, split=hf_split)
    except Exception as exc:  # network, unknown id, missing split: all reported the same way
        raise TinyDistillError(f"could not load {cfg.hf_dataset} ({hf_split}): {str(exc).splitlines()[0]}") from None
    col = label_column or cfg.label_column
    feature = ds.features.get(col)
    names = getattr(feature, "names", None)
    per_token = getattr(getattr(feature, "feature", None), "names", None)
    rows = ds.to_list()
    for r in rows:
        value = r.get(col)
        if names and isinstance(value, int):
            if value >= 0:
                r[col] = names[value]
            else:
                r.pop(col)
        elif per_token and isinstance(value, list):
            r[col] = [per_token[v] for v in value]
    return rows


DEV_FRACTION = 0.1  # held out of train as dev when no dev data is given
HOLD_OUT_SEED = 0  # fixed, so every run seed scores on the same held-out rows


def dev_given(cfg: DataConfig) -> bool:
    """Whether the data config names dev data (a dev file, a dev.* file in data.dir, or a hub dataset)."""
    if cfg.hf_dataset or cfg.dev_file is not None or (cfg.dev is not None and cfg.dev.file is not None):
        return True
    return cfg.dir is not None and any(Path(cfg.dir).glob("dev.*"))


def held_out_dev(cfg: DataConfig) -> dict | None:
    """How dev is held out of train (data.dev_fraction: a fraction or count, and the seed), or None."""
    if cfg.dev_fraction is None:
        return None
    return {"dev_fraction": cfg.dev_fraction, "seed": HOLD_OUT_SEED, "stratified": "by label"}


def held_out_test(cfg: DataConfig) -> dict | None:
    """How test is held out of train (data.test_fraction, before dev), or None."""
    if cfg.test_fraction is None:
        return None
    return {"test_fraction": cfg.test_fraction, "seed": HOLD_OUT_SEED, "stratified": "by label"}


def with_dev(cfg: DataConfig) -> DataConfig:
    """``cfg``, with data.dev_fraction 0.1 (and a note) when it names no dev data: for commands that need dev."""
    if cfg.dev_fraction is not None or dev_given(cfg):
        return cfg
    say(f"no dev data given: holding out data.dev_fraction {DEV_FRACTION:g} of train as dev (seeded, stratified)")
    return cfg.model_copy(update={"dev_fraction": DEV_FRACTION})


def read_split(cfg: DataConfig, split: str, task, seed: int = 0, require_labels: bool = True) -> Examples:
    """Read one split ('train', 'dev' or 'test') of the configured data as :class:`Examples` (the task reads it).

    With data.test_fraction, test is a seeded hold-out of train; with data.dev_fraction (see :func:`with_dev`), dev
    is a seeded hold-out of what is left (stratified by label for classification), and train is the rest."""
    if split not in SPLITS:
        raise TinyDistillError(f"unknown split {split!r}: use {', '.join(SPLITS)}")
    held = {"train": cfg.dev_fraction or cfg.test_fraction, "dev": cfg.dev_fraction, "test": cfg.test_fraction}
    if held[split] is None:
        return task.read(cfg, split, seed, require_labels)
    full = task.read(cfg.model_copy(update={"max_train_examples": None}), "train", seed, require_labels)
    rows = {"train": list(range(len(full)))}
    if cfg.test_fraction is not None:
        rest, rows["test"] = _hold_out(full, cfg.test_fraction, task, "test")
        rows["train"] = rest
    if cfg.dev_fraction is not None:
        rest = rows["train"]
        train, dev = _hold_out(subset(full, rest), cfg.dev_fraction, task, "dev")
        rows["train"], rows["dev"] = [rest[i] for i in train], [rest[i] for i in dev]
    _note_hold_out(cfg, full, rows)
    ex = subset(full, rows[split])
    ex.source = f"{full.source} (held-out {split})" if split != "train" else ex.source
    keep = kept_rows(cfg, split, len(ex), seed)
    return ex if keep is None else subset(ex, keep)


def _note_hold_out(cfg: DataConfig, full: Examples, rows: dict[str, list[int]]) -> None:
    """Say once per source how many examples were held out as dev and test."""
    if full.source in _NOTED:
        return
    _NOTED.add(full.source)
    pool = len(full)
    for split in ("test", "dev"):
        if split in rows:
            fraction = getattr(cfg, f"{split}_fraction")
            say(
                f"data.{split}_fraction {fraction:g}: holding out {len(rows[split]):,} of {pool:,} training "
                f"examples as {split} (seed {HOLD_OUT_SEED}{', stratified by label' if _stratify(full) else ''})"
            )
            pool -= len(rows[split])


_NOTED: set[str] = set()  # sources whose hold-out was printed (once per process)


def _stratify(ex: Examples) -> bool:
    return ex.labels is not None and all(isinstance(y, int) for y in ex.labels)  # class ids, one per text


def _hold_out(ex: Examples, fraction: float, task, split: str = "dev") -> tuple[list[int], list[int]]:
    """(kept rows, held-out rows): a seeded hold-out of ``fraction`` (a count when >= 1) as ``split``, stratified by
    label for classification; every class must keep an example on both sides."""
    from sklearn.model_selection import train_test_split

    size = int(fraction) if fraction >= 1 else fraction
    key = f"data.{split}_fraction {fraction:g}"
    if isinstance(size, int) and size >= len(ex):
        raise TinyDistillError(f"{key}: train has only {len(ex)} examples to hold out from")
    labels = ex.labels if _stratify(ex) else None
    if labels is not None:
        counts = {y: labels.count(y) for y in set(labels)}
        rare = min(counts, key=counts.get)
        n_dev = size if isinstance(size, int) else math.ceil(size * len(ex))
        if counts[rare] < 2 or n_dev < len(counts) or len(ex) - n_dev < len(counts):
            raise TinyDistillError(
                f"{key} leaves a class without an example in train or {split} (class {task.label_names[rare]!r} has "
                f"{counts[rare]} example(s), {len(counts)} classes, {split} of {n_dev}); give a {split} file or a "
                f"larger {split}_fraction"
            )
    try:
        train, dev = train_test_split(list(range(len(ex))), test_size=size, random_state=HOLD_OUT_SEED, stratify=labels)
    except ValueError as exc:
        raise TinyDistillError(f"{key}: {exc}") from None
    return sorted(train), sorted(dev)


def read_texts(cfg: DataConfig, split: str, task, seed: int = 0, require_labels: bool = True) -> Examples:
    """A split of per-text data (GLUE TSVs, CSV / TSV / JSONL, a hub dataset); ``task.labels_from`` reads the
    labels of its rows."""
    rows, source, spec = raw_rows(cfg, split)
    cfg = cfg.for_split(split)
    text_col = spec.text if spec else cfg.text_column
    pair_col = spec.text_pair if spec else cfg.text_pair_column
    label_col = spec.label if spec else cfg.label_column
    if not rows:
        raise TinyDistillError(f"{source} has no examples")
    texts = texts_of(rows, text_col, cfg, source)
    pairs = column(rows, pair_col, source)
    labels = task.labels_from(rows, label_col, cfg, source, require_labels)
    _check_texts(texts, source, " + ".join(text_col) if isinstance(text_col, list) else text_col)
    if pairs:
        _check_texts(pairs, source, pair_col)
    soft = _soft_labels(rows, cfg, task, source) if cfg.soft_label_column and split == "train" else None
    ex = Examples([str(t) for t in texts], [str(p) for p in pairs] if pairs else None, labels, source, soft=soft)
    keep = kept_rows(cfg, split, len(ex), seed)
    return ex if keep is None else subset(ex, keep)


def read_transfer(cfg: DataConfig, path: str | Path, no_label, what: str = "transfer file") -> Examples:
    """Unlabelled texts of a transfer file (labels ``no_label``, which the hard-label loss skips): a .txt file holds
    one text per line; CSV / TSV / JSONL the task's text column (and pair column)."""
    path = Path(path)
    if path.suffix.lower() == ".txt":
        data_path(path, what, folder=False)
        try:
            texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError as exc:
            raise TinyDistillError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
        pairs = None
    else:
        rows = read_table(path, cfg)
        spec = glue_task(cfg.task)
        texts = texts_of(rows, spec.text if spec else cfg.text_column, cfg, str(path))
        pairs = column(rows, spec.text_pair if spec else cfg.text_pair_column, str(path))
    if not texts:
        raise TinyDistillError(f"{what} {path} has no examples")
    _check_texts(texts, str(path), "text")
    return Examples(
        [str(t) for t in texts], [str(p) for p in pairs] if pairs else None, [no_label] * len(texts), str(path)
    )


def concat(first: Examples, *more: Examples) -> Examples:
    """The examples of ``first`` then of each of ``more`` (their sources joined by ``+``, for messages)."""
    parts = [first, *more]
    if len({p.pairs is None for p in parts}) > 1:
        raise TinyDistillError(
            f"{more[0].source}: the training data has {'no ' if first.pairs is None else ''}text pairs, this file "
            f"{'has' if first.pairs is None else 'has none'}; give it the same text columns"
        )
    return Examples(
        [t for p in parts for t in p.texts],
        None if first.pairs is None else [t for p in parts for t in p.pairs],
        [y for p in parts for y in p.labels],
        " + ".join(p.source for p in parts),
        None if any(p.words is None for p in parts) else [w for p in parts for w in p.words],
    )


def _soft_labels(rows: list[dict], cfg: DataConfig, task, source: str) -> list[list[float]]:
    """The soft-label column as logits: lists (or JSON lists in a text cell) of one number per label, finite;
    probabilities must be >= 0 and sum to 1 within 1e-3 (their logs are the logits: softmax(log p / T) tempers p)."""
    col, n = cfg.soft_label_column, task.num_labels
    if rows and col not in rows[0]:
        raise TinyDistillError(
            f"{source}: no column {col!r} (data.soft_label_column); columns are {', '.join(rows[0])}"
        )
    out = []
    for i, row in enumerate(rows, 1):
        value = row.get(col)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = None
        if not isinstance(value, list) or not all(isinstance(x, (int, float)) for x in value):
            raise TinyDistillError(
                f"{source}: row {i}, column {col!r}: expected a list of {n} numbers, got {row.get(col)!r:.60}"
            )
        if len(value) != n:
            raise TinyDistillError(
                f"{source}: row {i}, column {col!r}: {len(value)} soft labels, but the task has {n} labels "
                f"{task.label_names}"
            )
        if not all(math.isfinite(x) for x in value):
            raise TinyDistillError(f"{source}: row {i}, column {col!r}: {value} holds a non-finite number")
        if cfg.soft_labels == "probabilities":
            if min(value) < 0 or abs(sum(value) - 1) > 1e-3:
                raise TinyDistillError(
                    f"{source}: row {i}, column {col!r}: probabilities {value} sum to {sum(value):.6g}, not 1 "
                    "(within 1e-3), or are negative; if they are logits set data.soft_labels: logits"
                )
            value = [math.log(max(x, 1e-30)) for x in value]
        out.append([float(x) for x in value])
    return out


def kept_rows(cfg: DataConfig, split: str, n: int, seed: int = 0) -> list[int] | None:
    """Rows a split keeps under max_train_examples (a seeded random subset) / max_eval_examples (the first N);
    None when all are kept."""
    limit = cfg.max_train_examples if split == "train" else cfg.max_eval_examples
    if limit is None or limit >= n:
        return None
    return sorted(random.Random(seed).sample(range(n), limit)) if split == "train" else list(range(limit))


@dataclass
class RawSplit:
    """A split's rows as read (every column, labels as written), for tools that rewrite the file."""

    rows: list[dict]
    source: str
    text_column: str
    pair_column: str | None
    label_column: str
    glue: TaskSpec | None


def read_raw_split(cfg: DataConfig, split: str, seed: int = 0) -> RawSplit:
    """One split's raw rows (the same rows :func:`read_split` keeps), with the names of its text and label columns."""
    rows, source, spec = raw_rows(cfg, split)
    keep = kept_rows(cfg, split, len(rows), seed)
    rows = rows if keep is None else [rows[i] for i in keep]
    if spec is not None:
        return RawSplit(rows, source, spec.text, spec.text_pair, spec.label, spec)
    return RawSplit(rows, source, cfg.text_column, cfg.text_pair_column, cfg.label_column, None)


def subset(ex: Examples, index: list[int]) -> Examples:
    return Examples(
        [ex.texts[i] for i in index],
        [ex.pairs[i] for i in index] if ex.pairs else None,
        [ex.labels[i] for i in index] if ex.labels is not None else None,
        ex.source,
        [ex.words[i] for i in index] if ex.words is not None else None,
        [ex.soft[i] for i in index] if ex.soft is not None else None,
    )


def corpus_files(path: str | Path) -> list[Path]:
    """The text files of a corpus: the file itself, or every ``*.txt`` below a folder (sorted by name)."""
    path = data_path(path, "corpus")
    files = sorted(p for p in path.rglob("*.txt") if p.is_file()) if path.is_dir() else [path]
    if not files:
        raise TinyDistillError(f"corpus folder {path} holds no .txt files")
    return files


def read_corpus(path: str | Path, max_passages: int | None = None) -> list[str]:
    """Unlabelled passages for general distillation: one per non-empty line of a file, or of every
    ``*.txt`` file in a folder (sorted by name)."""
    files = corpus_files(path)
    passages: list[str] = []
    for f in files:
        try:
            with f.open(encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        passages.append(line.strip())
                        if max_passages and len(passages) >= max_passages:
                            return passages
        except UnicodeDecodeError as exc:
            raise TinyDistillError(f"{f} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    if not passages:
        raise TinyDistillError(f"corpus {path} holds no text")
    return passages
