# pgkd_nb: two commands for a fresh machine — `make demo` and `make test`.
PY ?= python3
PIP = $(PY) -m pip
# one install stamp per Python environment: a new virtual environment installs again
ENV_ID := $(shell $(PY) -c "import sys, hashlib; print(hashlib.sha1(sys.prefix.encode()).hexdigest()[:10])")
STAMP = .make/install-$(ENV_ID).stamp
PRESET ?= smoke
JOBS ?= 1

.PHONY: install demo test test-fast readme lint check reproduce bench clean

$(STAMP): settings.ini setup.py
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[dev]"
	@mkdir -p .make && touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	pgkd demo

test: $(STAMP)
	nbdev_test --n_workers 2
	$(PY) -m pytest -q tests

readme: $(STAMP)
	jupyter nbconvert --log-level WARN --to markdown nbs/index.ipynb --output-dir . --output README

lint: $(STAMP)
	$(PY) -m ruff check pgkd_nb tests

check: $(STAMP) lint
	nbdev_export && nbdev_clean && $(MAKE) -s readme
	git diff --exit-code -- nbs pgkd_nb README.md || (echo "nbdev_export / nbdev_clean / make readme changed tracked files: run them and commit" && exit 1)

reproduce: $(STAMP)
	pgkd reproduce --preset $(PRESET) --jobs $(JOBS)

bench: $(STAMP)
	pgkd bench

clean:
	rm -rf .make runs _proc _docs
