#!/usr/bin/env python3
"""End to end: the on-call path with real processes (ctest: monitoring_e2e).

A real Prometheus scrapes the real mailcanary binary, which probes the real test mail stack
(the ctest fixture's Postfix + Dovecot); Prometheus evaluates config/rules and sends alerts to a
real Alertmanager running config/alertmanager.yml, whose PagerDuty receiver posts to a webhook
receiver inside this test. Steps:

 0. the inhibit rules: alerts posted to Alertmanager's API are inhibited as the file says;
 1. every query of dashboards/mailcanary.json returns data from the live Prometheus (the agent
    runs connect, auth, accept, roundtrip and imap targets, one with an expired certificate and
    one whose IMAP mailbox does not exist);
    MailcanaryImapDown fires for the missing mailbox (Reason: select_rejected) and is paged, and
    not for the healthy IMAP target;
 2. Postfix of the stack is stopped: MailcanarySMTPConnectFailing fires in Prometheus for the
    targets on it, Alertmanager delivers it to the pager receiver, and the AUTH and accept alerts
    of those targets neither fire nor page; IMAP (Dovecot, still running) does not alert; the mx
    target (e2e-mx-domain, whose two MX hosts are that Postfix) fires once, without mx_host
    (MailcanaryMXHostDown, one host down while another works, is promtool's to test);
 3. Postfix is started again: the alert resolves and the resolved notification arrives;
 4. all along, a server that accepts connections and never speaks (e2e-silent): its runs time
    out and back off (the dashboard's backoff panel has data), and its connect alert, firing
    since step 1, is still firing at the end with the same start: backoff resets no `for:`;
    and a Postfix whose anvil throttles the agent (e2e-throttled, 421 4.7.0): it backs off and
    raises no alert before step 2 (the throttling panel has data).

Only addresses, intervals and durations differ from the shipped files, and each difference is
made by replacing one exact line, which must be found exactly once:
 - config/prometheus.yml: 1s scrape and evaluation intervals, the ports of this test, the rule
   files below;
 - config/rules/*.yml: every `for:` divided by 20 (3m becomes 9s), so an outage fires in
   seconds; the real `for:` semantics are what tests/monitoring/alerts_test.yml checks with promtool;
 - config/alertmanager.yml: the PagerDuty URL and key file point at this test, group_wait 1s,
   group_interval 2s.

Everything runs on 127.0.0.1 with free ports, the whole test is bounded (DEADLINE_S), and every
process it starts is stopped on exit, even on failure; a stopped Postfix is started again.

Usage: e2e_test.py --agent PATH --prometheus PATH --alertmanager PATH --stack-dir DIR
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import monitoring_lib as lib  # noqa: E402
from live_monitoring import (HOST, Failure, Procs, Receiver, T0, alertmanager_config,  # noqa: E402
                             check_agent_config, firing, free_port, http_get_json, interrupted,
                             log, prom_alerts, prom_alerts_for, prometheus_config, read_env,
                             set_deadline, smtp_banner, start_watched_agent, wait_for)

DEADLINE_S = 240           # the whole test; ctest's TIMEOUT is above it
SCRAPE_S = 1               # live_monitoring.prometheus_config's
PROBE_INTERVAL = "2s"
WARMUP_S = 20              # data before the dashboard check: several runs of every probe
PAGER_KEY = "e2e-routing-key-0123456789abcdef"

class SilentServer:
    """Accepts connections on 127.0.0.1 and never says a word: a server whose greeting never
    comes (the agent's runs time out and back off)."""

    def __init__(self):
        self.sock = socket.create_server((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


def agent_config(stack, port, silent_port):
    ca = stack["MAILSTACK_CA_FILE"]
    name = stack["MAILSTACK_TLS_SERVER_NAME"]
    h = stack["MAILSTACK_HOST"]
    user = stack["MAILSTACK_USER"]
    domain = stack["MAILSTACK_DOMAIN"]
    text = f"""# written by tests/monitoring/e2e_test.py
[agent]
listen_addresses = ["{HOST}:{port}"]
# The stack's unbound: zone canary.test, whose MX hosts are the stack (the mx target below).
dns_servers = ["{HOST}:{stack["MAILSTACK_DNS_PORT"]}"]

[defaults]
interval = "{PROBE_INTERVAL}"
timeout = "1500ms"
helo = "mailcanary.e2e.test"

# Port 25 style: connect, and acceptance up to RCPT TO (nothing is delivered).
[[targets]]
name = "e2e-mx"
host = "{h}"
port = {stack["MAILSTACK_SMTP_PORT"]}
tls = "starttls"
probes = ["connect", "accept"]
[targets.tls_options]
ca_file = "{ca}"
server_name = "{name}"
[targets.message]
from = "canary@mailcanary.e2e.test"
to = ["other@{domain}"]
mode = "rcpt"

# The MX hosts of a domain (the stack's canary.test: mail and v4only, both the stack's
# Postfix), each its own series (mx_host): the MX panels.
[[targets]]
name = "e2e-mx-domain"
mx = "canary.test"
port = {stack["MAILSTACK_SMTP_PORT"]}
tls = "none"

# Submission: connect and AUTH.
[[targets]]
name = "e2e-submission"
host = "{h}"
port = {stack["MAILSTACK_SUBMISSION_PORT"]}
tls = "starttls"
probes = ["connect", "auth"]
[targets.tls_options]
ca_file = "{ca}"
server_name = "{name}"
[targets.auth]
username = "{user}"
password_file = "{stack["MAILSTACK_PASSWORD_FILE"]}"

# An expired certificate: failures by reason, and a negative "days left".
[[targets]]
name = "e2e-expired"
host = "{h}"
port = {stack["MAILSTACK_SMTP_EXPIRED_PORT"]}
tls = "starttls"
[targets.tls_options]
ca_file = "{ca}"
server_name = "{name}"
"""
    return text + f"""
# Accepts and never speaks: its runs time out and back off.
[[targets]]
name = "e2e-silent"
host = "{HOST}"
port = {silent_port}
tls = "none"

# Postfix's anvil answers 421 4.7.0 past 2 connections in 10 s: throttled, never paged.
[[targets]]
name = "e2e-throttled"
host = "{h}"
port = {stack["MAILSTACK_SMTP_THROTTLED_PORT"]}
tls = "none"
throttle_backoff = "2s"
""" + roundtrip_target(stack) + imap_targets(stack)


def roundtrip_target(stack):
    # To other@ (not the integration tests' probe@), so their mailbox checks never see ours.
    # The stack has no SPF/DKIM/DMARC checker, so the message brings the Authentication-Results
    # header that the receiving server would add; with authserv_id set, the agent trusts only it.
    user = "other@" + stack["MAILSTACK_DOMAIN"]
    authserv = stack["MAILSTACK_TLS_SERVER_NAME"]
    return f"""
# Round trip: submitted to port 25, followed into the mailbox over IMAP (STARTTLS).
[[targets]]
name = "e2e-roundtrip"
host = "{stack["MAILSTACK_HOST"]}"
port = {stack["MAILSTACK_SMTP_PORT"]}
tls = "starttls"
probes = ["roundtrip"]
interval = "3s"
timeout = "2s"
[targets.tls_options]
ca_file = "{stack["MAILSTACK_CA_FILE"]}"
server_name = "{stack["MAILSTACK_TLS_SERVER_NAME"]}"
[targets.message]
from = "canary@mailcanary.e2e.test"
to = ["{user}"]
[targets.message.headers]
Authentication-Results = "{authserv}; spf=pass smtp.mailfrom=mailcanary.e2e.test; dkim=pass header.d=mailcanary.e2e.test; dmarc=pass header.from=mailcanary.e2e.test"
[targets.roundtrip]
imap_host = "{stack["MAILSTACK_HOST"]}"
imap_port = {stack["MAILSTACK_IMAP_PORT"]}
imap_tls = "starttls"
username = "{user}"
password_file = "{stack["MAILSTACK_PASSWORD_FILE"]}"
timeout = "20s"
authserv_id = "{authserv}"
[targets.roundtrip.tls_options]
ca_file = "{stack["MAILSTACK_CA_FILE"]}"
server_name = "{stack["MAILSTACK_TLS_SERVER_NAME"]}"
"""


def imap_targets(stack):
    # The stack's Dovecot, as the round trip's user other@ (whose INBOX the round trip delivers
    # to, so the message count moves): one target over STARTTLS that must succeed, and one over
    # implicit TLS that selects a mailbox that does not exist, for the failure panels and
    # MailcanaryImapDown (select_rejected: the login succeeds, SELECT is answered NO).
    user = "other@" + stack["MAILSTACK_DOMAIN"]
    common = f"""username = "{user}"
password_file = "{stack["MAILSTACK_PASSWORD_FILE"]}"
"""
    tls = f"""ca_file = "{stack["MAILSTACK_CA_FILE"]}"
server_name = "{stack["MAILSTACK_TLS_SERVER_NAME"]}"
"""
    return f"""
# IMAP: greeting, CAPABILITY, STARTTLS, login, SELECT INBOX, LOGOUT.
[[targets]]
name = "e2e-imap"
host = "{stack["MAILSTACK_HOST"]}"
probes = ["imap"]
[targets.imap]
host = "{stack["MAILSTACK_HOST"]}"
port = {stack["MAILSTACK_IMAP_PORT"]}
tls = "starttls"
{common}mailbox = "INBOX"
[targets.imap.tls_options]
{tls}
# IMAP over implicit TLS, SELECT of a mailbox that does not exist: select_rejected.
[[targets]]
name = "e2e-imap-nomailbox"
host = "{stack["MAILSTACK_HOST"]}"
probes = ["imap"]
[targets.imap]
port = {stack["MAILSTACK_IMAPS_PORT"]}
tls = "implicit"
{common}mailbox = "mailcanary-e2e-no-such-mailbox"
[targets.imap.tls_options]
{tls}"""


# ------------------------------------------------------------------ checks


def check_dashboard_queries(prom):
    """Run every dashboard query as Grafana would (All selected, the last minute at a 2s step)."""
    dash = lib.load_dashboard()
    end = time.time()
    rng = WARMUP_S
    step = 2
    rate_iv = lib.rate_interval(step, SCRAPE_S)
    empty, ok = [], 0
    for q in lib.queries(dash):
        expr = lib.expand(q.expr, interval_s=step, rate_interval_s=rate_iv, range_s=rng)
        if q.instant:
            url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": end})
        else:
            url = f"{prom}/api/v1/query_range?" + urllib.parse.urlencode(
                {"query": expr, "start": end - rng, "end": end, "step": step})
        try:
            doc = http_get_json(url)
        except urllib.error.HTTPError as e:
            raise Failure(f"{q.name}: Prometheus refused the query ({e.code}): "
                          f"{e.read().decode(errors='replace')}\n  {expr}")
        result = doc["data"]["result"]
        values = []
        for series in result:
            if "value" in series:
                values.append(series["value"][1])
            values.extend(v for _, v in series.get("values", []))
        if any(v not in ("NaN", "+Inf", "-Inf") for v in values):
            ok += 1
        else:
            empty.append(q)
    for q in empty:
        log(f"NO DATA: {q.name}: {q.expr}")
    log(f"dashboard queries: {ok} returned data, {len(empty)} returned none")
    if empty:
        raise Failure(f"{len(empty)} dashboard queries returned no data: "
                      + "; ".join(q.name for q in empty))
    return ok


def check_inhibition(am):
    """The inhibit rules of config/alertmanager.yml, in the real Alertmanager: alerts posted to its
    API as Prometheus would send them."""
    now = time.time()
    ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 120))
    common = {"job": "mailcanary", "instance": "inhibit-check:9725"}

    def alert(name, severity, target, **labels):
        return {"labels": {"alertname": name, "severity": severity, "target": target,
                           **common, **labels},
                "annotations": {"summary": f"{name} posted by the e2e test"}, "endsAt": ends}
    posted = [
        alert("MailcanarySMTPConnectFailing", "critical", "inhibit-check", probe="connect"),
        alert("MailcanarySMTPAcceptFailing", "critical", "inhibit-check", probe="accept"),
        alert("MailcanaryRoundtripLost", "critical", "inhibit-check"),
        alert("MailcanarySMTPAuthFailing", "critical", "inhibit-check-other", probe="auth"),
        alert("MailcanaryTLSCertificateExpiring", "critical", "inhibit-check-tls"),
        alert("MailcanaryTLSCertificateExpiring", "warning", "inhibit-check-tls"),
    ]
    req = urllib.request.Request(f"{am}/api/v2/alerts", data=json.dumps(posted).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req, timeout=5).read()
    expect = {  # (alertname, target, severity) -> inhibited?
        ("MailcanarySMTPConnectFailing", "inhibit-check", "critical"): False,
        ("MailcanarySMTPAcceptFailing", "inhibit-check", "critical"): True,
        ("MailcanaryRoundtripLost", "inhibit-check", "critical"): True,
        ("MailcanarySMTPAuthFailing", "inhibit-check-other", "critical"): False,
        ("MailcanaryTLSCertificateExpiring", "inhibit-check-tls", "critical"): False,
        ("MailcanaryTLSCertificateExpiring", "inhibit-check-tls", "warning"): True,
    }

    def states():
        alerts = http_get_json(f"{am}/api/v2/alerts?" + urllib.parse.urlencode(
            {"filter": f'instance="{common["instance"]}"'}))
        got = {(a["labels"]["alertname"], a["labels"]["target"], a["labels"]["severity"]):
               bool(a["status"]["inhibitedBy"]) for a in alerts}
        return got if got == expect else None
    wait_for("Alertmanager to inhibit the posted symptom alerts as config/alertmanager.yml says",
             states, 20)
    log(f"inhibit rules: {sum(expect.values())} of {len(expect)} posted alerts inhibited, as expected")


def postfix(stack_dir, action):
    exe = shutil.which("postfix") or "/usr/sbin/postfix"
    r = subprocess.run([exe, "-c", os.path.join(stack_dir, "postfix"), action],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise Failure(f"postfix {action} failed: {r.stdout}{r.stderr}")


# ------------------------------------------------------------------ main


def main():
    set_deadline(DEADLINE_S)
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--alertmanager", required=True)
    ap.add_argument("--stack-dir", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()

    stack_env = os.path.join(args.stack_dir, "stack.env")
    if not os.path.exists(stack_env):
        print(f"FAIL: {stack_env} missing: the mailstack fixture is not running", flush=True)
        return 1
    stack = read_env(stack_env)
    smtp_port = int(stack["MAILSTACK_SMTP_PORT"])

    tmp = tempfile.mkdtemp(prefix="mailcanary-monitoring-e2e-")
    procs = Procs(tmp)
    receiver = Receiver()
    silent = SilentServer()
    postfix_stopped = False
    # SIGTERM (e.g. ctest giving up) must still run the cleanup below.
    signal.signal(signal.SIGTERM, interrupted)
    try:
        agent_port, prom_port, am_port = free_port(), free_port(), free_port()
        prom = f"http://{HOST}:{prom_port}"
        am = f"http://{HOST}:{am_port}"

        cfg = os.path.join(tmp, "mailcanary.toml")
        with open(cfg, "w") as f:
            f.write(agent_config(stack, agent_port, silent.port))
        check_agent_config(args.agent, cfg)
        am_cfg = alertmanager_config(tmp, receiver.port, PAGER_KEY)
        prom_cfg = prometheus_config(tmp, prom_port, am_port, agent_port, divisor=20)

        start_watched_agent(procs, args, tmp, cfg, am_cfg, prom_cfg, am_port, prom_port)
        check_inhibition(am)
        wait_for("Prometheus to see Alertmanager",
                 lambda: http_get_json(f"{prom}/api/v1/alertmanagers")["data"]["activeAlertmanagers"], 30)
        targets = ["e2e-mx", "e2e-mx-domain", "e2e-submission", "e2e-expired", "e2e-roundtrip",
                   "e2e-imap", "e2e-imap-nomailbox", "e2e-silent", "e2e-throttled"]

        def scraped():
            procs.check_alive()
            doc = http_get_json(f"{prom}/api/v1/query?query=" + urllib.parse.quote(
                "count by (target) (mailcanary_probe_runs_total)"))
            return {r["metric"]["target"] for r in doc["data"]["result"]} >= set(targets)
        wait_for("the agent's metrics of every target in Prometheus", scraped, 30)
        log(f"all {len(targets)} targets scraped; collecting {WARMUP_S}s of data")
        time.sleep(WARMUP_S)
        procs.check_alive()

        # 1. every dashboard query returns data
        ok = check_dashboard_queries(prom)
        # The throttled server backed off (and came back) all along, and was never an outage.
        throttled_pages = http_get_json(f"{prom}/api/v1/query?query=" + urllib.parse.quote(
            'max_over_time(ALERTS{alertname=~"MailcanarySMTPConnectFailing|'
            'MailcanaryProbeResultsStale",target="e2e-throttled"}[5m])'))["data"]["result"]
        backed_off = http_get_json(f"{prom}/api/v1/query?query=" + urllib.parse.quote(
            'max_over_time(mailcanary_backoff_active{target="e2e-throttled"}[5m])'))["data"]["result"]
        if throttled_pages or not backed_off or backed_off[0]["value"][1] != "1":
            raise Failure(f"the throttled server: alerts {throttled_pages}, backoff {backed_off}")
        log("e2e-throttled backed off from Postfix's 421 4.7.0 and raised no alert")

        # The IMAP alert: fires and pages for the missing mailbox, with its reason and runbook;
        # silent for the healthy IMAP target.
        imap_alert = wait_for("MailcanaryImapDown for e2e-imap-nomailbox firing in Prometheus",
                              lambda: firing(prom, "MailcanaryImapDown", "e2e-imap-nomailbox"), 30)[0]
        if "Reason: select_rejected." not in imap_alert["annotations"]["description"]:
            raise Failure(f"the IMAP alert does not name the reason: {imap_alert['annotations']}")
        if "probe=imap" not in imap_alert["annotations"]["description"]:
            raise Failure(f"the IMAP alert does not link the IMAP transcript: {imap_alert['annotations']}")

        def imap_page():
            for ev in receiver.pager_events():
                details = json.dumps(ev.get("payload", {}).get("custom_details", {}))
                if (ev.get("event_action") == "trigger" and "e2e-imap-nomailbox" in details
                        and "MailcanaryImapDown" in details):
                    return ev
            return None
        imap_trigger = wait_for("Alertmanager's PagerDuty trigger for e2e-imap-nomailbox", imap_page, 30)
        if "runbooks.md#mailcanaryimapdown" not in json.dumps(imap_trigger.get("links", [])):
            raise Failure(f"no IMAP runbook link in the page: {imap_trigger.get('links')}")
        if prom_alerts_for(prom, "e2e-imap"):
            raise Failure(f"alerts for the healthy e2e-imap: {prom_alerts_for(prom, 'e2e-imap')}")
        log(f"IMAP alert fired and paged: {imap_alert['annotations']['description']}")

        silent_alert = wait_for("MailcanarySMTPConnectFailing for e2e-silent firing in Prometheus",
                                lambda: firing(prom, "MailcanarySMTPConnectFailing", "e2e-silent"),
                                30)[0]
        if "Reason: banner_timeout." not in silent_alert["annotations"]["description"]:
            raise Failure(f"the silent server's alert does not name the reason: {silent_alert}")

        # Nothing about e2e-mx may be firing yet.
        early = [a for a in prom_alerts(prom)
                 if a["labels"].get("target") in ("e2e-mx", "e2e-mx-domain")]
        if early:
            raise Failure(f"alerts for e2e-mx or e2e-mx-domain before the outage: {early}")

        # 2. outage: stop Postfix only
        log("stopping Postfix of the test stack")
        postfix_stopped = True
        postfix(args.stack_dir, "stop")
        wait_for("Postfix to stop answering", lambda: not smtp_banner(HOST, smtp_port), 30)
        t_down = time.monotonic()

        alert = wait_for("MailcanarySMTPConnectFailing for e2e-mx firing in Prometheus",
                         lambda: firing(prom, "MailcanarySMTPConnectFailing", "e2e-mx"), 60)[0]
        log(f"firing in Prometheus after {time.monotonic() - t_down:.1f}s: {alert['annotations']['description']}")
        if "Reason: connect_refused." not in alert["annotations"]["description"]:
            raise Failure(f"the description does not name the reason: {alert['annotations']}")
        def pager_trigger():
            for ev in receiver.pager_events():
                details = json.dumps(ev.get("payload", {}).get("custom_details", {}))
                if (ev.get("event_action") == "trigger" and "e2e-mx" in details
                        and "MailcanarySMTPConnectFailing" in details):
                    return ev
            return None
        trigger = wait_for("Alertmanager's PagerDuty trigger for e2e-mx", pager_trigger, 60)
        log(f"page delivered after {time.monotonic() - t_down:.1f}s: {trigger['payload']['summary']!r}")
        if trigger.get("routing_key") != PAGER_KEY:
            raise Failure(f"routing key not read from its file: {trigger.get('routing_key')!r}")
        if trigger["payload"].get("severity") != "critical":
            raise Failure(f"PagerDuty severity {trigger['payload'].get('severity')!r}")
        if "runbooks.md#mailcanarysmtpconnectfailing" not in json.dumps(trigger.get("links", [])):
            raise Failure(f"no runbook link in the page: {trigger.get('links')}")
        dedup = trigger["dedup_key"]

        # Every MX host of the mx target is down: one page for the target, not one per host.
        mx_alerts = wait_for("MailcanarySMTPConnectFailing for e2e-mx-domain firing in Prometheus",
                             lambda: firing(prom, "MailcanarySMTPConnectFailing", "e2e-mx-domain"),
                             60)
        if len(mx_alerts) != 1 or "mx_host" in mx_alerts[0]["labels"]:
            raise Failure(f"the mx target's outage is not one alert for the target: {mx_alerts}")
        log("e2e-mx-domain: every MX host down, one connect alert for the target")

        # The symptom alerts of the same targets stay silent: the rules leave them to the connect
        # alert (and Alertmanager would inhibit them); give them their `for:` to prove it.
        time.sleep(12)
        symptoms = [a for a in prom_alerts(prom) if a["state"] == "firing"
                    and a["labels"].get("target") in ("e2e-mx", "e2e-mx-domain", "e2e-submission")
                    and a["labels"].get("alertname") != "MailcanarySMTPConnectFailing"]
        if symptoms:
            raise Failure(f"symptom alerts fire while connect fails: {symptoms}")
        log("no AUTH or accept alert for the unreachable targets")
        # Dovecot is still up: an SMTP outage is not an IMAP one.
        if prom_alerts_for(prom, "e2e-imap"):
            raise Failure(f"IMAP alerts while only Postfix is down: {prom_alerts_for(prom, 'e2e-imap')}")

        # 3. recovery
        log("starting Postfix again")
        postfix(args.stack_dir, "start")
        wait_for("Postfix to answer again", lambda: smtp_banner(HOST, smtp_port), 30)
        postfix_stopped = False
        t_up = time.monotonic()

        wait_for("MailcanarySMTPConnectFailing for e2e-mx to resolve in Prometheus",
                 lambda: not firing(prom, "MailcanarySMTPConnectFailing", "e2e-mx"), 60)
        resolve = wait_for("Alertmanager's PagerDuty resolve for e2e-mx", lambda: next(
            (ev for ev in receiver.pager_events()
             if ev.get("event_action") == "resolve" and ev.get("dedup_key") == dedup), None), 60)
        log(f"resolved notification delivered {time.monotonic() - t_up:.1f}s after Postfix came back")
        del resolve
        procs.check_alive()
        # 4. the silent server's alert has been firing all along, through its backoff.
        still = firing(prom, "MailcanarySMTPConnectFailing", "e2e-silent")
        if not still or still[0]["activeAt"] != silent_alert["activeAt"]:
            raise Failure(f"the silent server's alert did not keep firing through backoff: "
                          f"{silent_alert} then {still}")
        backoff = http_get_json(f"{prom}/api/v1/query?query=" + urllib.parse.quote(
            'mailcanary_probe_backoff_seconds{target="e2e-silent"}'))["data"]["result"]
        log(f"e2e-silent: connect alert firing since {silent_alert['activeAt']}, through its "
            f"backoff (now {backoff[0]['value'][1] if backoff else '?'} s)")
        pages = receiver.pager_events()
        # (inhibit-check-other's AUTH alert is not inhibited and may page)
        leaked = [ev for ev in pages if re.search(
            r"MailcanarySMTP(Auth|Accept)Failing|MailcanaryRoundtripLost", json.dumps(ev)) and re.search(
            r"target = (e2e-mx|e2e-submission|inhibit-check)\\n", json.dumps(ev))]
        if leaked:
            raise Failure(f"a symptom alert was paged: {leaked[0]}")
        print(f"PASS: all {ok} dashboard queries returned data"
              + "; IMAP alert fired and paged for the missing mailbox"
              + f"; connect alert fired and paged, AUTH/accept/IMAP alerts silent, resolved"
              + "; the silent server's alert kept firing through its backoff"
              + f"; {len(pages)} PagerDuty "
              f"events received; {time.monotonic() - T0:.0f}s", flush=True)
        return 0
    except (Failure, KeyboardInterrupt) as e:
        print(f"FAIL: {e}", flush=True)
        procs.print_logs()
        with receiver.lock:
            print(f"--- {len(receiver.events)} notification(s) received ---", flush=True)
            for path, doc in receiver.events[-6:]:
                print(path, json.dumps(doc)[:800], flush=True)
        return 1
    finally:
        procs.stop_all()
        receiver.close()
        silent.close()
        if postfix_stopped:
            log("starting Postfix again (cleanup)")
            try:
                postfix(args.stack_dir, "start")
            except Exception as e:  # noqa: BLE001
                print(f"WARNING: could not restart Postfix: {e}", flush=True)
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
