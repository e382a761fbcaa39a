# lmtool: make demo (install, then build and use a model on the shipped corpus), make test, make bench.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat setup.cfg pyproject.toml | cksum | cut -d' ' -f1)
OUT ?= out
JOBS ?= 2

.PHONY: install demo test bench lint clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

demo: install
	mkdir -p $(OUT)
	$(BIN)/lmtool count corpora/kjv/train.txt --order 5 -o $(OUT)/kjv5.lm
	$(BIN)/lmtool info $(OUT)/kjv5.lm
	$(BIN)/lmtool perplexity $(OUT)/kjv5.lm corpora/kjv/test.txt
	head -3 corpora/kjv/test.txt | $(BIN)/lmtool score $(OUT)/kjv5.lm -
	$(BIN)/lmtool generate $(OUT)/kjv5.lm --prefix "and god said" -n 5 --seed 1 --temperature 0.9

test: install
	$(BIN)/python -m pytest -q -n $(JOBS) tests

bench: install
	$(BIN)/python -m pip install -q -e '.[bench]'
	PYTHON=$(BIN)/python bash bench/kenlm_binaries.sh || echo "KenLM's programs did not build: lmplz columns stay empty"
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

lint: install
	$(BIN)/python -m pyflakes lmtool tests bench .ci
	$(BIN)/python .ci/lint.py

clean:
	rm -rf $(OUT) build dist *.egg-info .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
