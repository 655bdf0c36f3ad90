PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench bench-compare clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,excel,parquet,encodings]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/profit check policies/standard.policy policies/strict.policy
	$(BIN)/profit run policies/standard.policy examples/customers.csv --format table
	$(BIN)/profit explain policies/standard.policy examples/customers.csv --id C-1034
	$(BIN)/profit report policies/portfolio.policy examples/portfolio_customers.csv --format text
	@echo "--- a customer that turned unprofitable over 8 quarters, and why (policies/lifecycle.policy)"
	$(BIN)/profit explain policies/lifecycle.policy examples/customer_history.csv --id C-1013 --period 2026Q4
	mkdir -p out
	$(BIN)/profit report policies/portfolio.policy examples/portfolio_customers.csv --output out/report.html
	@echo "portfolio report written to out/report.html"
	$(BIN)/profit report policies/lifecycle.policy examples/customer_history.csv --output out/history.html
	@echo "the report over 8 quarters (profit per period, migration of classes, warnings) written to out/history.html"

test: $(STAMP)
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -q

# make fuzz: tests/test_fuzz.py (bounded in `make test`) with many more examples and longer bounds
FUZZ_EXAMPLES ?= 10000
FUZZ_DEADLINE_MS ?= 30000
FUZZ_BUDGET_S ?= 900
.PHONY: fuzz
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_DEADLINE_MS=$(FUZZ_DEADLINE_MS) FUZZ_BUDGET_S=$(FUZZ_BUDGET_S) \
	  $(BIN)/python -m pytest -q -p no:cacheprovider --hypothesis-show-statistics tests/test_fuzz.py

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_portfolio.py
	$(BIN)/python benchmarks/bench_check.py
	$(BIN)/python benchmarks/bench_history.py

# make bench-compare BASE=<older commit>: the per-record figures of both, measured in one run
bench-compare: $(STAMP)
	$(BIN)/python benchmarks/compare.py --base $(BASE)

clean:
	rm -rf $(VENV) build dist *.egg-info
