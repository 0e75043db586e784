# Two entry points: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO := demo

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO)
	$(PY) -m indexer.samples $(DEMO)
	$(VENV)/bin/audioscan --store $(DEMO)/store index build $(DEMO)/library
	$(VENV)/bin/audioscan --store $(DEMO)/store index build $(DEMO)/library
	$(VENV)/bin/audioscan --store $(DEMO)/store index status
	$(VENV)/bin/audioscan --store $(DEMO)/store index check
	$(VENV)/bin/audioscan --store $(DEMO)/store search $(DEMO)/siren-clip.wav -k 3

test: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/index_bench.py

clean:
	rm -rf $(VENV) $(DEMO) .audioscan
