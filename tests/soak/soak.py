#!/usr/bin/env python3
"""Soak with faults (scripts/soak.sh runs it; docs/testing.md, "Soak with faults").

The real agent probes the real test mail stack (one target: connect and roundtrip through
Postfix on port 25, imap on Dovecot), scraped by a real Prometheus with the shipped rules and
alerting through a real Alertmanager with the shipped configuration, whose pager and chat
receivers post to a webhook receiver here (tests/monitoring/live_monitoring.py, shared with the
monitoring end-to-end test). Faults are switched on and off in the stack on a schedule
(`mailstack.sh fault`), each followed by a healthy window:

  postfix-down    Postfix stopped, then started         connect   connect_refused   pages
  expired-cert    Postfix presents an expired cert       connect   tls_cert_expired  pages
  dovecot-down    Dovecot stopped, then started          imap      connect_refused   pages
  wrong-password  the mailbox's password changed         imap      auth_rejected     pages
  hold-all        Postfix holds every message            roundtrip lost              pages
  junk-all        Sieve files every message into Junk    roundtrip junk              chat

Each fault must be detected (a run failing with its reason) within two probe intervals of being
switched on (a message is lost only once its round-trip timeout has passed: that is added), its
alert must fire with that reason and notify exactly once (one incident opened: a PagerDuty
trigger, or a chat [FIRING] message), and everything must resolve after it is switched off. In
the healthy windows no run may fail and nothing may be notified. At the end: descriptors and
resident memory as at the start, no probe message left in the mailbox or the queue, no run
skipped. One table says it all; the exit status is 1 when any check failed.

Time is compressed 30 times: the probe interval is 2 s, and the rules are generated from
config/rules with every `for:` and every range and offset window divided by 30, so that an alert
waits as many probe intervals as it does in production at a 60 s interval, the longest the rules
are written for (`for: 3m` is 3 runs at 60 s, and 6 s is 3 runs at 2 s), and a count over 15
minutes (lost or junk messages) covers as many runs.

Usage: soak.py --duration=D --agent PATH --prometheus PATH --alertmanager PATH --stack-dir DIR
"""
import argparse
import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "monitoring"))
from live_monitoring import (HOST, Failure, Procs, Receiver, alertmanager_config,  # noqa: E402
                             check_agent_config, free_port, http_get_json, interrupted, log,
                             prom_alerts_for, prometheus_config, read_env, start_watched_agent,
                             wait_for)

MAILSTACK = os.path.join(SOURCE_DIR, "tests", "stack", "mailstack.sh")
TARGET = "soak-mail"
INTERVAL_S = 2
DIVISOR = 30                # 60 s (the longest interval the rules are written for) / INTERVAL_S
ROUNDTRIP_TIMEOUT_S = 5     # a message not seen 5 s after its acceptance is lost
DETECT_S = 2 * INTERVAL_S   # the promise: a fault's first failed run within two intervals
# Longest wait for a fault's notification after it is switched on: detection, the alert's
# `for:` (at most 5m / DIVISOR = 10 s), evaluation and Alertmanager's group_wait, with room.
NOTIFY_MAX_S = 45
HELD_AFTER_NOTIFY_S = 3 * INTERVAL_S   # the fault stays on a little: notified once, not twice
# Longest wait for everything to resolve after a fault is switched off: the 15m windows of the
# lost and junk counts (30 s here) with room.
RESOLVE_MAX_S = 60
WARMUP_S = 8 * INTERVAL_S   # after the first successes, before the resources are first read
# The alerts name the reason that failed most over the last 15m (30 s here): a healthy window
# shorter than that would let the next fault's alert name the previous fault's reason.
REASON_WINDOW_S = 15 * 60 / DIVISOR
MIN_HEALTHY_S = REASON_WINDOW_S + 2 * INTERVAL_S
PAGER_KEY = "soak-routing-key-0123456789abcdef"
FD_SLACK = 2                # a run or an IMAP session more or less when sampled
RSS_SLACK = (0.10, 4 << 20)  # 10 % and 4 MiB


@dataclasses.dataclass
class Fault:
    name: str          # mailstack.sh fault NAME
    what: str
    probe: str         # the probe that must fail with the reason
    reason: str
    alert: str         # the alert that must fire with "Reason: <reason>."
    channel: str       # where it notifies: pager (critical) or chat (warning)
    user: str = ""     # wrong-password's user
    after_off: tuple = ()  # a mailstack.sh command after switching it off


FAULTS = [
    Fault("postfix-down", "Postfix stopped, then started", "connect", "connect_refused",
          "MailcanarySMTPConnectFailing", "pager"),
    Fault("expired-cert", "certificate swapped for an expired one, and back", "connect",
          "tls_cert_expired", "MailcanarySMTPConnectFailing", "pager"),
    # Mail accepted while Dovecot is down waits in Postfix's deferred queue (its next retry
    # would be minutes later): flushed once Dovecot is back, as an operator would.
    Fault("dovecot-down", "Dovecot stopped, then started", "imap", "connect_refused",
          "MailcanaryImapDown", "pager", after_off=("flush",)),
    Fault("wrong-password", "IMAP password changed, and back", "imap", "auth_rejected",
          "MailcanaryImapDown", "pager", user="other"),
    Fault("hold-all", "queue held, then released", "roundtrip", "lost",
          "MailcanaryRoundtripLost", "pager"),
    Fault("junk-all", "Junk rule switched on, then off", "roundtrip", "junk",
          "MailcanaryRoundtripJunk", "chat"),
]


def parse_duration(text):
    m = re.fullmatch(r"(\d+)(s|m|h)", text)
    if not m or int(m.group(1)) == 0:
        raise SystemExit(f"soak: --duration={text}: a positive number with s, m or h (120s, 5m, 6h)")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


# ------------------------------------------------------------------ the agent's /metrics

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class Metrics:
    """One read of the agent's /metrics: name -> [(labels, value)]."""

    def __init__(self, url):
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        self.samples = {}
        for line in text.splitlines():
            m = _SAMPLE.match(line)
            if m:
                labels = dict(_LABEL.findall(m.group(2) or ""))
                self.samples.setdefault(m.group(1), []).append((labels, float(m.group(3))))

    def total(self, name, **match):
        return sum(v for labels, v in self.samples.get(name, [])
                   if all(labels.get(k) == want for k, want in match.items()))

    def failures(self):
        """(probe, reason) -> failed runs so far."""
        return {(labels["probe"], labels["reason"]): v
                for labels, v in self.samples.get("mailcanary_probe_failures_total", [])}

    def all_succeeding(self, probes):
        got = {labels.get("probe"): v for labels, v in self.samples.get("mailcanary_probe_success", [])}
        return all(got.get(p) == 1 for p in probes)


# ------------------------------------------------------------------ notifications


class Notifications:
    """What Alertmanager sent, as incidents: a PagerDuty trigger for a dedup key that is not open
    opens one (later triggers of the same key update it), a resolve closes it; a chat [FIRING]
    message of a group that is not firing opens one, [RESOLVED] closes it."""

    def __init__(self, receiver):
        self.receiver = receiver
        self.cursor = 0
        self.open = {"pager": set(), "chat": set()}
        self.opened = []   # (monotonic time seen, channel, key, what)

    def poll(self):
        with self.receiver.lock:
            new = self.receiver.events[self.cursor:]
            self.cursor += len(new)
        now = time.monotonic()
        for path, doc in new:
            if path == "/pagerduty":
                key, action = doc.get("dedup_key", ""), doc.get("event_action")
                what = doc.get("payload", {}).get("summary", "")
                channel = "pager"
            else:
                title = " ".join(a.get("title", "") for a in doc.get("attachments", []))
                m = re.match(r"\s*\[(FIRING|RESOLVED)\]\s*([^:]*):", title)
                if not m:
                    continue
                action = "trigger" if m.group(1) == "FIRING" else "resolve"
                key, what, channel = m.group(2), title.strip(), "chat"
            if action == "trigger" and key not in self.open[channel]:
                self.open[channel].add(key)
                self.opened.append((now, channel, key, what))
            elif action == "resolve":
                self.open[channel].discard(key)

    def since(self, t, channel=None):
        self.poll()
        return [o for o in self.opened if o[0] >= t and (channel is None or o[1] == channel)]

    def all_resolved(self):
        self.poll()
        return not self.open["pager"] and not self.open["chat"]


# ------------------------------------------------------------------ configuration


def agent_config(stack, port):
    tls = f"""ca_file = "{stack["MAILSTACK_CA_FILE"]}"
server_name = "{stack["MAILSTACK_TLS_SERVER_NAME"]}"
"""
    # other@ (not probe@, which the integration tests read), as in the monitoring e2e test.
    login = f"""username = "other@{stack["MAILSTACK_DOMAIN"]}"
password_file = "{stack["MAILSTACK_PASSWORD_FILE"]}"
"""
    imap = f"""imap_host = "{stack["MAILSTACK_HOST"]}"
imap_port = {stack["MAILSTACK_IMAP_PORT"]}
imap_tls = "starttls"
"""
    return f"""# written by tests/soak/soak.py
[agent]
listen_addresses = ["{HOST}:{port}"]

[defaults]
interval = "{INTERVAL_S}s"
timeout = "1500ms"
helo = "mailcanary.soak.test"

[[targets]]
name = "{TARGET}"
host = "{stack["MAILSTACK_HOST"]}"
port = {stack["MAILSTACK_SMTP_PORT"]}
tls = "starttls"
probes = ["connect", "roundtrip", "imap"]
[targets.tls_options]
{tls}[targets.message]
from = "canary@mailcanary.soak.test"
to = ["other@{stack["MAILSTACK_DOMAIN"]}"]
[targets.roundtrip]
{imap}{login}timeout = "{ROUNDTRIP_TIMEOUT_S}s"
[targets.roundtrip.tls_options]
{tls}[targets.imap]
port = {stack["MAILSTACK_IMAP_PORT"]}
tls = "starttls"
{login}[targets.imap.tls_options]
{tls}"""


# ------------------------------------------------------------------ the soak


@dataclasses.dataclass
class Row:
    check: str
    expected: str
    measured: str
    ok: bool


class Soak:
    def __init__(self, args, stack, agent_url, prom, notifications, procs):
        self.args = args
        self.stack = stack
        self.agent_url = agent_url
        self.prom = prom
        self.notes = notifications
        self.procs = procs
        self.rows = []
        self.healthy = []   # (seconds, failed runs, [what was notified])

    def metrics(self):
        self.procs.check_alive()
        return Metrics(self.agent_url)

    def stack_cmd(self, *argv):
        r = subprocess.run(["bash", MAILSTACK, argv[0], self.args.stack_dir, *argv[1:]],
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise Failure(f"mailstack.sh {' '.join(argv)} failed:\n{r.stdout}{r.stderr}")
        return r.stdout

    def switch(self, fault, state):
        self.stack_cmd("fault", fault.name, state, *([fault.user] if fault.user else []))
        if state == "off":
            for command in fault.after_off:
                self.stack_cmd(command)

    def resources(self):
        """Descriptors and resident memory: the least of five reads over two intervals, so a run
        or a reconnect in flight at one read does not count."""
        fds, rss = [], []
        for _ in range(5):
            m = self.metrics()
            fds.append(m.total("process_open_fds"))
            rss.append(m.total("process_resident_memory_bytes"))
            time.sleep(INTERVAL_S * 2 / 5)
        return int(min(fds)), int(min(rss))

    def healthy_window(self, seconds):
        start = self.metrics()
        t = time.monotonic()
        end = t + seconds
        while time.monotonic() < end:
            self.procs.check_alive()
            time.sleep(min(0.5, max(0.0, end - time.monotonic())))
        failed = self.metrics().total("mailcanary_probe_failures_total") - \
            start.total("mailcanary_probe_failures_total")
        opened = self.notes.since(t)
        self.healthy.append((seconds, int(failed), [o[3] for o in opened]))
        log(f"healthy window of {seconds:.0f}s: {failed:.0f} failed runs, {len(opened)} notified")

    def fault(self, fault):
        log(f"fault {fault.name}: {fault.what}")
        before = self.metrics().failures()
        # Times count from the start of the switch: stopping a daemon is the outage already.
        t0 = time.monotonic()
        self.switch(fault, "on")
        detected = alert = notified = None
        first_other = None
        deadline = t0 + NOTIFY_MAX_S
        while time.monotonic() < deadline and not (notified and detected and alert):
            now = time.monotonic()
            failures = self.metrics().failures()
            if detected is None and failures.get((fault.probe, fault.reason), 0) > \
                    before.get((fault.probe, fault.reason), 0):
                detected = now - t0
            if first_other is None:
                grown = [k for k, v in failures.items() if v > before.get(k, 0)]
                first_other = grown or None
            if alert is None:
                alert = next((a for a in prom_alerts_for(self.prom, TARGET)
                              if a["labels"]["alertname"] == fault.alert
                              and a["state"] == "firing"), None)
            if notified is None and self.notes.since(t0, fault.channel):
                notified = now - t0
            time.sleep(0.25)
        time.sleep(HELD_AFTER_NOTIFY_S)
        self.switch(fault, "off")
        t_off = time.monotonic()
        log(f"fault {fault.name} off after {t_off - t0:.1f}s")

        def recovered():
            return (not prom_alerts_for(self.prom, TARGET) and self.notes.all_resolved()
                    and self.metrics().all_succeeding(["connect", "roundtrip", "imap"]))
        try:
            wait_for(f"every alert of {fault.name} resolved and every probe succeeding",
                     recovered, RESOLVE_MAX_S, 0.25)
            resolved = time.monotonic() - t_off
        except Failure:
            resolved = None
        opened = self.notes.since(t0)
        on_channel = [o for o in opened if o[1] == fault.channel]
        off_channel = [o for o in opened if o[1] != fault.channel]

        bound = DETECT_S + (ROUNDTRIP_TIMEOUT_S if fault.reason == "lost" else 0)
        reason_in_alert = alert is not None and \
            f"Reason: {fault.reason}." in alert["annotations"].get("description", "")
        checks = [  # (passed, expected, measured)
            (detected is not None and detected <= bound,
             f"{fault.probe} `{fault.reason}` <= {bound}s",
             f"`{fault.reason}` at {detected:.1f}s" if detected is not None
             else f"not seen (failures that grew: {first_other})"),
            (reason_in_alert, f"{fault.alert}",
             "fired with the reason" if reason_in_alert
             else ("not firing" if alert is None else alert["annotations"].get("description"))),
            (len(on_channel) == 1 and not off_channel, f"1 {fault.channel}",
             f"{len(on_channel)} {fault.channel}" + (f" at {notified:.1f}s" if notified else "")
             + "".join(f"; also {o[1]}: {o[3]}" for o in off_channel)),
            (resolved is not None, f"resolved <= {RESOLVE_MAX_S}s",
             f"resolved in {resolved:.1f}s" if resolved is not None else "not resolved"),
        ]
        ok = all(c[0] for c in checks)
        expected = "; ".join(c[1] for c in checks)
        measured = "; ".join(c[2] for c in checks)
        self.rows.append(Row(f"{fault.name}: {fault.what}", expected, measured, ok))
        log(f"fault {fault.name}: {'ok' if ok else 'FAILED'}: {measured}")
        if resolved is None:
            # Leave no alert behind for the next fault to be blamed for.
            wait_for(f"every alert resolved after {fault.name}", recovered, RESOLVE_MAX_S, 0.5)

    def mailbox_left(self):
        """Messages in any folder of the probe's mailbox saved longer ago than the round-trip
        timeout and a margin (younger ones may be on their way to being seen and removed), and
        messages in Postfix's queue."""
        user = "other@" + self.stack["MAILSTACK_DOMAIN"]
        r = subprocess.run(["doveadm", "-c", self.stack["MAILSTACK_DOVECOT_CONFIG"], "search",
                            "-u", user, "mailbox", "*", "savedbefore",
                            f"{ROUNDTRIP_TIMEOUT_S + 5}secs"],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise Failure(f"doveadm search failed: {r.stderr}")
        queued = [line for line in self.stack_cmd("queue").splitlines() if line.strip()]
        return len(r.stdout.splitlines()), len(queued)


def plan(duration_s):
    """Rounds of every fault, and the healthy window after each (and before the first), so that
    the whole lasts about `duration_s`. A fault with its recovery takes about 30 s."""
    rounds = max(1, duration_s // 600)
    faults = rounds * len(FAULTS)
    healthy = max(MIN_HEALTHY_S, (duration_s - WARMUP_S - faults * 30) / (faults + 1))
    return rounds, healthy


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", required=True)
    ap.add_argument("--agent", required=True)
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--alertmanager", required=True)
    ap.add_argument("--stack-dir", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    duration_s = parse_duration(args.duration)
    rounds, healthy_s = plan(duration_s)

    stack = read_env(os.path.join(args.stack_dir, "stack.env"))
    tmp = tempfile.mkdtemp(prefix="mailcanary-soak-")
    procs = Procs(tmp)
    receiver = Receiver()
    signal.signal(signal.SIGTERM, interrupted)
    started = time.monotonic()
    soak = None
    try:
        agent_port, prom_port, am_port = free_port(), free_port(), free_port()
        prom = f"http://{HOST}:{prom_port}"
        cfg = os.path.join(tmp, "mailcanary.toml")
        with open(cfg, "w") as f:
            f.write(agent_config(stack, agent_port))
        check_agent_config(args.agent, cfg)
        am_cfg = alertmanager_config(tmp, receiver.port, PAGER_KEY)
        prom_cfg = prometheus_config(tmp, prom_port, am_port, agent_port, DIVISOR, windows=True)
        start_watched_agent(procs, args, tmp, cfg, am_cfg, prom_cfg, am_port, prom_port)
        wait_for("Prometheus to see Alertmanager",
                 lambda: http_get_json(f"{prom}/api/v1/alertmanagers")["data"]["activeAlertmanagers"], 30)
        notes = Notifications(receiver)
        soak = Soak(args, stack, f"http://{HOST}:{agent_port}/metrics", prom, notes, procs)
        wait_for("every probe succeeding", lambda: soak.metrics().all_succeeding(
            ["connect", "roundtrip", "imap"]), 30)
        wait_for("Prometheus scraping the agent", lambda: http_get_json(
            f"{prom}/api/v1/query?query=up")["data"]["result"], 30)
        time.sleep(WARMUP_S)
        fds0, rss0 = soak.resources()
        skipped0 = soak.metrics().total("mailcanary_probe_skipped_total")
        log(f"warmed up: {fds0} descriptors, {rss0 / 2**20:.1f} MiB resident; {rounds} round(s) of "
            f"{len(FAULTS)} faults, healthy windows of {healthy_s:.0f}s")
        soak.healthy_window(healthy_s)
        for _ in range(rounds):
            for fault in FAULTS:
                soak.fault(fault)
                soak.healthy_window(healthy_s)
        fds1, rss1 = soak.resources()
        skipped = soak.metrics().total("mailcanary_probe_skipped_total") - skipped0
        left, queued = soak.mailbox_left()
        procs.check_alive()
    except (Failure, KeyboardInterrupt) as e:
        print(f"FAIL: {e}", flush=True)
        procs.print_logs()
        return 1
    finally:
        procs.stop_all()
        receiver.close()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    rows = []
    seconds = sum(h[0] for h in soak.healthy)
    failed = sum(h[1] for h in soak.healthy)
    pages = [p for h in soak.healthy for p in h[2]]
    rows.append(Row(f"false alarms in {len(soak.healthy)} healthy windows ({seconds:.0f}s)",
                    "0 failed runs, 0 notified", f"{failed} failed runs, {len(pages)} notified"
                    + (f": {'; '.join(pages)}" if pages else ""), failed == 0 and not pages))
    rows += soak.rows
    fd_ok = fds1 <= fds0 + FD_SLACK
    rows.append(Row("file descriptors, start -> end", f"end <= start + {FD_SLACK}",
                    f"{fds0} -> {fds1}", fd_ok))
    rss_bound = rss0 * (1 + RSS_SLACK[0]) + RSS_SLACK[1]
    rows.append(Row("resident memory, start -> end",
                    f"end <= start + {RSS_SLACK[0]:.0%} + {RSS_SLACK[1] >> 20} MiB",
                    f"{rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB", rss1 <= rss_bound))
    rows.append(Row("probe messages left in the mailbox (and queue)", "0 (and 0)",
                    f"{left} (and {queued})", left == 0 and queued == 0))
    rows.append(Row("runs skipped", "0", f"{skipped:.0f}", skipped == 0))

    print(f"\nsoak --duration={args.duration}: {time.monotonic() - started:.0f}s, {rounds} round(s) of "
          f"{len(FAULTS)} faults; probe interval {INTERVAL_S}s; rules generated from config/rules "
          f"with every for: and range/offset window divided by {DIVISOR} (for: 3m -> "
          f"{180 // DIVISOR}s, [15m] -> {900 // DIVISOR}s); scrape and evaluation 1s, "
          f"Alertmanager group_wait 1s, group_interval 2s\n", flush=True)
    print("| check | expected | measured | |\n| --- | --- | --- | --- |")
    # A fault's row: its first failed run with the reason, counted from the switch; the alert
    # firing in Prometheus with "Reason: <reason>."; incidents notified from the switch until
    # everything resolved; how long that took after the fault was switched off.
    for r in rows:
        print(f"| {r.check} | {r.expected} | {r.measured} | {'ok' if r.ok else 'FAIL'} |")
    failed_rows = [r for r in rows if not r.ok]
    print(f"\n{'PASS' if not failed_rows else 'FAIL'}: {len(rows) - len(failed_rows)} of "
          f"{len(rows)} checks passed", flush=True)
    return 1 if failed_rows else 0


if __name__ == "__main__":
    sys.exit(main())
