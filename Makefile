# The two commands a newcomer needs: `make example` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: setup example test bench clean server server-stop

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

setup: $(PY)
	$(PY) -m pip install --quiet -e '.[all]'
	@# The spec's layout keeps config modules and entry points at the repository root and
	@# suites in experiments/<name>/: `python experiments/x/suite_x.py` imports its config
	@# before any code of ours runs, so this environment has the root on sys.path.
	$(PY) -c 'import site, sys; open(site.getsitepackages()[0] + "/experiment_infra_root.pth", "w").write(sys.argv[1] + "\n")' "$(CURDIR)"
	@# Byte-compile the package once: a case waiter starts beside every case, and where
	@# PYTHONDONTWRITEBYTECODE is set nothing would cache the compiled modules for it.
	$(PY) -m compileall -q experiment_infra experiment_cli flows tasks >/dev/null

# Sets up, then runs the example suite end to end (offline; about 20 s once installed).
example: setup
	$(PY) flows/run_suite.py experiments/sweep/suite_sweep.py

test: setup
	$(PY) -m pytest -q

# A local Prefect server (UI at the address it prints) that every later command reports to.
server: setup
	$(PY) -m experiment_cli.kept_server start

server-stop:
	$(PY) -m experiment_cli.kept_server stop

bench: setup
	$(PY) benchmarks/bench_suite.py
	$(PY) benchmarks/bench_recovery.py

clean:
	rm -rf $(VENV) *.egg-info
