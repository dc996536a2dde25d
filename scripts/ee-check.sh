#!/usr/bin/env bash
# Execution environments (images cannot be built here, so this checks what ansible-builder makes):
# 1. ansible-builder introspect, the step an image build runs over the installed collections, finds the
#    collection's Python and system requirements through meta/execution-environment.yml;
# 2. ansible-builder create turns examples/execution-environment/execution-environment.yml into a build
#    context that installs whistler.xdp, and, for the collection as built here (the tarball, which
#    carries meta/execution-environment.yml, requirements.txt and bindep.txt), a context holding it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
repo=$PWD
builder=$(cached_venv ansible-builder "$(python_for 3.11)" ansible-builder)/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "ee-check: $*" >&2; exit 1; }
has() {  # has FILE LINE...: every LINE is a line of FILE (ignoring "# from ..." comments after it)
    local file=$1 line
    shift
    for line in "$@"; do
        sed 's/[[:space:]]*#.*$//' "$file" | grep -qxF -- "$line" || { cat "$file" >&2; fail "$file lacks '$line'"; }
    done
}

collection_tree "$work/src"
(cd "$work/src/ansible_collections/whistler/xdp" && "$repo/.venv/bin/ansible-galaxy" collection build --output-path "$work/dist" . >/dev/null)
tarball=$(echo "$work"/dist/whistler-xdp-*.tar.gz)
.venv/bin/ansible-galaxy collection install --offline --force -p "$work/installed" "$tarball" >/dev/null

echo "ee-check: ansible-builder introspect"
"$builder/ansible-builder" introspect "$work/installed" --write-pip "$work/pip.txt" --write-bindep "$work/bindep.txt"
has "$work/pip.txt" "pyroute2>=0.9.1" "pyelftools>=0.31" "jsonschema>=4.0"
has "$work/bindep.txt" "util-linux [platform:dpkg]" "util-linux-core [platform:rpm]"
grep -q "whistler.xdp" "$work/pip.txt" || fail "introspect did not attribute the requirements to whistler.xdp"

echo "ee-check: ansible-builder create, the example definition"
"$builder/ansible-builder" create -f examples/execution-environment/execution-environment.yml -c "$work/example" \
    --output-filename Containerfile >/dev/null
grep -q "name: whistler.xdp" "$work/example/_build/requirements.yml" || fail "the example context does not install whistler.xdp"
grep -q "introspect" "$work/example/Containerfile" || fail "the example Containerfile does not introspect collections"

echo "ee-check: ansible-builder create, the collection built here"
mkdir -p "$work/local"
cp "$tarball" "$work/local/"
sed -e "s|      - name: whistler.xdp|      - name: /build/collections/$(basename "$tarball")\n        type: file|" \
    -e '/version: ">=1.0.0"/d' examples/execution-environment/execution-environment.yml > "$work/local/execution-environment.yml"
cat >> "$work/local/execution-environment.yml" <<YAML
additional_build_files:
  - src: $(basename "$tarball")
    dest: collections
additional_build_steps:
  prepend_galaxy:
    - COPY _build/collections/ /build/collections/
YAML
"$builder/ansible-builder" create -f "$work/local/execution-environment.yml" -c "$work/context" \
    --output-filename Containerfile >/dev/null
[ -s "$work/context/_build/collections/$(basename "$tarball")" ] || fail "the context lacks the collection"
grep -q "name: /build/collections/$(basename "$tarball")" "$work/context/_build/requirements.yml" \
    || fail "the context does not install the collection built here"
tar -xzf "$work/context/_build/collections/$(basename "$tarball")" -C "$work/context" meta/execution-environment.yml requirements.txt bindep.txt
has "$work/context/requirements.txt" "pyroute2>=0.9.1" "pyelftools>=0.31"
has "$work/context/bindep.txt" "util-linux [platform:dpkg]"
grep -q "python: requirements.txt" "$work/context/meta/execution-environment.yml" || fail "meta/execution-environment.yml does not name requirements.txt"
echo "ee-check: the build context holds whistler.xdp with its Python and system requirements"
