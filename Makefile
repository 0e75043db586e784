# Two entry points: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO := demo

.PHONY: demo test soak bench screenshots clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,ray]'
	touch $(STAMP)

AS := $(VENV)/bin/audioscan --store $(DEMO)/store

# The main job on generated media with the offline default model (LOGMEL): index twice
# (the second run embeds nothing), inspect, search by clip and by stored moment, then
# label two sirens and some non-sirens, train a detector, rescore the library and take
# the detections home as 8-second clips.
demo: $(STAMP)
	rm -rf $(DEMO)
	$(PY) -m audioscan.indexer.media.samples $(DEMO)
	$(AS) index build $(DEMO)/library
	$(AS) index build $(DEMO)/library
	$(AS) index status
	$(AS) index check
	$(AS) search $(DEMO)/siren-clip.wav -k 3
	$(AS) search --from "ep01 night.mp4" --at 26 -k 3
	$(AS) labels add "ep01 night.mp4" 20 32 siren
	$(AS) labels add "ep01 night.mp4" 40 60 siren --negative
	$(AS) labels add door.mp3 0 30 siren --negative
	$(AS) labels add dawn.flac 0 40 siren --negative
	$(AS) train siren
	$(AS) rescore siren --threshold 0.5
	$(AS) suggest siren -n 3
	$(AS) export clips --from-rescore siren --length 8 --out-dir $(DEMO)/clips
	ls $(DEMO)/clips

# The browser tests drive Debian's chromium (Playwright's own browser download cannot be used here).
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	command -v apt-get >/dev/null && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| { echo "install chromium (Debian package 'chromium') for the browser tests"; exit 1; }

test: $(STAMP) $(CHROMIUM)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 AUDIOSCAN_CHROMIUM=$(CHROMIUM) $(PY) -m pytest -q

# The README's pictures of the page, taken by the browser tests.
screenshots: $(STAMP) $(CHROMIUM)
	AUDIOSCAN_SCREENSHOTS=1 AUDIOSCAN_CHROMIUM=$(CHROMIUM) $(PY) -m pytest -q tests/web/test_browser.py

# Minutes of random kills, broken locks, damaged segments and unmounted roots against one store.
soak: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -s -m soak --timeout 3600 tests/trust/test_soak.py

bench: $(STAMP)
	$(PY) bench/index_bench.py

clean:
	rm -rf $(VENV) $(DEMO) .audioscan
