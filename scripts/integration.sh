#!/usr/bin/env bash
# Integration suite (CI runs it after scripts/test.sh; needs root): every ansible-test integration
# target under tests/integration/targets, the molecule `default` scenario of the role, and the
# fleet playbook run twice, the second run having to report zero changes.
# Usage: scripts/integration.sh [TARGET ...]   (targets only, when names are given)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bash scripts/bootstrap.sh
export PATH="$repo/.venv/bin:$PATH"

# The molecule scenario and the fleet inventory use fixed namespace, pin and file names: two runs of
# this suite on one machine (CI and a developer, two checkouts) would tear each other's hosts down.
# Take turns.
exec 9>/run/lock/whistler-xdp-integration.lock
if ! flock -n 9; then
    echo "integration: another run of this suite holds /run/lock/whistler-xdp-integration.lock; waiting"
    flock 9
fi

work=$(mktemp -d /tmp/whistler-integration-XXXXXX)
inventory=examples/playbooks/inventory/fleet.yml
cleanup() {
    ansible-playbook -i "$inventory" examples/playbooks/fleet-teardown.yml >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# ansible-test needs a real ansible_collections/whistler/xdp tree: copy the clean files.
coll="$work/ansible_collections/whistler/xdp"
mkdir -p "$coll"
tar -C "$repo" --exclude=./.venv --exclude=./.git --exclude=./tests/output --exclude=./.ansible \
    --exclude='*/__pycache__' --exclude=./.pytest_cache --exclude=./.ruff_cache -cf - . | tar -C "$coll" -xf -
export ANSIBLE_COLLECTIONS_PATH="$work"

echo "integration: ansible-test targets"
(cd "$coll" && ansible-test integration --local --python 3.11 --allow-destructive --allow-root \
    --color no "$@")
[ "$#" -gt 0 ] && exit 0

echo "integration: molecule default scenario"
(cd "$coll/extensions" && molecule test -s default)

echo "integration: fleet playbook, twice"
export ANSIBLE_PYTHON_INTERPRETER="$repo/.venv/bin/python"
ansible-playbook -i "$inventory" examples/playbooks/fleet-hosts.yml
ansible-playbook -i "$inventory" examples/playbooks/fleet.yml
ansible-playbook -i "$inventory" examples/playbooks/fleet.yml | tee "$work/fleet-second.log"
if ! grep -E '^edge[0-9]+ +: ' "$work/fleet-second.log" | grep -qv 'changed=0 '; then
    echo "integration: second fleet run reported zero changes"
else
    echo "integration: the second fleet run changed something" >&2
    exit 1
fi
