# kgnet: `make demo` and `make test` are all a newcomer types. Both set up .venv and the data
# first; every step is idempotent and works offline once the packages are on the machine.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.kgnet-installed

.PHONY: install data demo test test-slow bench bench-quick bench-long clean

install: $(STAMP) data

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@bash scripts/install-python.sh $(VENV)
	@touch $(STAMP)

data:
	@bash scripts/install-data.sh

demo: install
	$(PY) -m kgnet.kg check kg/fashion_mnist_garments.ttl --dataset fashion_mnist
	$(PY) -m kgnet.train

# -n auto: one pytest worker per core (xdist); on 2 cores the suite takes 355 s instead of 452 s
test: install
	$(PY) -m pytest -m "not slow" -q -n auto --durations=15

test-slow: install
	$(PY) -m pytest -m slow -q

bench: install
	$(PY) benchmarks/kg_compile.py

# the quick benchmark suite (Fashion-MNIST, CPU, ~1 hour on 2 cores; resumable), then its report
bench-quick: install
	$(PY) -m benchmarks.run --suite quick --jobs 2 --threads 1

# the long suite (all of Fashion-MNIST, a ResNet and a ViT trained to near convergence, CPU,
# hours on 2 cores; resumable: a killed run continues where it stopped), then its report
bench-long: install
	$(PY) -m benchmarks.run --suite long --jobs 2 --threads 1

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
