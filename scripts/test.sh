#!/usr/bin/env bash
# Run the whole test suite: unit + kernel tests (pytest), then the Ansible checks
# (scripts/ansible-checks.sh: sanity, units, lint, build, ansible-doc), then the integration suite
# (scripts/integration.sh: ansible-test targets, molecule, the fleet playbook twice).
# Kernel tests must run: with WHISTLER_REQUIRE_KERNEL=1 (set here) a missing kernel fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export WHISTLER_REQUIRE_KERNEL=1
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

bash scripts/ansible-checks.sh
bash scripts/integration.sh

# Every stage passed (set -e): close with pytest's count.
.venv/bin/python - <<'PY'
import xml.etree.ElementTree as ET
suite = next(ET.parse("tests/output/pytest.xml").getroot().iter("testsuite"))
tests, failed = int(suite.get("tests")), int(suite.get("failures")) + int(suite.get("errors"))
print(f"tests: {tests - failed - int(suite.get('skipped'))} passed, {failed} failed")
PY
