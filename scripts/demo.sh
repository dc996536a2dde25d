#!/usr/bin/env bash
# The main job: on a fresh machine, set everything up (scripts/bootstrap.sh), create a throwaway
# veth pair inside network namespaces this script creates, roll the seed's dispatcher out with
# the whistler.xdp.tail_call_dispatch role, send TCP/UDP traffic, show the handlers' counters,
# and remove everything again (namespaces, pins, files), also when a step fails. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

tag=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
ns="wxd-$tag" peer="wxd-$tag-peer" subnet="10.250.$((16#${tag:0:2} % 250 + 1))"
work=$(mktemp -d /tmp/whistler-demo-XXXXXX)
pins="/sys/fs/bpf/whistler-demo-$ns"

cleanup() {
    ip netns del "$ns" 2>/dev/null || true
    ip netns del "$peer" 2>/dev/null || true
    rm -rf "$pins" "$work"
}
trap cleanup EXIT

# Make the repository visible as the collection whistler.xdp.
mkdir -p "$work/collections/ansible_collections/whistler"
ln -s "$PWD" "$work/collections/ansible_collections/whistler/xdp"
export ANSIBLE_COLLECTIONS_PATH="$work/collections"

echo "demo: namespace $ns (veth0 $subnet.1) <-> $peer (veth1 $subnet.2)"
ip netns add "$ns"
ip netns add "$peer"
ip -n "$ns" link add veth0 type veth peer name veth1 netns "$peer"
ip -n "$ns" addr add "$subnet.1/24" dev veth0
ip -n "$peer" addr add "$subnet.2/24" dev veth1
ip -n "$ns" link set veth0 up
ip -n "$peer" link set veth1 up

.venv/bin/ansible-playbook -i localhost, -c local \
    -e ansible_python_interpreter="$PWD/.venv/bin/python" \
    -e demo_netns="$ns" -e demo_peer_netns="$peer" -e demo_address="$subnet.1" -e demo_dir="$work" \
    examples/playbooks/demo.yml
