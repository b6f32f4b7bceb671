# Every target sets up .venv/ on first use, so `make sweep` and `make test`
# work alone on a fresh machine with Python 3.11 and make.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup sweep answer test test-exhaustive lint format bench docs clean sysdeps

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job: the default grid on the embedded Ray, into outputs/store
# (resumable: a rerun computes only what the store lacks).
sweep: $(STAMP)
	$(BIN)/asi-sweep experiment=default
	$(BIN)/asi-report
	$(BIN)/asi-answer

answer: $(STAMP)
	$(BIN)/asi-answer

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# System packages the tests use (fio, chromium). The stamp is made only once both
# are there, so a skipped install (not root, no apt) is retried next time.
SYSDEPS := $(VENV)/.sysdeps

sysdeps: $(SYSDEPS)

$(SYSDEPS): tools/install-system-deps.sh
	bash tools/install-system-deps.sh
	@if command -v fio >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1; then mkdir -p $(VENV) && touch $@; fi

test: $(STAMP) $(SYSDEPS) lint
	$(BIN)/python -m pytest -n auto

# Generated bad input at >= 1000 examples per test (hypothesis profile `exhaustive`,
# tests/profiles.py): every command's override sets, fio JSON, manifests, damaged
# store and history parts. Slow (about 27 min on 2 shared cores), so `make test` and CI
# run the same tests at their everyday counts instead.
test-exhaustive: $(STAMP)
	HYPOTHESIS_PROFILE=exhaustive $(BIN)/python -m pytest -m bad_input -p no:cacheprovider --durations=0

# The README's tables (short answer, what changed, the answer example, the published checks,
# the presets and the benchmarks) and the presets' header comments are generated from the
# current model, the presets' grids and benchmarks/results.json; tests/test_readme.py fails
# when they are stale.
docs: $(STAMP)
	$(BIN)/python tools/make_docs.py

# Every benchmark, merged into benchmarks/results.json (committed; `make docs` renders it).
bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV)
	find model pipeline tests -name __pycache__ -prune -exec rm -rf {} +  # numba's cache too
