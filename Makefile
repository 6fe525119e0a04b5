# make demo: venv + install + train DDPG on Pendulum-v1, plot and GIF.   make test: venv + install + docs build + tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := runs/demo

.PHONY: install demo test test-fast lint docs bench-speed bench-learning bench-sweep sysdeps clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,cluster,robotics,export,tune,jaxenvs,playground,mlflow,wandb,thirdparty]'
	touch $@

install: $(BIN)/.installed

sysdeps:
	bash scripts/system-deps.sh

demo: install sysdeps
	rm -rf $(DEMO_DIR)
	$(BIN)/ddpgx train --env Pendulum-v1 --preset pendulum --total-steps 10000 --run-dir $(DEMO_DIR)
	$(BIN)/ddpgx record $(DEMO_DIR) --out $(DEMO_DIR)/policy.gif
	@echo "plot:   $(DEMO_DIR)/returns.png"
	@echo "policy: $(DEMO_DIR)/policy.gif"

test: install sysdeps  # two workers (tests/conftest.py: a module per worker, Ray modules one at a time)
	$(BIN)/lint-imports  # the import layers ([tool.importlinter] in pyproject.toml), in a second
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site  # the docs site: a broken link or a vanished API symbol fails here
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=25  # the 25 slowest tests, so the suite's time stays in view

test-fast: install  # the tests not marked slow (maths, unit and bad-input tests of every module), one process: 1-2 min
	$(BIN)/python -m pytest -m "not slow"

docs: install  # the docs site (mkdocs.yml) into site/: open site/index.html, or serve it with $(BIN)/mkdocs serve
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

bench-speed: install
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python benchmarks/speed.py

bench-learning: install
	$(BIN)/ddpgx sweep benchmarks/sweeps/pendulum.toml
	$(BIN)/ddpgx sweep benchmarks/sweeps/mujoco.toml
	$(BIN)/python benchmarks/results.py --gifs

bench-sweep: install
	$(BIN)/python benchmarks/sweep_speed.py

clean:
	rm -rf $(VENV) runs build *.egg-info
