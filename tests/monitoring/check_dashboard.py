#!/usr/bin/env python3
"""Static checks of dashboards/mailcanary.json (ctest: monitoring_dashboard).

- valid JSON, a stable uid, a current schemaVersion, unique panel ids, no overlapping panels;
- a `datasource` variable, used by every panel and every query;
- `job`, `site`, `instance` and `target` variables, multi-select with All; the instances are
  those of the chosen sites;
- every panel has a unit and a description, and at least one query;
- every range in a query is $__rate_interval, or $__range in an instant query ("over the whole
  time range"); rate() and increase() always use $__rate_interval;
- every selector of an agent metric filters on $job and $instance, and per-target metrics on
  $target too;
- every metric is documented in docs/metrics.md;
- every query, with Grafana's variables expanded, is valid PromQL: Prometheus's own parser
  (`promtool check rules` on a rules file made of the queries) must accept it;
- saturation shows before results go stale: a panel puts the runs in flight against the cap and
  the runs waiting for a slot, another divides one by the other, and one lists the targets that
  back off.

Usage: check_dashboard.py PROMTOOL
"""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import monitoring_lib as lib  # noqa: E402

EXPECTED_UID = "mailcanary-overview"
MIN_SCHEMA = 39   # Grafana 10.4 / 11
AGENT_LEVEL = {"mailcanary_schedule_lateness_seconds_bucket", "mailcanary_probes_in_flight",
               "mailcanary_probes_in_flight_limit", "mailcanary_probes_queued", "mailcanary_targets", "mailcanary_config_last_reload_successful",
               "mailcanary_config_last_reload_success_timestamp_seconds", "mailcanary_build_info",
               "mailcanary_probe_skipped_total", "up"}

errors = []


def err(msg):
    errors.append(msg)


def check_structure(dash):
    if dash.get("uid") != EXPECTED_UID:
        err(f'uid is {dash.get("uid")!r}, expected the stable {EXPECTED_UID!r}')
    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < MIN_SCHEMA:
        err(f'schemaVersion {dash.get("schemaVersion")!r} < {MIN_SCHEMA}')
    for key in ("title", "description"):
        if not dash.get(key):
            err(f"dashboard has no {key}")
    if dash.get("id") not in (None,):
        err("dashboard has an id: leave it out (null) so that importing never overwrites another")

    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        err('no variable "datasource" of type datasource for prometheus')
    # Sites (vantage points) are compared by the `site` target label: the agents a site
    # variable picks are the instances the other panels show.
    if 'site=~"$site"' not in (variables.get("instance") or {}).get("definition", ""):
        err('the "instance" variable does not filter on site=~"$site"')
    for name in ("job", "site", "instance", "target"):
        v = variables.get(name)
        if not v:
            err(f'no variable "{name}"')
            continue
        if v.get("type") != "query" or not v.get("multi") or not v.get("includeAll"):
            err(f'variable "{name}" must be a multi-select query variable with All')
        if (v.get("datasource") or {}).get("uid") != "${datasource}":
            err(f'variable "{name}" does not use ${{datasource}}')

    ids = set()
    boxes = []
    for p in lib.all_panels(dash):
        pid = p.get("id")
        where = f'panel {pid} "{p.get("title", "")}"'
        if pid in ids:
            err(f"{where}: duplicate id")
        ids.add(pid)
        if not p.get("title"):
            err(f"{where}: no title")
        g = p.get("gridPos") or {}
        if not all(k in g for k in ("x", "y", "w", "h")):
            err(f"{where}: no gridPos")
        else:
            if g["x"] + g["w"] > 24:
                err(f"{where}: wider than the grid")
            for other, og in boxes:
                if (g["x"] < og["x"] + og["w"] and og["x"] < g["x"] + g["w"] and
                        g["y"] < og["y"] + og["h"] and og["y"] < g["y"] + g["h"]):
                    err(f"{where}: overlaps {other}")
            boxes.append((where, g))
        if p.get("type") == "row":
            continue
        if (p.get("datasource") or {}).get("uid") != "${datasource}":
            err(f"{where}: panel data source is not ${{datasource}}")
        if not p.get("description"):
            err(f"{where}: no description")
        unit = ((p.get("fieldConfig") or {}).get("defaults") or {}).get("unit")
        if not unit:
            err(f"{where}: no unit")
        if not p.get("targets"):
            err(f"{where}: no query")
        for t in p.get("targets", []):
            if (t.get("datasource") or {}).get("uid") != "${datasource}":
                err(f'{where} query {t.get("refId")}: data source is not ${{datasource}}')
            if not t.get("expr"):
                err(f'{where} query {t.get("refId")}: empty expression')


def check_query_conventions(q, documented):
    expr = q.expr
    for rng in re.findall(r"\[([^\]]*)\]", expr):
        if rng == "$__rate_interval":
            continue
        if rng == "$__range" and q.instant:
            continue
        err(f"{q.name}: range [{rng}]: use [$__rate_interval] (or [$__range] in an instant query)")
    for fn in re.finditer(r"\b(rate|increase|irate|delta|idelta)\s*\(", expr):
        rest = expr[fn.end():]
        m = re.search(r"\[([^\]]*)\]", rest)
        if not m or m.group(1) != "$__rate_interval":
            err(f"{q.name}: {fn.group(1)}() must use [$__rate_interval]")
    sels = dict()
    for metric, matchers in lib.selectors(expr):
        sels.setdefault(metric, []).append(matchers)
    for metric in q.metrics():
        if metric not in sels:
            err(f"{q.name}: {metric} without a label selector")
            continue
        for matchers in sels[metric]:
            need = ['job=~"$job"', 'instance=~"$instance"']
            if metric not in AGENT_LEVEL and not metric.startswith("process_"):
                need.append('target=~"$target"')
            for n in need:
                if n not in matchers:
                    err(f"{q.name}: {metric}{{{matchers}}} does not filter on {n}")
        base = re.sub(r"_(bucket|sum|count)$", "", metric)
        if metric != "up" and metric not in documented and base not in documented:
            err(f"{q.name}: {metric} is not documented in docs/metrics.md")


def check_promql(promtool, dash):
    """Every query, expanded as Grafana would, must parse: promtool check rules parses each
    recording rule's expression with Prometheus's PromQL parser."""
    qs = lib.queries(dash)
    variables = [v for v in dash["templating"]["list"] if v.get("type") == "query"]
    exprs = []
    for q in qs:
        exprs.append((q.name, lib.expand(q.expr, interval_s=15, rate_interval_s=60, range_s=21600)))
    for v in variables:
        m = re.match(r"^label_values\((.*),\s*[A-Za-z_]+\)$", v.get("definition", ""))
        if not m:
            err(f'variable {v["name"]}: query is not label_values(selector, label)')
            continue
        exprs.append((f'variable {v["name"]}', lib.expand(m.group(1), interval_s=15,
                                                          rate_interval_s=60, range_s=21600)))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dashboard-queries.yml")
        with open(path, "w", encoding="utf-8") as f:
            f.write("groups:\n  - name: dashboard\n    rules:\n")
            for i, (_, e) in enumerate(exprs):
                f.write(f"      - record: dashboard_query_{i}\n        expr: {json_str(e)}\n")
        r = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
        if r.returncode != 0:
            out = r.stdout + r.stderr
            bad = set(int(i) for i in re.findall(r"dashboard_query_(\d+)", out))
            for i in sorted(bad):
                if i < len(exprs):
                    err(f"{exprs[i][0]}: not valid PromQL: {exprs[i][1]}")
            err("promtool check rules on the dashboard's queries failed:\n" + out.strip())
        else:
            m = re.search(r"SUCCESS: (\d+) rules found", r.stdout)
            if not m or int(m.group(1)) != len(exprs):
                err(f"promtool did not parse every query: {r.stdout.strip()}")
    return len(exprs)


def check_saturation(dash):
    """The overload signals of docs/runbooks.md ("When the agent is overloaded") are on the
    dashboard."""
    def shown_together(*metrics):
        for p in lib.all_panels(dash):
            names = set()
            for t in p.get("targets", []):
                names |= set(lib.metric_names(t.get("expr", "")))
            if all(m in names for m in metrics):
                return p
        return None

    if not shown_together("mailcanary_probes_in_flight", "mailcanary_probes_in_flight_limit",
                          "mailcanary_probes_queued"):
        err("no panel shows runs in flight against the cap and the runs waiting for a slot")
    ratio = [q for q in lib.queries(dash)
             if re.search(r"mailcanary_probes_in_flight\{[^}]*\}\s*/\s*"
                          r"mailcanary_probes_in_flight_limit\{", q.expr)]
    if not ratio:
        err("no query divides mailcanary_probes_in_flight by mailcanary_probes_in_flight_limit")
    for q in ratio:
        panel = next(p for p in lib.all_panels(dash) if p.get("id") == q.panel_id)
        unit = ((panel.get("fieldConfig") or {}).get("defaults") or {}).get("unit")
        if unit != "percentunit":
            err(f"{q.name}: saturation is a ratio: unit percentunit, not {unit!r}")
    if not shown_together("mailcanary_probe_backoff_seconds"):
        err("no panel shows which targets back off (mailcanary_probe_backoff_seconds)")


def json_str(s):
    import json
    return json.dumps(s)


def check_provisioning():
    base = os.path.join(lib.SOURCE_DIR, "dashboards", "provisioning")
    ds = os.path.join(base, "datasources", "mailcanary.yml")
    db = os.path.join(base, "dashboards", "mailcanary.yml")
    for path, needles in ((ds, ("apiVersion: 1", "type: prometheus", "timeInterval:")),
                          (db, ("apiVersion: 1", "type: file", "path:"))):
        if not os.path.exists(path):
            err(f"missing {os.path.relpath(path, lib.SOURCE_DIR)}")
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for n in needles:
            if n not in text:
                err(f"{os.path.relpath(path, lib.SOURCE_DIR)}: no {n!r}")


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    promtool = sys.argv[1]
    try:
        dash = lib.load_dashboard()
    except ValueError as e:
        print(f"FAIL: dashboards/mailcanary.json is not valid JSON: {e}")
        return 1
    check_structure(dash)
    documented = lib.documented_metrics()
    qs = lib.queries(dash)
    for q in qs:
        check_query_conventions(q, documented)
    parsed = check_promql(promtool, dash)
    check_saturation(dash)
    check_provisioning()
    panels = [p for p in lib.all_panels(dash) if p.get("type") != "row"]
    for e in errors:
        print(f"FAIL: {e}")
    print(f"dashboard {dash.get('uid')}: {len(panels)} panels, {len(qs)} queries, "
          f"{parsed} expressions parsed by promtool; {len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
