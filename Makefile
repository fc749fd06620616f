# The two commands of the README: `make demo` and `make test`. Both build .venv as needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv browser demo test lint benchmarks clean

# The ROS message packages that are not on PyPI (interfaces/: the DeepRacer car's, tf2_msgs, ros_gz_interfaces'
# SetEntityPose) are built with rosidl and installed into the venv by tools/build_interfaces.py (cmake, g++, make).
INTERFACE_SOURCES := $(wildcard interfaces/*/CMakeLists.txt interfaces/*/package.xml interfaces/*/msg/* interfaces/*/srv/* interfaces/*/action/*)

$(STAMP): requirements.txt setup.py pyproject.toml tools/build_interfaces.py $(INTERFACE_SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) tools/build_interfaces.py
	$(PY) -c "import rclpy, cv2, torch, stable_baselines3, onnxruntime, tf2_msgs.msg; from deepracer_interfaces_pkg.msg import CameraMsg, ServoCtrlMsg; from ros_gz_interfaces.srv import SetEntityPose; print('venv ready:', torch.__version__)"
	touch $(STAMP)

venv: $(STAMP)

# Chromium + chromedriver from Debian for the console's page tests (idempotent; apt-get when missing).
browser:
	bash tools/install_browser.sh

demo: venv browser
	$(VENV)/bin/deepracer-rl demo --out runs/demo

test: venv browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

benchmarks: venv
	for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) build install log runs
