# shellcheck shell=bash
# Helpers the scripts share (sourced, not run). The caller has `set -euo pipefail` and runs from the
# repository root.
#   collection_tree DEST     copy the clean files (tracked or new, never ignored) to
#                            DEST/ansible_collections/whistler/xdp (ansible-test needs that layout)
#   python_for X.Y           path of a Python X.Y from pyenv (~/.pyenv/versions/X.Y.*), or fail
#   cached_venv NAME PY SPEC...  a venv of Python PY with pip SPECs installed from PyPI, kept under
#                            $WHISTLER_CACHE/NAME and rebuilt when SPECs change or every ISO week
#                            (so "newest" dependencies stay new); prints its path
#   core_venv X.Y            the controller venv for ansible-core X.Y (the shared .venv for 2.19)
#   seed_get_pip VENV        the ensurepip shim ansible-test's sanity venvs need here (ansible/ansible#77304)
#   timings_report [START]   print the recorded stage times (and the total since START)
#   pytest_count             "tests: N passed, N failed" from tests/output/pytest.xml
#   stage NAME CMD...        run CMD (in a subshell, errexit on), print and record its wall time in
#                            $WHISTLER_TIMINGS (if set; stages inside stages are nested); returns CMD's status

WHISTLER_CACHE=${WHISTLER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/whistler-xdp}

collection_tree() {
    local dest=$1/ansible_collections/whistler/xdp
    mkdir -p "$dest"
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files -z --cached --others --exclude-standard \
            | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
            | tar --null --files-from=- -cf - | tar -xf - -C "$dest"
    else
        tar --exclude=./.venv --exclude=./.git --exclude=./tests/output --exclude=./.ansible \
            --exclude='*/__pycache__' --exclude=./.pytest_cache --exclude=./.ruff_cache -cf - . | tar -xf - -C "$dest"
    fi
}

python_for() {
    local found
    found=$(find "$HOME/.pyenv/versions" -maxdepth 1 -name "$1.*" 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$found" ] || [ ! -x "$found/bin/python$1" ]; then
        echo "no Python $1 under ~/.pyenv/versions (docs/support.md lists it as tested): pyenv install $1" >&2
        return 1
    fi
    echo "$found/bin/python$1"
}

cached_venv() {
    local name=$1 python=$2
    shift 2
    local dir=$WHISTLER_CACHE/$name stamp
    stamp="$("$python" -V 2>&1) $* week $(date +%G-%V)"
    if [ ! -x "$dir/bin/python" ] || [ "$(cat "$dir/.whistler-stamp" 2>/dev/null)" != "$stamp" ]; then
        rm -rf "$dir"
        mkdir -p "$WHISTLER_CACHE"
        "$python" -m venv "$dir" >&2
        "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@" >&2
        echo "$stamp" > "$dir/.whistler-stamp"
    fi
    echo "$dir"
}

core_venv() {
    case $1 in
        2.19) echo "$PWD/.venv" ;;
        # 2.20 and 2.21 run on Python >= 3.12 only. Modules run with the controller's Python in
        # `ansible-test integration --local`, so the venv holds the loader's requirements too.
        2.20|2.21)
            local unit_requirements
            mapfile -t unit_requirements < <(grep -v '^#' tests/unit/requirements.txt)
            cached_venv "core-$1" "$(python_for "$([ "$1" = 2.20 ] && echo 3.12 || echo 3.13)")" \
                "ansible-core>=$1,<$(echo "$1" | awk -F. '{print $1 "." $2 + 1}')" \
                pytest pytest-mock pytest-xdist mock PyYAML "${unit_requirements[@]}" ;;
        *) echo "core_venv: no controller venv for ansible-core $1" >&2; return 1 ;;
    esac
}

seed_get_pip() {
    local version shim
    version=$(grep -ho "pip='[0-9.]*'" "$1"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py \
              | head -n 1 | tr -dc '0-9.')
    shim=$HOME/.ansible/test/cache/get_pip_${version//./_}.py
    [ -s "$shim" ] && return 0
    mkdir -p "$(dirname "$shim")"
    cat > "$shim" <<'PY'
"""Stand-in for ansible-test's downloaded get-pip: ensurepip, then pip installs what was asked."""
import subprocess, sys
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args])
PY
}

stage() {
    local name=$1 start rc id depth=${WHISTLER_STAGE_DEPTH:-0}
    shift
    start=$(date +%s)
    id="$$-$RANDOM-$start"
    echo; echo "=== stage $name"
    [ -z "${WHISTLER_TIMINGS:-}" ] || printf 'S\t%s\t%s\t%s\n' "$id" "$depth" "$name" >> "$WHISTLER_TIMINGS"
    # In a subshell with errexit on: a function run as `f || ...` would have errexit ignored throughout.
    set +e
    (set -e; export WHISTLER_STAGE_DEPTH=$((depth + 1)); "$@")
    rc=$?
    set -e
    local took=$(( $(date +%s) - start ))
    echo "=== stage $name: ${took}s$([ "$rc" -eq 0 ] || echo " (failed, exit $rc)")"
    [ -z "${WHISTLER_TIMINGS:-}" ] || printf 'E\t%s\t%s\t%s\n' "$id" "$took" "$rc" >> "$WHISTLER_TIMINGS"
    return "$rc"
}

timings_report() {  # the recorded stage times (nested ones indented), and the total since $1 if given
    echo; echo "stage times (wall):"
    awk -F'\t' '
        $1 == "S" { order[++n] = $2; depth[$2] = $3; name[$2] = $4 }
        $1 == "E" { took[$2] = $3 "s"; if ($4 != 0) took[$2] = took[$2] " FAILED" }
        END { for (i = 1; i <= n; i++) { id = order[i]
                  printf "%-64s %s\n", sprintf("%*s%s", 2 * depth[id], "", name[id]), (id in took) ? took[id] : "unfinished" } }
    ' "$WHISTLER_TIMINGS"
    [ -z "${1:-}" ] || printf '%-64s %ss\n' "total" "$(( $(date +%s) - $1 ))"
}

pytest_count() {  # pytest's result as the closing line CI reads: "tests: N passed, N failed"
    .venv/bin/python - <<'PY'
import xml.etree.ElementTree as ET
suite = next(ET.parse("tests/output/pytest.xml").getroot().iter("testsuite"))
tests, failed = int(suite.get("tests")), int(suite.get("failures")) + int(suite.get("errors"))
print(f"tests: {tests - failed - int(suite.get('skipped'))} passed, {failed} failed")
PY
}
