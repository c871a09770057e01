# ovmtui: `make demo` and `make test` are all a fresh Debian machine needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck contracts pytest bench clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install-system-deps.sh
	PYTHON=$(PYTHON) ./scripts/install-system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)
	@echo "ovmtui installed: $(BIN)/ovmtui"

demo: install
	$(BIN)/ovmtui --demo

lint: install
	$(BIN)/ruff check ovmtui tests bench
	$(BIN)/ruff format --check ovmtui tests bench

typecheck: install
	$(BIN)/mypy --strict ovmtui

contracts: install
	$(BIN)/lint-imports

# pytest exits 5 when it collected nothing: that is a failure here, never a pass.
pytest: install
	@$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test: lint typecheck contracts pytest

bench: install
	$(BIN)/python bench/estate_refresh.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/idle_cpu.py
	$(BIN)/python bench/ssh_poll.py
	$(BIN)/python bench/far_estate.py
	$(BIN)/python bench/console_throughput.py
	$(BIN)/python bench/migration_plan.py
	$(BIN)/python bench/migration_overhead.py
	$(BIN)/python bench/storage_screen.py
	$(BIN)/python bench/definition_store.py
	$(BIN)/python bench/storage_import.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# The two-host lab (lab/lab.py; README "The lab"): two real libvirtd + QEMU hosts in network
# namespaces, as root. Builds what it lacks under .lab/ first (minutes once, then seconds).
.PHONY: lab-up lab-down lab-demo

lab-up:
	$(PYTHON) lab/lab.py up

lab-down:
	$(PYTHON) lab/lab.py down

# The lab stays up after ovmtui exits (virsh, a second look); make lab-down stops it.
lab-demo: install lab-up
	@$(BIN)/ovmtui --config .lab/estate.toml --interval 2; rc=$$?; \
	echo "The lab is still up: 'make lab-down' stops it, 'python3 lab/lab.py status' shows it."; \
	exit $$rc
