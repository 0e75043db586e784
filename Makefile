# Two entry points: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO := demo

.PHONY: demo test soak bench screenshots lock clean

# Installs come from the committed locks in .ci/lock/ (exact versions, hashes), never from
# pyproject's ranges: a registry release can then never break a fresh clone. Each stamp is
# written only after `audioscan doctor` has loaded every native extension, so an install that
# failed (or loaded a broken pair) is retried by the next make, not remembered.
LOCK := .ci/lock
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test

define install_lock
	rm -f $@
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	for lock in $(1); do $(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r $$lock || exit 1; done
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(VENV)/bin/audioscan doctor
	touch $@
endef

$(DEMO_STAMP): $(LOCK)/demo.txt pyproject.toml
	$(call install_lock,$(LOCK)/demo.txt)

# The tests also open hoplite databases in perch-hoplite itself (perch-hoplite.in says why its
# lock is separate).
$(TEST_STAMP): $(LOCK)/test.txt $(LOCK)/perch-hoplite.txt pyproject.toml
	$(call install_lock,$(LOCK)/test.txt $(LOCK)/perch-hoplite.txt)

# Regenerates the locks from pyproject.toml (the only place ranges are declared), for every
# platform and Python >= 3.10 at once; commit the result. Needs the registry, not the venv.
LOCK_TOOL := $(VENV)-lock/bin/uv
$(LOCK_TOOL):
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install --quiet 'uv==0.13.8'

lock: $(LOCK_TOOL)
	echo 'setuptools>=69' | $(LOCK_TOOL) pip compile --quiet --universal --generate-hashes --python-version 3.10 \
		--custom-compile-command 'make lock' -c $(LOCK)/constraints.txt pyproject.toml - -o $(LOCK)/demo.txt
	echo 'setuptools>=69' | $(LOCK_TOOL) pip compile --quiet --universal --generate-hashes --python-version 3.10 \
		--custom-compile-command 'make lock' -c $(LOCK)/constraints.txt pyproject.toml - --extra test --extra ray --extra birdnet --extra hoplite -o $(LOCK)/test.txt
	$(LOCK_TOOL) pip compile --quiet --universal --generate-hashes --no-deps --python-version 3.10 \
		--custom-compile-command 'make lock' $(LOCK)/perch-hoplite.in -o $(LOCK)/perch-hoplite.txt

AS := $(VENV)/bin/audioscan --store $(DEMO)/store

# The main job on generated media with the offline default model (LOGMEL): index twice
# (the second run embeds nothing), inspect, search by clip and by stored moment, then
# label two sirens and some non-sirens, train a detector, rescore the library and take
# the detections home as 8-second clips.
demo: $(DEMO_STAMP)
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

# Two test processes (pytest-xdist): the suite is mostly single-threaded Python, so a second
# process nearly halves it on two cores; TEST_WORKERS=0 runs it in this one process.
TEST_WORKERS ?= 2

test: $(TEST_STAMP) $(CHROMIUM)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 AUDIOSCAN_CHROMIUM=$(CHROMIUM) $(PY) -m pytest -q --durations=20 \
		-n $(TEST_WORKERS)

# The README's pictures of the page, taken by the browser tests.
screenshots: $(TEST_STAMP) $(CHROMIUM)
	AUDIOSCAN_SCREENSHOTS=1 AUDIOSCAN_CHROMIUM=$(CHROMIUM) $(PY) -m pytest -q tests/web/test_browser.py

# Minutes of random kills, broken locks, damaged segments and unmounted roots against one store.
soak: $(TEST_STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -s -m soak --timeout 3600 tests/trust/test_soak.py

bench: $(TEST_STAMP)
	$(PY) bench/index_bench.py

clean:
	rm -rf $(VENV) $(VENV)-lock $(DEMO) .audioscan
