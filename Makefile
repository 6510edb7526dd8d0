PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: test demo bench install clean photos gpu-check docs

# The virtual environment, then one stamp per set of extras: the demo needs the runtime
# extras only (NumPy, tqdm, matplotlib, Pillow); the tests add pytest, hypothesis, torch (the
# oracle), onnx, serve (Starlette, Playwright), mpi (mpi4py, MPICH) and docs (Jupyter, nbmake).
$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.train: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[train]'
	touch $@

$(VENV)/.dev: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.train $(VENV)/.docs

$(VENV)/.docs: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[docs]'
	touch $@ $(VENV)/.train

install: $(VENV)/.dev

test: $(VENV)/.dev
	$(PY) -m pytest

demo: $(VENV)/.train
	$(VENV)/bin/numcnn demo --overwrite

bench: $(VENV)/.dev
	$(VENV)/bin/numcnn bench

# The documentation site, built offline into build/docs/html: the tutorials executed with their
# outputs, the API reference from the docstrings; a warning (a broken link or name) fails it.
docs: $(VENV)/.docs
	$(PY) -m sphinx -W --keep-going -q -b html docs build/docs/html

# The README's colour result: ten photos shipped in scikit-image's and scikit-learn's wheels
# (read from the wheels, nothing installed) cut into a folder of 32x32 crops, then cifar-resnet.
photos: $(VENV)/.train
	$(PY) -m pip download -q --no-deps scikit-image==0.26.0 scikit-learn==1.9.1 -d build/wheels
	$(PY) scripts/make_photo_folder.py build/wheels build/photos
	$(VENV)/bin/numcnn train --dataset build/photos --model cifar-resnet --augment --batch-size 128 \
		--optimizer adamw --lr 3e-3 --weight-decay 5e-4 --schedule warmup-cosine --epochs 15 --seed 0 \
		--out runs/cifar-resnet-photos --overwrite
	$(VENV)/bin/numcnn predict runs/cifar-resnet-photos build/photos/predict/*.jpg --top 1

# The cuda half of the checks, on a machine with an NVIDIA GPU; uses that machine's own Python
# (GPU_PYTHON, default python3) with CuPy, a CUDA PyTorch, pytest and hypothesis: see the script.
gpu-check:
	bash scripts/gpu_check.sh

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis
