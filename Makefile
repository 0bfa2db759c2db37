# minikp: two commands on a fresh machine, as root:
#   make demo   a scenario up, requests through a Service, the rules shown, torn down
#   make test   unit tests (no root needed) and kernel tests (root, real namespaces)
PY ?= python3

.PHONY: setup demo test unit kernel bench clean

setup:
	@scripts/setup.sh

demo: setup
	@scripts/demo.sh

test: setup
	$(PY) -m pytest -q -p no:cacheprovider tests

unit:
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

kernel: setup
	$(PY) -m pytest -q -p no:cacheprovider tests/kernel

bench: setup
	@scripts/bench.sh

clean:
	-minikp down --all
