#!/usr/bin/env bash
# Prepare a fresh Debian machine for whistler.xdp: system packages (ShellCheck among them, so that
# ansible-test sanity runs its shellcheck test instead of skipping it), a venv with the Python
# dependencies (in .venv), and bpffs mounted at /sys/fs/bpf. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for tool in bpftool:bpftool clang:clang llvm-objdump:llvm ip:iproute2 nsenter:util-linux ping:iputils-ping shellcheck:shellcheck /usr/include/bpf/bpf_helpers.h:libbpf-dev; do
    probe=${tool%%:*}
    if [ "${probe#/}" != "$probe" ]; then [ -e "$probe" ] && continue; else command -v "$probe" >/dev/null 2>&1 && continue; fi
    need_apt+=("${tool##*:}")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "bootstrap: installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c 'import pyroute2, elftools, jsonschema, pytest, ansible' 2>/dev/null \
   || [ requirements-dev.txt -nt .venv/.installed ]; then
    .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
    touch .venv/.installed
fi

if ! mount | grep -q ' /sys/fs/bpf type bpf'; then
    mkdir -p /sys/fs/bpf
    mount -t bpf bpf /sys/fs/bpf
fi
echo "bootstrap: ready (venv .venv, bpffs mounted)"
