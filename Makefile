# Two commands for a newcomer (see README):
#   make demo   - runs the appliance on its embedded default (simulated register)
#   make test   - installs everything needed and runs every check
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest app bench system-deps venv clean

$(STAMP): pyproject.toml
	@$(PY) -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV) \
		|| { rm -rf $(VENV); ./scripts/install-system-deps python3-venv && $(PYTHON) -m venv $(VENV); }; }
	$(PY) -m pip install -q --upgrade pip 'setuptools>=77'
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

system-deps:
	./scripts/install-system-deps

demo: $(STAMP)
	$(VENV)/bin/kassa-appliance demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# Parallel over the machine's cores, a test module per worker (module fixtures such as a
# shared daemon or NATS cluster stay in one process); every test still runs.
pytest: $(STAMP)
	$(PY) -m pytest -q -n auto --dist loadfile

# The Bitrix24 app (app/): locked npm install, strict type check, build of
# app/dist/kassa-app.zip, Vitest unit tests.
app:
	cd app && npm ci --no-audit --no-fund --loglevel=error && npm run build && npm test

test: system-deps $(STAMP) lint typecheck app pytest

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build app/node_modules app/dist


# ---------------------------------------------------------------------------------------
# Snap packaging (docs/deploy.md). `snap` and `gadget` need snapcraft >= 8
# (sudo snap install snapcraft --classic), `model` a gpg key known to `snap keys`
# (snap create-key $(MODEL_KEY)), `image*` ubuntu-image (sudo snap install ubuntu-image
# --classic). `check-snap` runs the offline packaging checks and needs none of them.
SNAPCRAFT ?= snapcraft
UBUNTU_IMAGE ?= ubuntu-image
SNAP_ARCH ?= arm64
BUILD_DIR ?= build
MODEL_KEY ?= kassa-dev
MODEL_JSON ?= model-assertion.json
MODEL_FILE = $(BUILD_DIR)/$(basename $(notdir $(MODEL_JSON))).model

.PHONY: snap gadget model image image-dev check-snap

# ATOL_DTO=<DTO10 archive> stages libfptr10.so for $(SNAP_ARCH) (docs/atol-driver.md).
snap:
	mkdir -p $(BUILD_DIR)
	$(if $(ATOL_DTO),$(PYTHON) scripts/stage-libfptr10 --arch $(SNAP_ARCH) $(ATOL_DTO) snap/local/dto10/$(SNAP_ARCH))
	$(SNAPCRAFT) pack --build-for=$(SNAP_ARCH) --output $(BUILD_DIR)

gadget:
	mkdir -p $(BUILD_DIR)
	cd gadget && $(SNAPCRAFT) pack --build-for=arm64 --output ../$(BUILD_DIR)

# The model's timestamp must fall inside the signing key's validity: stamp it now.
model:
	mkdir -p $(BUILD_DIR)
	$(PYTHON) -c 'import datetime, json, sys; m = json.load(open(sys.argv[1])); m["timestamp"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00"); json.dump(m, open(sys.argv[2], "w"), indent=2)' $(MODEL_JSON) $(BUILD_DIR)/model-stamped.json
	snap sign -k $(MODEL_KEY) $(BUILD_DIR)/model-stamped.json > $(MODEL_FILE).tmp
	mv $(MODEL_FILE).tmp $(MODEL_FILE)
	@echo "signed $(MODEL_FILE)"

# Signed image: every snap (ours included) comes from the store.
image: model
	$(UBUNTU_IMAGE) snap --output-dir $(BUILD_DIR)/image $(MODEL_FILE)

# Development image: dangerous model + the locally built snaps from $(BUILD_DIR).
image-dev:
	$(MAKE) model MODEL_JSON=model-assertion-dangerous.json
	$(UBUNTU_IMAGE) snap --output-dir $(BUILD_DIR)/image \
		$(foreach s,$(wildcard $(BUILD_DIR)/kassa-appliance_*_arm64.snap $(BUILD_DIR)/kassa-pi_*_arm64.snap),--snap $(s)) \
		$(BUILD_DIR)/model-assertion-dangerous.model

check-snap: $(STAMP)
	$(PY) -m pytest -q tests/test_snap_packaging.py tests/test_snap_model.py tests/test_gadget.py tests/test_hooks.py
