#!/usr/bin/env bash
# Installs the Debian packages ovmtui needs to build and test, only those that are missing,
# so that a second `make install` costs nothing. Needs root (or sudo) only when something is missing.
set -euo pipefail

# openssh-server and -client: the Xen-over-SSH backend is tested against a real sshd.
# curl and wget: imports of resources run on the (fake) dom0, whose download tool is real.
want=(pkg-config gcc libvirt-dev tmux openssh-server openssh-client curl wget)

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
    want+=(python3)
    python=python3
fi

missing=()
for pkg in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Debian's own python3 needs python3-venv for `-m venv` and python3-dev for the headers that
# libvirt-python compiles against; a python built elsewhere (pyenv) ships both.
if command -v "$python" >/dev/null 2>&1; then
    "$python" -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
    inc=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null || true)
    [ -n "$inc" ] && [ -f "$inc/Python.h" ] || missing+=(python3-dev)
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "ovmtui: installing Debian packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
