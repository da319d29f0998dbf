# Every target creates .venv from a fresh clone when it is missing: the tested torch pair first, then the package.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
EXTRAS := dev,video,audio,train,eval,curation
STAMP := $(VENV)/.installed

.PHONY: venv test demo bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	$(BIN)/pip install -q --no-deps bfcl-eval==2026.3.23  # BFCL data + AST checker; its pinned deps are not needed (zoo/eval/bfcl.py)
	-command -v lynx >/dev/null || (command -v apt-get >/dev/null && (apt-get install -y -q lynx >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q lynx >/dev/null 2>&1)))
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	OMP_NUM_THREADS=2 $(BIN)/python -m pytest tests -x -q -p no:cacheprovider --timeout=900

demo: $(STAMP)
	$(BIN)/python -m zoo.demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

lint: $(STAMP)
	$(BIN)/ruff check zoo tests benchmarks examples

clean:
	rm -rf $(VENV) build *.egg-info
