#!/usr/bin/env bash
# The compatibility matrix of docs/support.md (needs root and the pyenv Pythons it names):
#   hosts   the module-level lifecycle (tests/integration/targets/xdp_lifecycle: preflight, load, wire,
#           attach, upgrade, teardown on a namespaced veth pair) with the managed-host interpreter set
#           to each supported Python, all hosts at once (tests/compat/host-pythons.yml); each Python gets
#           a venv with the loader's requirements from PyPI (3.9 with the oldest supported versions,
#           the others with the newest). Python 3.8 must be refused by the preflight and every module.
#   newest  the newest ansible-core release on the controller (2.21, Python 3.13): the sanity tests whose
#           verdict depends on the ansible-core version (scripts/ansible-checks.sh sanity-core; the
#           others check files the same way everywhere and run once, with 2.19), units,
#           build + ansible-doc, and every integration target
#   middle  ansible-core 2.20 (Python 3.12): the same, but only the integration targets of the
#           module-level lifecycle and of the role (the full set runs at both ends)
#   ee      ansible-builder: the collection's EE metadata reaches an execution environment's build
# The oldest ansible-core (2.19, Python 3.11) runs everything in scripts/ansible-checks.sh and
# scripts/integration.sh. Usage: scripts/compat.sh [JOB ...]   (default: every job; each runs as a
# stage of scripts/lib.sh, so its wall time is printed and recorded)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
bash scripts/bootstrap.sh
export PATH=$PWD/.venv/bin:$PATH

# Managed-host Pythons: version -> pip requirements. Keep in step with docs/support.md and
# plugins/module_utils/_requirements.py (PYTHON_MIN, PYTHON_NEWEST_TESTED, minimum versions).
SUPPORTED_PYTHONS=(3.9 3.10 3.11 3.12 3.13)
REFUSED_PYTHONS=(3.8)
OLDEST_REQUIREMENTS=(pyroute2==0.9.1 pyelftools==0.31 jsonschema==4.0.0)
NEWEST_REQUIREMENTS=(pyroute2 pyelftools jsonschema)

host_pythons() {
    local work inventory py spec
    work=$(mktemp -d /tmp/whistler-compat-XXXXXX)
    # shellcheck disable=SC2064  # expand now; stage runs this in a subshell, whose exit removes it
    trap "rm -rf '$work'" EXIT
    collection_tree "$work"
    # Build the venvs side by side (mostly waiting on PyPI), then check each one was made.
    for py in "${REFUSED_PYTHONS[@]}" "${SUPPORTED_PYTHONS[@]}"; do
        if [ "$py" = "${SUPPORTED_PYTHONS[0]}" ]; then spec=("${OLDEST_REQUIREMENTS[@]}"); else spec=("${NEWEST_REQUIREMENTS[@]}"); fi
        (cached_venv "host-py$py" "$(python_for "$py")" "${spec[@]}" > "$work/venv-$py") > "$work/venv-$py.log" 2>&1 &
    done
    wait || true
    inventory=$work/inventory.yml
    group() {  # group NAME PYTHON...: the inventory lines of one group, a host per Python
        local py
        echo "    $1:"
        echo "      hosts:"
        shift
        for py in "$@"; do
            if [ ! -s "$work/venv-$py" ]; then
                cat "$work/venv-$py.log" >&2
                echo "compat: no venv for Python $py" >&2
                return 1
            fi
            echo "        python$py: {ansible_python_interpreter: $(cat "$work/venv-$py")/bin/python, compat_python: '$py'}"
        done
    }
    {
        echo "all:"
        echo "  vars: {ansible_connection: local}"
        echo "  children:"
        group supported "${SUPPORTED_PYTHONS[@]}"
        group refused "${REFUSED_PYTHONS[@]}"
    } > "$inventory"
    cat "$inventory"
    local hosts=$(( ${#SUPPORTED_PYTHONS[@]} + ${#REFUSED_PYTHONS[@]} ))
    ANSIBLE_COLLECTIONS_PATH=$work ANSIBLE_ROLES_PATH=$work/ansible_collections/whistler/xdp/tests/integration/targets \
        ansible-playbook -i "$inventory" --forks "$hosts" \
        "$work/ansible_collections/whistler/xdp/tests/compat/host-pythons.yml"
}

newest() {
    bash scripts/ansible-checks.sh --core 2.21 sanity-core units build
    bash scripts/integration.sh --core 2.21
}

middle() {
    bash scripts/ansible-checks.sh --core 2.20 sanity-core units build
    bash scripts/integration.sh --core 2.20 xdp_lifecycle role_tail_call_dispatch
}

ee() {
    bash scripts/ee-check.sh
}

jobs=("$@")
[ "${#jobs[@]}" -gt 0 ] || jobs=(hosts newest middle ee)
for job in "${jobs[@]}"; do
    case $job in
        hosts) stage "compat: managed-host Pythons" host_pythons ;;
        newest) stage "compat: ansible-core 2.21 controller" newest ;;
        middle) stage "compat: ansible-core 2.20 controller" middle ;;
        ee) stage "compat: execution environment" ee ;;
        *) echo "compat: unknown job $job (hosts, newest, middle, ee)" >&2; exit 2 ;;
    esac
done
