# minikp: two commands on a fresh machine, as root:
#   make demo   a scenario up, requests through a Service, the rules shown, torn down
#   make test   unit tests (no root needed) and kernel tests (root, real namespaces)
#   make images the images Docker pods run (images/), built offline
#   make soak   100 crash cycles, down/up races, minutes of churn under load; figures into
#               docs/reliability.md
PY ?= python3

.PHONY: setup demo test unit kernel bench soak clean images

setup:
	@scripts/setup.sh

demo: setup
	@scripts/demo.sh

test: setup
	$(PY) -m pytest -q -p no:cacheprovider --durations=25 tests

# minikp/serve-hostname, echo, netbox, pause: built offline into the private Docker engine
images: setup
	@PY=$(PY) scripts/images.sh

unit:
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

kernel: setup
	$(PY) -m pytest -q -p no:cacheprovider tests/kernel

bench: setup
	@scripts/bench.sh

soak: setup
	$(PY) tests/soak.py
	$(PY) tests/soak_churn.py

# Only this checkout's caches: clusters are never touched from make (on a shared machine
# they may be someone else's); remove one of yours with `minikp down --name NAME`.
clean:
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
