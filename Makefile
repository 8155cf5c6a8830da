# pyrunc: the two set-up commands of the README.
#   make demo  - install what pyrunc needs, build it, run the demo container
#   make test  - install the test dependencies too and run the whole suite
#   make vm-test - run the suite (VM_TESTS) in a Debian 12 guest: systemd, cgroup v2 (VM_CGROUP=hybrid: v1)
PYTHON ?= python3
PIP = $(PYTHON) -m pip
# The tests and linters run in a virtual environment of their own, holding the
# versions pinned in tests/requirements.txt, so every machine runs the same.
VENV ?= .venv
VPY = $(CURDIR)/$(VENV)/bin/python
APT_PACKAGES = gcc make libc6-dev libseccomp-dev busybox-static pkg-config

.PHONY: deps install rootfs demo test-deps venv build test lint vm-deps vm-image vm-test

deps:
	@if [ "$$(id -u)" != 0 ]; then echo "run as root" >&2; exit 1; fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null

install: deps
	$(PIP) install -q setuptools wheel cffi jsonschema pyroute2
	$(PIP) install -q --no-build-isolation .

rootfs:
	bundles/make-rootfs.sh bundles/busybox/rootfs

# The installed entry point, called by its real path (not through a shim).
PYRUNC_BIN = $$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/pyrunc

demo: install rootfs
	$(PYRUNC_BIN) --root /run/pyrunc-demo run --bundle bundles/busybox demo-$$$$

test-deps: deps venv
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc containerd podman docker.io iproute2 uidmap dbus-daemon >/dev/null

# Made again whenever the pins change.
venv: $(VENV)/.pins
$(VENV)/.pins: tests/requirements.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q -r tests/requirements.txt
	cp tests/requirements.txt $@

build: venv
	$(VPY) setup.py -q build_ext --inplace

test: test-deps build rootfs
	$(VPY) -m pip install -q --no-build-isolation .
	$(VPY) -m pytest -q -p no:cacheprovider tests
	$(MAKE) lint

lint: venv
	$(VPY) -m ruff check pyrunc tests bench setup.py csrc/build_shim.py
	$(VPY) -m mypy --strict pyrunc/spec pyrunc/plan pyrunc/state pyrunc/jsonio.py

# The VM lane (tests/vm/): a Debian 12 guest booted by systemd with pure cgroup
# v2 and AppArmor, built by debootstrap into a cache directory
# (PYRUNC_VM_CACHE, default /var/tmp/pyrunc-vm) and booted under qemu.
VM_APT_PACKAGES = debootstrap qemu-system-x86 qemu-utils e2fsprogs git
VM_TESTS ?= tests
VM_PYTEST_FLAGS ?= -q -p no:cacheprovider
VM_TIMEOUT ?= 5400
# The LSM the guest boots with: apparmor (Debian's default) or selinux.
VM_LSM ?= apparmor
# systemd's cgroup layout in the guest: v2 (pure cgroup v2) or hybrid (v1
# controllers, name=systemd and an empty cgroup2 mount at /sys/fs/cgroup/unified).
VM_CGROUP ?= v2
# K=V settings for the job's environment, e.g. PYRUNC_TEST_SYSTEMD_CGROUP=1 to
# run the tests' containers under the systemd cgroup driver.
VM_ENV ?=

vm-deps:
	@if [ "$$(id -u)" != 0 ]; then echo "run as root" >&2; exit 1; fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(VM_APT_PACKAGES) >/dev/null

vm-image: vm-deps venv
	$(VPY) tests/vm/lane.py build

vm-test: vm-image
	$(VPY) tests/vm/lane.py run --timeout $(VM_TIMEOUT) --lsm $(VM_LSM) --cgroup $(VM_CGROUP) $(addprefix --env ,$(VM_ENV)) -- $(VM_PYTEST_FLAGS) $(VM_TESTS)
