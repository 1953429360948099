# pgkd_nb: two commands for a fresh machine — `make demo` and `make test`.
PY ?= python3
PIP = $(PY) -m pip
# one install stamp per Python environment: a new virtual environment installs again
ENV_ID := $(shell $(PY) -c "import sys, hashlib; print(hashlib.sha1(sys.prefix.encode()).hexdigest()[:10])")
STAMP = .make/install-$(ENV_ID).stamp
PRESET ?= smoke
JOBS ?= 1

.PHONY: install demo test readme lint outputs check-outputs check reproduce bench clean docs lab quality-gate compare-report

$(STAMP): settings.ini setup.py
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[dev,export,ray,track,setfit]"
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

# re-execute the teaching notebooks and keep their (small, path-free) outputs
outputs: $(STAMP)
	$(PY) -c "from pgkd_nb.report import TEACHING_NOTEBOOKS as T, execute_outputs; execute_outputs([f'nbs/{n}.ipynb' for n in T])"
	nbdev_clean

check-outputs: $(STAMP)
	$(PY) -c "import sys; from pgkd_nb.report import TEACHING_NOTEBOOKS as T, check_outputs; p = check_outputs([f'nbs/{n}.ipynb' for n in T]); print(*p, sep='\\n'); sys.exit(bool(p))"

check: $(STAMP) lint check-outputs
	nbdev_export && nbdev_clean && $(MAKE) -s readme
	git diff --exit-code -- nbs pgkd_nb README.md || (echo "nbdev_export / nbdev_clean / make readme changed tracked files: run them and commit" && exit 1)

reproduce: $(STAMP)
	pgkd reproduce --grid $(PRESET) --jobs $(JOBS)

bench: $(STAMP)
	pgkd bench

# issue 25's study: a noisy SIMULATED teacher, gate off / on, 3 sets x 4 noise rates x 5 seeds (cpu preset, ~1 h on 2 cores)
QG_SETTINGS = {"datasets": ["huffpost", "banking77", "amazon_hierarchical"], "seeds": 5, "noises": [0, 0.1, 0.2, 0.3], \
  "jobs": 2, "runs_dir": "runs/quality_gate", "out_dir": "reports/quality_gate", "run": {"preset": "cpu", "n_samples": 1000}}
quality-gate: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m papermill --log-level WARNING nbs/repro/quality_gate.ipynb reports/quality_gate/quality_gate.ipynb \
	  -y '{"settings": $(QG_SETTINGS)}'

# issue 26's comparisons that reports/compare/ holds beside the earlier ones (SIMULATED teacher; cpu preset): SetFit
# beside the kit's student on banking77, and huffpost with a noisy teacher (~20 min on 2 cores)
CMP_SETTINGS = {"comparisons": [{"name": "banking77-setfit", "dataset": "banking77", "arms": "pgkd,setfit", "seeds": 3}, \
  {"name": "huffpost-noise0.2", "dataset": "huffpost", "arms": "pgkd,unguided,label,random", "seeds": 5, \
   "run": {"teacher": {"noise": 0.2, "noise_mode": "neighbour"}}}], "runs_dir": "runs/compare", "out_dir": "reports/compare"}
compare-report: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m papermill --log-level WARNING nbs/repro/compare.ipynb reports/compare/compare.ipynb \
	  -y '{"settings": $(CMP_SETTINGS)}'

# the documentation site, built offline from the notebooks into _docs/ (open _docs/index.html)
docs: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) tools/docs.py

# the notebooks in JupyterLab, the tutorial first
lab: $(STAMP)
	$(PY) -m jupyter lab nbs/tutorial.ipynb

clean:
	rm -rf .make runs _proc _docs
