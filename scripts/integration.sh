#!/usr/bin/env bash
# Integration suite (needs root): every ansible-test integration target under tests/integration/targets,
# the molecule `default` scenario of the role on a namespaced veth host, and the fleet playbook run
# twice, the second run having to report zero changes.
# Usage: scripts/integration.sh [--core X.Y] [TARGET ...]
#   --core X.Y  run the ansible-test targets with that ansible-core on the controller (scripts/lib.sh
#               core_venv; default 2.19, the shared .venv); molecule and the fleet run with 2.19 only
#   TARGET ...  only these ansible-test targets (no molecule, no fleet)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
bash scripts/bootstrap.sh

core=2.19
if [ "${1:-}" = --core ]; then core=$2; shift 2; fi
venv=$(core_venv "$core")
py_version=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
export PATH="$venv/bin:$repo/.venv/bin:$PATH"

work=$(mktemp -d /tmp/whistler-integration-XXXXXX)
inventory=examples/playbooks/inventory/fleet.yml
fleet_used=false
cleanup() {
    if $fleet_used; then
        ansible-playbook -i "$inventory" examples/playbooks/fleet-teardown.yml >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

collection_tree "$work"
coll="$work/ansible_collections/whistler/xdp"
export ANSIBLE_COLLECTIONS_PATH="$work"

targets() {
    cd "$coll"
    ansible-test integration --local --python "$py_version" --allow-destructive --allow-root --color no "$@"
}
stage "integration: ansible-test targets (ansible-core $core, Python $py_version)" targets "$@"
if [ "$#" -gt 0 ] || [ "$core" != 2.19 ]; then
    exit 0
fi

# Molecule finds the scenario (and the collection) only when run from the collection's root.
molecule_scenario() {
    export WHISTLER_MOLECULE_ID
    WHISTLER_MOLECULE_ID=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
    (cd "$coll" && molecule test -s default) 2>&1 | tee "$work/molecule.log"
    # A scenario that matched no host "passes" by skipping every play: never accept that.
    sed 's/\x1b\[[0-9;]*m//g' "$work/molecule.log" > "$work/molecule.txt"
    if grep -q 'no hosts matched' "$work/molecule.txt" || ! grep -Eq 'xdp-host +: ok=[1-9]' "$work/molecule.txt"; then
        echo "integration: the molecule scenario did not run on its host (no hosts matched)" >&2
        return 1
    fi
}
stage "integration: molecule default scenario" molecule_scenario

# The fleet inventory uses fixed namespace, pin and file names (the targets and molecule use random
# ones): two fleet runs on one machine (CI and a developer, two checkouts) would tear each other's
# hosts down. Take turns.
exec 9>/run/lock/whistler-xdp-integration.lock
if ! flock -n 9; then
    echo "integration: another run of the fleet playbook holds /run/lock/whistler-xdp-integration.lock; waiting"
    flock 9
fi
fleet_used=true
fleet() {
    export ANSIBLE_PYTHON_INTERPRETER="$repo/.venv/bin/python"
    ansible-playbook -i "$inventory" examples/playbooks/fleet-hosts.yml
    ansible-playbook -i "$inventory" examples/playbooks/fleet.yml
    ansible-playbook -i "$inventory" examples/playbooks/fleet.yml | tee "$work/fleet-second.log"
    if grep -E '^edge[0-9]+ +: ' "$work/fleet-second.log" | grep -qv 'changed=0 '; then
        echo "integration: the second fleet run changed something" >&2
        return 1
    fi
    echo "integration: second fleet run reported zero changes"
}
stage "integration: fleet playbook, twice" fleet
