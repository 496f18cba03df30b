# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
# torch is installed first, pinned to the CPU build that lies on these machines, so that
# the project's `torch>=2.4` is already satisfied and pip never pulls a CUDA build.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev,onnx]"
	touch $@

demo: setup
	$(VENV)/bin/qwen3vl-inspect

test: setup lint
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check qwen3vl_inspect tests benchmarks demo
	$(VENV)/bin/mypy

bench: setup
	for script in encoder_speed attention_speed trace_overhead trace_memory demo_attention tui_latency compare_speed onnx_speed checkpoint_load; do \
		$(PY) benchmarks/$$script.py || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
