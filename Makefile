PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/profit check policies/standard.policy policies/strict.policy
	$(BIN)/profit run policies/standard.policy examples/customers.csv --format table
	$(BIN)/profit explain policies/standard.policy examples/customers.csv --id C-1034
	$(BIN)/profit report policies/portfolio.policy examples/portfolio_customers.csv --format text
	mkdir -p out
	$(BIN)/profit report policies/portfolio.policy examples/portfolio_customers.csv --output out/report.html
	@echo "portfolio report written to out/report.html"

test: $(STAMP)
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_portfolio.py

clean:
	rm -rf $(VENV) build dist *.egg-info
