#!/usr/bin/env bash
# Run the whole test suite, each part a timed stage (the times are listed at the end):
#   pytest          unit + kernel tests; a skipped kernel test fails the run (the kernel is the oracle)
#   ansible-checks  sanity, units, changelog, ansible-lint, build + ansible-doc (ansible-core 2.19)
#   integration     ansible-test targets, molecule, the fleet playbook twice (ansible-core 2.19)
#   compat          the support matrix of docs/support.md (scripts/compat.sh): every supported
#                   managed-host Python, ansible-core 2.20 and 2.21 on the controller, the execution
#                   environment
# pytest runs first, alone (its kernel tests under traffic are timing-sensitive); then compat runs
# beside ansible-checks and integration (each side is mostly one process at a time, ansible-test or
# ansible-playbook, so on two cores they share the machine instead of waiting for each other). Its
# output is kept and printed when it ends; a failure on either side waits for the other to finish
# (and clean up) before the run fails. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
bash scripts/bootstrap.sh
export WHISTLER_REQUIRE_KERNEL=1
own_timings=false
if [ -z "${WHISTLER_TIMINGS:-}" ]; then
    own_timings=true
    WHISTLER_TIMINGS=$(mktemp)
fi
export WHISTLER_TIMINGS

pytest_suite() {
    mkdir -p tests/output
    .venv/bin/python -m pytest -q -rs --junitxml=tests/output/pytest.xml tests/unit tests/kernel "$@"
    # A skipped kernel test is a failure here: the kernel is the oracle.
    .venv/bin/python - <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse("tests/output/pytest.xml").getroot()
skipped = [c.get("classname") + "::" + c.get("name") for c in root.iter("testcase")
           if c.find("skipped") is not None and c.get("classname", "").startswith("tests.kernel")]
if skipped:
    print("kernel tests were skipped:", *skipped, sep="\n  ")
    sys.exit(1)
PY
}

# pytest first, alone: its kernel tests under traffic count how many live swaps fit into a stream of
# packets, which a second busy lane on two cores would starve.
trap 'if $own_timings; then timings_report ""; rm -f "$WHISTLER_TIMINGS"; fi' EXIT
stage "pytest (unit + kernel)" pytest_suite "$@"

compat_log=$(mktemp)
bash scripts/compat.sh > "$compat_log" 2>&1 &
compat_pid=$!
# On a failure here the matrix still runs to its end: killed, its tests would leave namespaces and pins.
finish_compat() {
    wait "$compat_pid" 2>/dev/null || true
    echo; echo "=== the support matrix (scripts/compat.sh), run beside the stages above:"
    cat "$compat_log"
    rm -f "$compat_log"
}
trap 'finish_compat; if $own_timings; then timings_report ""; rm -f "$WHISTLER_TIMINGS"; fi' EXIT

stage "ansible-checks (ansible-core 2.19)" bash scripts/ansible-checks.sh
stage "integration (ansible-core 2.19)" bash scripts/integration.sh

compat_status=0
wait "$compat_pid" || compat_status=$?
trap 'if $own_timings; then timings_report ""; rm -f "$WHISTLER_TIMINGS"; fi' EXIT
finish_compat
[ "$compat_status" -eq 0 ] || { echo "compat: failed (exit $compat_status)" >&2; exit "$compat_status"; }

# Every stage passed: the stage times, then pytest's count as the closing line.
trap 'if $own_timings; then rm -f "$WHISTLER_TIMINGS"; fi' EXIT
if $own_timings; then
    timings_report ""
fi
pytest_count
