#!/usr/bin/env python3
"""Conventions of config/rules/mailcanary-alerts.yml (ctest: monitoring_rules_conventions).

Every alert has a severity of critical or warning, a summary, a description that names the
target (or the agent) and a reason, and a runbook_url whose anchor is a heading of
docs/runbooks.md; every alert is covered by tests/monitoring/alerts_test.yml with at least one
check where it fires and one where it must stay silent; docs/runbooks.md has a section for every
alert and for no alert that does not exist.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import monitoring_lib as lib  # noqa: E402

RUNBOOK_BASE = "https://mailcanary.example/docs/runbooks.md#"
UNIT_TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "alerts_test.yml")


def unit_test_checks(path):
    """alertname -> (checks expecting alerts, checks expecting none)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = {}
    for m in re.finditer(r"alertname: (\S+)\n\s+exp_alerts:(.*)", text):
        name, rest = m.group(1), m.group(2).strip()
        fires, silent = out.get(name, (0, 0))
        if rest.startswith("[]"):
            silent += 1
        else:
            fires += 1
        out[name] = (fires, silent)
    return out


def main():
    errors = []
    alerts = lib.read_alerts()
    anchors = lib.runbook_anchors()
    checks = unit_test_checks(UNIT_TESTS)
    if not alerts:
        errors.append("no alerts found")
    for a in alerts:
        where = f"{a.name} (line {a.line})"
        f = a.fields
        if f.get("severity") not in ("critical", "warning"):
            errors.append(f"{where}: severity {f.get('severity')!r}, expected critical or warning")
        for key in ("summary", "description", "runbook_url"):
            if not f.get(key):
                errors.append(f"{where}: no {key}")
        url = f.get("runbook_url", "")
        if not url.startswith(RUNBOOK_BASE):
            errors.append(f"{where}: runbook_url does not start with {RUNBOOK_BASE}")
        else:
            anchor = url[len(RUNBOOK_BASE):]
            if anchor != a.name.lower():
                errors.append(f"{where}: runbook anchor {anchor!r}, expected {a.name.lower()!r}")
            if anchor not in anchors:
                errors.append(f"{where}: docs/runbooks.md has no heading for #{anchor}")
        fires, silent = checks.get(a.name, (0, 0))
        if not fires:
            errors.append(f"{where}: no unit test in alerts_test.yml where it fires")
        if not silent:
            errors.append(f"{where}: no unit test in alerts_test.yml where it stays silent")
    # the description must say what and why: read the whole block
    with open(lib.ALERTS, encoding="utf-8") as fh:
        text = fh.read()
    for block in re.split(r"\n\s+- alert: ", text)[1:]:
        name = block.split("\n", 1)[0].strip()
        desc = re.search(r"description: >-\n((?:\s{12}.*\n)+)", block)
        if not desc or "Reason:" not in desc.group(1):
            errors.append(f"{name}: the description does not state a Reason:")
        if desc and "$labels.target" not in desc.group(1) and "$labels.instance" not in desc.group(1) \
                and "job=" not in desc.group(1):
            errors.append(f"{name}: the description names neither the target nor the agent")
    names = {a.name.lower() for a in alerts}
    with open(lib.RUNBOOKS, encoding="utf-8") as fh:
        for line in fh:
            m = re.match(r"^## (Mailcanary\w+)\s*$", line)
            if m and m.group(1).lower() not in names:
                errors.append(f"docs/runbooks.md: section {m.group(1)} for an alert that does not exist")
    for e in errors:
        print(f"FAIL: {e}")
    distinct = sorted({a.name for a in alerts})
    print(f"{len(alerts)} alerting rules ({len(distinct)} alert names): "
          f"{sum(1 for a in alerts if a.fields.get('severity') == 'critical')} critical, "
          f"{sum(1 for a in alerts if a.fields.get('severity') == 'warning')} warning; "
          f"{sum(sum(checks.get(n, (0, 0))) for n in distinct)} unit-test checks; "
          f"{len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
