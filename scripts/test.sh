#!/usr/bin/env bash
# Run the whole test suite, each part a timed stage (the times are listed at the end):
#   pytest          unit + kernel tests; a skipped kernel test fails the run (the kernel is the oracle)
#   ansible-checks  sanity, units, changelog, ansible-lint, build + ansible-doc (ansible-core 2.19)
#   integration     ansible-test targets, molecule, the fleet playbook twice (ansible-core 2.19)
#   compat          the support matrix of docs/support.md (scripts/compat.sh): every supported
#                   managed-host Python, ansible-core 2.20 and 2.21 on the controller, the execution
#                   environment
# Arguments go to pytest.
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
    trap 'timings_report ""; rm -f "$WHISTLER_TIMINGS"' EXIT
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

stage "pytest (unit + kernel)" pytest_suite "$@"
stage "ansible-checks (ansible-core 2.19)" bash scripts/ansible-checks.sh
stage "integration (ansible-core 2.19)" bash scripts/integration.sh
bash scripts/compat.sh

# Every stage passed (set -e): the stage times, then pytest's count as the closing line.
if $own_timings; then
    trap 'rm -f "$WHISTLER_TIMINGS"' EXIT
    timings_report ""
fi
pytest_count
