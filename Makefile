PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: test demo bench install clean

# The virtual environment, then one stamp per set of extras: the demo needs the runtime
# extras only (NumPy, tqdm, matplotlib, Pillow); the tests add pytest, hypothesis, onnx and torch.
$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.train: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[train]'
	touch $@

$(VENV)/.dev: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.train

install: $(VENV)/.dev

test: $(VENV)/.dev
	$(PY) -m pytest

demo: $(VENV)/.train
	$(VENV)/bin/numcnn demo

bench: $(VENV)/.dev
	$(VENV)/bin/numcnn bench

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis
