"""Shared helpers for the monitoring tests (python3 standard library only).

- the dashboard's queries, and how Grafana would expand their variables;
- a line-based reader of the alerting rules file (the file's own layout, no YAML library);
- the metric names documented in docs/metrics.md.
"""
import json
import os
import re

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DASHBOARD = os.path.join(SOURCE_DIR, "dashboards", "mailcanary.json")
ALERTS = os.path.join(SOURCE_DIR, "config", "rules", "mailcanary-alerts.yml")
RECORDING = os.path.join(SOURCE_DIR, "config", "rules", "mailcanary-recording.yml")
RUNBOOKS = os.path.join(SOURCE_DIR, "docs", "runbooks.md")
METRICS_DOC = os.path.join(SOURCE_DIR, "docs", "metrics.md")


class Query:
    def __init__(self, panel, target):
        self.panel_id = panel.get("id")
        self.panel_title = panel.get("title", "")
        self.ref = target.get("refId", "?")
        self.expr = target.get("expr", "")
        self.instant = bool(target.get("instant")) and not target.get("range", False)
        self.format = target.get("format", "time_series")

    @property
    def name(self):
        return f'panel {self.panel_id} "{self.panel_title}" query {self.ref}'

    def metrics(self):
        return metric_names(self.expr)


def load_dashboard():
    with open(DASHBOARD, encoding="utf-8") as f:
        return json.load(f)


def all_panels(dash):
    """Every panel, including those nested in collapsed rows."""
    for p in dash.get("panels", []):
        yield p
        for q in p.get("panels", []) or []:
            yield q


def queries(dash):
    out = []
    for p in all_panels(dash):
        if p.get("type") == "row":
            continue
        for t in p.get("targets", []):
            out.append(Query(p, t))
    return out


_FUNCS = {
    "abs", "absent", "absent_over_time", "avg", "avg_over_time", "bottomk", "by", "ceil",
    "changes", "clamp", "clamp_max", "clamp_min", "count", "count_over_time", "count_values",
    "delta", "deriv", "exp", "floor", "group", "histogram_quantile", "holt_winters", "idelta",
    "increase", "irate", "label_join", "label_replace", "last_over_time", "ln", "log2",
    "log10", "max", "max_over_time", "min", "min_over_time", "offset", "on", "ignoring",
    "group_left", "group_right", "or", "and", "unless", "predict_linear", "quantile",
    "quantile_over_time", "rate", "resets", "round", "scalar", "sort", "sort_desc", "sqrt",
    "stddev", "stddev_over_time", "stdvar", "stdvar_over_time", "sum", "sum_over_time", "time",
    "timestamp", "topk", "vector", "without", "bool", "inf", "nan", "le", "label_values",
}


def metric_names(expr):
    """Metric names in a PromQL expression (identifiers that are not functions, keywords,
    label names inside braces or strings)."""
    # drop strings and label matchers, then grouping clauses
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", "{}", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\[[^\]]*\]", "[]", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word = m.group(0)
        if word in _FUNCS or word.startswith("$"):
            continue
        # a function call
        rest = e[m.end():].lstrip()
        if rest.startswith("(") and word not in ("up",):
            continue
        # numbers like 1e9 are not identifiers here; durations are inside [] already
        names.add(word)
    return sorted(names)


def selectors(expr):
    """(metric, matcher text) for every `metric{...}` in the expression."""
    return [(m.group(1), m.group(2)) for m in
            re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}", expr)]


def rate_interval(step_seconds, scrape_seconds):
    """Grafana's $__rate_interval: max($__interval + scrape interval, 4 * scrape interval)."""
    return max(step_seconds + scrape_seconds, 4 * scrape_seconds)


def expand(expr, *, interval_s, rate_interval_s, range_s, variables=None):
    """Expand Grafana's variables as Grafana does for a Prometheus data source, with every
    multi-value variable set to All (allValue ".*")."""
    variables = variables or {}
    out = expr
    for name, value in (("__rate_interval", f"{int(rate_interval_s)}s"),
                        ("__interval", f"{int(interval_s)}s"),
                        ("__range", f"{int(range_s)}s")):
        out = out.replace("${" + name + "}", value).replace("$" + name, value)
    for name in ("job", "site", "instance", "target", "ip_family"):
        value = variables.get(name, ".*")
        out = out.replace("${" + name + "}", value)
        out = re.sub(r"\$" + name + r"\b", value, out)
    return out


# ------------------------------------------------------------------ rules file


class Alert:
    def __init__(self, name, line):
        self.name = name
        self.line = line
        self.fields = {}   # key -> text (first line of the value)
        self.expr = ""
        self.for_ = None


def read_alerts(path=ALERTS):
    """The alerting rules, read line by line from the file's own layout."""
    alerts = []
    cur = None
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines, 1):
        m = re.match(r"^\s*- alert: (\S+)\s*$", line)
        if m:
            cur = Alert(m.group(1), i)
            alerts.append(cur)
            continue
        if re.match(r"^\s*- (record|name): ", line):
            cur = None
            continue
        if cur is None:
            continue
        m = re.match(r"^\s+(severity|summary|description|runbook_url|for|expr):\s*(.*)$", line)
        if m:
            key, value = m.group(1), m.group(2).strip()
            if key == "for":
                cur.for_ = value
            cur.fields[key] = value
    return alerts


def runbook_anchors(path=RUNBOOKS):
    """GitHub-style anchors of the Markdown headings."""
    anchors = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
            if not m:
                continue
            text = m.group(1).strip().lower()
            text = re.sub(r"[^\w\- ]", "", text)
            anchors.add(text.replace(" ", "-"))
    return anchors


def documented_metrics(path=METRICS_DOC):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return set(re.findall(r"`((?:mailcanary|process)_[a-z0-9_]+)`", text))
