# The two commands of the quick start: `make demo` and `make test`.
.PHONY: compose-check demo test test-fast lint bootstrap services image clean-sandboxes bench bench-pack bench-recall bench-webhook \
	screenshots image-check test-vllm eval-images

VENV := .venv/bin

bootstrap:
	@bash scripts/bootstrap.sh

services: bootstrap
	@bash scripts/ensure-redis.sh

test-services: services
	@bash scripts/ensure-postgres.sh
	@bash scripts/ensure-test-tools.sh

image:
	@bash scripts/build-sandbox-image.sh

# The sandbox images of every Python `qwenfix eval` can build offline (Debian's releases).
eval-images:
	@for python in 3.9 3.11 3.13; do bash scripts/build-sandbox-image.sh --python $$python; done

demo: services
	$(VENV)/qwenfix demo

lint: bootstrap
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy

test: test-services
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy
	$(VENV)/pytest

# The agent loop's behaviours alone, in-process (no Docker, Redis or network): seconds.
test-fast: bootstrap
	$(VENV)/pytest -q tests/unit

# Against a real vLLM server: its CPU build (a cached 3.4 GB venv, about 3 minutes the
# first time) serving a tiny random-weight Qwen3-MoE model. About 5 minutes on 2 cores.
test-vllm: test-services
	@bash scripts/ensure-vllm.sh >/dev/null
	QWENFIX_REQUIRE_VLLM=1 $(VENV)/pytest -q tests/vllm

# The dashboard's pages as docs/screenshots/*.png, taken by the browser test.
screenshots: test-services
	QWENFIX_SCREENSHOTS=docs/screenshots $(VENV)/pytest -q tests/integration/test_dashboard_browser.py

# The qwenfix image from the offline base (needs PyPI; not part of CI).
image-check:
	@bash scripts/check-image.sh

# deploy/compose.yaml run for real on that image, every service healthy (not part of CI).
compose-check:
	@bash scripts/compose-check.sh

clean-sandboxes:
	docker ps -aq --filter label=io.qwenfix.sandbox | xargs -r docker rm -f
	docker images -q --filter label=io.qwenfix.snapshot | xargs -r docker rmi -f

# Every benchmark next to its anchor: a table, and benchmarks/results/latest.json.
bench: services
	@command -v wrk >/dev/null || bash scripts/apt-install.sh wrk
	@bash scripts/build-sandbox-image.sh >/dev/null
	$(VENV)/python -m benchmarks

bench-pack: bootstrap
	$(VENV)/python -m benchmarks.pack

# How often the pack holds real issues' fix files, next to BM25 (held-out split).
bench-recall: bootstrap
	$(VENV)/python -m benchmarks.recall

bench-webhook: services
	@command -v wrk >/dev/null || bash scripts/apt-install.sh wrk
	$(VENV)/python -m benchmarks.webhook
