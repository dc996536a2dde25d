#!/usr/bin/env bash
# The Ansible-side checks of the collection, run by CI after pytest (needs only PyPI):
#   ansible-test sanity (every test, empty ignore file), ansible-test units, antsibull-changelog lint,
#   ansible-lint --profile production, ansible-galaxy collection build + install, and
#   ansible-doc for every module. Exits non-zero on the first failure.
# ansible-test needs the collection under .../ansible_collections/whistler/xdp/, so the checks run
# on a copy of the clean files (tracked or new, never ignored ones) in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BIN=$REPO/.venv/bin
PY_VERSION=3.11

for tool in ansible-test ansible-galaxy ansible-doc ansible-lint antsibull-changelog; do
    [ -x "$BIN/$tool" ] || { echo "ansible-checks: $BIN/$tool missing (install requirements-dev.txt)" >&2; exit 1; }
done
export PATH=$BIN:$PATH

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
COLL=$WORK/ansible_collections/whistler/xdp
mkdir -p "$COLL"
git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
    | tar --null --files-from=- -cf - | tar -xf - -C "$COLL"

# ansible-test bootstraps pip in its sanity venvs with a script it downloads from a host that
# is unreachable here (ansible/ansible#77304); pre-seed its cache with an ensurepip shim.
GET_PIP=$HOME/.ansible/test/cache/get_pip_24_2.py
if [ ! -s "$GET_PIP" ]; then
    mkdir -p "$(dirname "$GET_PIP")"
    cat > "$GET_PIP" <<'PY'
"""Stand-in for ansible-test's downloaded get-pip: ensurepip, then pip installs what was asked."""
import subprocess, sys
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args])
PY
fi

step() { echo; echo "=== ansible-checks: $*"; }

cd "$COLL"
step "ansible-test sanity"
ansible-test sanity --venv --python "$PY_VERSION" --color no
step "ansible-test units"
ansible-test units --local --python "$PY_VERSION" --color no tests/unit/plugins/
step "antsibull-changelog lint"
antsibull-changelog lint
step "ansible-lint (production profile)"
# The playbooks and molecule scenario use the collection by FQCN: let Ansible find this copy.
ANSIBLE_COLLECTIONS_PATH=$WORK ansible-lint --profile production --offline

step "ansible-galaxy collection build + install"
ansible-galaxy collection build --output-path "$WORK/dist" .
# Install and read the docs from outside the source tree, so only the installed copy is visible.
cd "$WORK"
export ANSIBLE_COLLECTIONS_PATH=$WORK/installed
ansible-galaxy collection install --offline -p "$WORK/installed" "$WORK"/dist/whistler-xdp-*.tar.gz
step "ansible-doc"
for path in "$COLL"/plugins/modules/xdp_*.py; do
    module=$(basename "$path" .py)
    ansible-doc "whistler.xdp.$module" > "$WORK/doc.txt"
    grep -q "whistler.xdp.$module" "$WORK/doc.txt" || { echo "ansible-doc whistler.xdp.$module rendered nothing" >&2; exit 1; }
    echo "ansible-doc whistler.xdp.$module: ok"
done
echo; echo "ansible-checks: all passed"
