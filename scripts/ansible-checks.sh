#!/usr/bin/env bash
# The Ansible-side checks of the collection (needs only PyPI):
#   sanity     ansible-test sanity, every test, empty ignore files
#   sanity-core  only the sanity tests whose verdict depends on the ansible-core version (its module
#              docs schema, pylint plugins and import rules, supported Pythons); the others (pep8,
#              yamllint, shellcheck, line endings, ...) check files the same way on every version
#   units      ansible-test units
#   changelog  antsibull-changelog lint
#   lint       ansible-lint --profile production
#   build      ansible-galaxy collection build + install, ansible-doc for every module
# Usage: scripts/ansible-checks.sh [--core X.Y] [STEP ...]   (default: ansible-core 2.19, every step)
# --core picks the controller: 2.19 is the shared .venv (Python 3.11); 2.20/2.21 get a venv of their
# own (scripts/lib.sh core_venv, Python 3.12/3.13). Exits non-zero on the first failure.
# ansible-test needs the collection under .../ansible_collections/whistler/xdp/, so the checks run
# on a copy of the clean files in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

core=2.19
if [ "${1:-}" = --core ]; then core=$2; shift 2; fi
steps=("$@")
[ "${#steps[@]}" -gt 0 ] || steps=(sanity units changelog lint build)

venv=$(core_venv "$core")
TOOLS=$PWD/.venv/bin  # ansible-lint and antsibull-changelog: tools of their own, one copy
BIN=$venv/bin
PY_VERSION=$("$BIN/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
for tool in ansible-test ansible-galaxy ansible-doc; do
    [ -x "$BIN/$tool" ] || { echo "ansible-checks: $BIN/$tool missing (install requirements-dev.txt)" >&2; exit 1; }
done
export PATH=$BIN:$PATH
seed_get_pip "$venv"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
collection_tree "$WORK"
COLL=$WORK/ansible_collections/whistler/xdp

step() { echo; echo "=== ansible-checks (ansible-core $core, Python $PY_VERSION): $*"; }

run_step() {
    case $1 in
        sanity)
            step "ansible-test sanity"
            (cd "$COLL" && ansible-test sanity --venv --python "$PY_VERSION" --color no) ;;
        sanity-core)
            step "ansible-test sanity, the tests that depend on the ansible-core version"
            local tests=() name
            for name in action-plugin-docs ansible-doc compile ignores import pylint runtime-metadata validate-modules; do
                tests+=(--test "$name")
            done
            (cd "$COLL" && ansible-test sanity --venv --python "$PY_VERSION" --color no "${tests[@]}") ;;
        units)
            step "ansible-test units"
            (cd "$COLL" && ansible-test units --local --python "$PY_VERSION" --color no tests/unit/plugins/) ;;
        changelog)
            step "antsibull-changelog lint"
            (cd "$COLL" && "$TOOLS/antsibull-changelog" lint) ;;
        lint)
            step "ansible-lint (production profile)"
            # The playbooks and molecule scenario use the collection by FQCN: let Ansible find this copy.
            # --offline makes ansible-lint cache (and look up) collections under ANSIBLE_HOME, by default
            # ~/.ansible, where a copy left by an earlier run would shadow this one: keep it in $WORK.
            (cd "$COLL" && ANSIBLE_HOME=$WORK/ansible-home ANSIBLE_COLLECTIONS_PATH=$WORK \
                "$TOOLS/ansible-lint" --profile production --offline) ;;
        build)
            step "ansible-galaxy collection build + install, ansible-doc"
            (cd "$COLL" && ansible-galaxy collection build --output-path "$WORK/dist" .)
            # Install and read the docs from outside the source tree, so only the installed copy is visible.
            ansible-galaxy collection install --offline --force -p "$WORK/installed" "$WORK"/dist/whistler-xdp-*.tar.gz
            local module
            for module in "$COLL"/plugins/modules/xdp_*.py; do
                module=$(basename "$module" .py)
                (cd "$WORK" && ANSIBLE_COLLECTIONS_PATH=$WORK/installed ansible-doc "whistler.xdp.$module") > "$WORK/doc.txt"
                grep -q "whistler.xdp.$module" "$WORK/doc.txt" \
                    || { echo "ansible-doc whistler.xdp.$module rendered nothing" >&2; return 1; }
                echo "ansible-doc whistler.xdp.$module: ok"
            done ;;
        *) echo "ansible-checks: unknown step $1 (sanity, sanity-core, units, changelog, lint, build)" >&2; return 2 ;;
    esac
}

for s in "${steps[@]}"; do
    run_step "$s"
done
echo; echo "ansible-checks (ansible-core $core): ${steps[*]} passed"
