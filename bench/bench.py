#!/usr/bin/env python3
"""mailcanary against blackbox_exporter (and check_smtp), side by side, on one machine.

Run through bench/run.sh, which installs the peers and builds the tools; see docs/benchmarks.md.
Every measurement alternates the tools on the same sink, and every figure printed comes with the
raw numbers in the JSON file (--out).

Sections (--only takes a comma-separated subset):
  cpu       CPU-seconds per 1,000 probes, plain and STARTTLS, at each --rates
  maxrate   the highest rate each sustains: every run completed and successful, no skips,
            p99 lateness under 5 ms
  accuracy  the banner phase against a sink that delays its banner by exactly 50 ms,
            at 1,000 probes/s
  memory    resident memory idle and with 1,000 and 10,000 targets; /metrics scrape time and size
  callgrind instructions per probe (plain, STARTTLS) and the top functions
  check     check_smtp CPU per probe at 50/s (a process per probe)
  roundtrip round-trip detection delay (only when the agent has a roundtrip probe)
  sizing    mailcanary alone, 1,000 to 10,000 STARTTLS targets at 30 s: CPU, memory and /metrics
            with and without phase histograms (docs/scaling.md); not in the default set
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"
# Another test stack on the machine may sit on these: MAILCANARY_BENCH_PORT_BASE moves them all.
PORT_BASE = int(os.environ.get("MAILCANARY_BENCH_PORT_BASE", "30000"))
SINK_PORT, SINK_CONTROL = PORT_BASE + 25, PORT_BASE + 26
SLOW_SINK_PORT, SLOW_SINK_CONTROL = PORT_BASE + 27, PORT_BASE + 28
AGENT_PORT = PORT_BASE + 725
EXPORTER_PORT = PORT_BASE + 115
CHECK_SMTP = "/usr/lib/nagios/plugins/check_smtp"
EXPORTER = "/usr/bin/prometheus-blackbox-exporter"


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


# ---- /proc ---------------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def sched_seconds(pid: int) -> float:
    """On-CPU time of every live thread (ns resolution), from /proc/PID/task/*/schedstat."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total / 1e9


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    rss = hwm = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return rss, hwm


# ---- processes -----------------------------------------------------------------------------------

# The long-lived processes beside the one measured (the exporter, the sinks): idle between
# measurements, unless one is still working off a backlog.
PEERS = []


def settle(limit_s=30.0):
    """Waits until every peer is idle (under 2 % of a core over half a second). An overloaded
    exporter goes on with the probes it was asked for after its driver stops, and took CPU from
    the next measurement (mailcanary's STARTTLS runs after it: p99 lateness 36 to 45 ms)."""
    end = time.time() + limit_s
    while time.time() < end:
        peers = [pid for pid in PEERS if os.path.exists(f"/proc/{pid}")]
        before = {pid: sched_seconds(pid) for pid in peers}
        time.sleep(0.5)
        if all(sched_seconds(pid) - before[pid] < 0.01 for pid in peers):
            return
    log(f"settle: a peer was still busy after {limit_s:.0f} s; measuring anyway")


class Process:
    def __init__(self, args, log_path, env=None):
        self.args = args
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        self.pid = self.proc.pid

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def alive(self):
        return self.proc.poll() is None


def wait_port(port, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection((HOST, port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {HOST}:{port} after {timeout}s")


def http_get(url, timeout=60):
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read()
    return body, time.perf_counter() - start


class Sink:
    # realtime: run under SCHED_FIFO (as root) so that its banner timer fires on time even on a
    # busy machine: the delayed sink is the ground truth of the accuracy test, and with normal
    # scheduling its own lateness (p99 several ms on 2 shared cores) hid the clients' error.
    def __init__(self, tools, work, port, control, delay_ms=0.0, threads=2, realtime=False):
        self.control_port = control
        self.ca = os.path.join(work, f"sink-{port}-ca.pem")
        self.realtime = realtime and os.geteuid() == 0 and shutil.which("chrt") is not None
        prefix = ["chrt", "-f", "20"] if self.realtime else []
        self.process = Process(prefix + [os.path.join(tools, "mailcanary-sink"),
                                         f"--listen={HOST}:{port}", f"--control={HOST}:{control}",
                                         f"--ca-out={self.ca}", f"--banner-delay-ms={delay_ms}",
                                         f"--threads={threads}"],
                               os.path.join(work, f"sink-{port}.log"))
        PEERS.append(self.process.pid)
        wait_port(control)
        wait_port(port)

    def command(self, line):
        with socket.create_connection((HOST, self.control_port), 5) as s:
            s.sendall(line.encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return data.decode().strip()

    def reset(self):
        self.command("reset")

    def stats(self):
        return json.loads(self.command("stats"))


# ---- Prometheus text -----------------------------------------------------------------------------

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text, wanted):
    """{name: [(labels, value)]} for the metric names in wanted (exact sample names)."""
    out = {name: [] for name in wanted}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name not in out:
            continue
        m = LINE.match(line)
        if m:
            labels = dict(LABEL.findall(m.group(2) or ""))
            out[name].append((labels, float(m.group(3))))
    return out


def histogram(samples, **match):
    """Sum of cumulative bucket counts by upper bound, over the series whose labels match."""
    buckets = {}
    for labels, value in samples:
        if all(labels.get(k) == v for k, v in match.items()):
            le = float(labels["le"])
            buckets[le] = buckets.get(le, 0.0) + value
    return buckets


def quantile(q, buckets):
    """Like PromQL histogram_quantile, from {le: cumulative count}."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return float("nan")
    rank = q * buckets[bounds[-1]]
    previous_bound, previous_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return previous_bound
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (
                count - previous_count)
        previous_bound, previous_count = bound, count
    return bounds[-1]


def delta_buckets(after, before):
    return {le: after[le] - before.get(le, 0.0) for le in after}


AGENT_METRICS = [
    "mailcanary_probe_runs_total", "mailcanary_probe_skipped_total",
    "mailcanary_probe_failures_total", "mailcanary_schedule_lateness_seconds_bucket",
    "mailcanary_probe_phase_duration_seconds_bucket", "mailcanary_probe_duration_seconds_bucket",
]


class AgentSnapshot:
    def __init__(self, url):
        start = time.time()
        body, self.scrape_seconds = http_get(url + "/metrics")
        self.time = (start + time.time()) / 2
        self.size = len(body)
        m = parse_metrics(body.decode(), AGENT_METRICS)
        self.runs = sum(v for _, v in m["mailcanary_probe_runs_total"])
        self.skips = sum(v for _, v in m["mailcanary_probe_skipped_total"])
        self.failures = sum(v for _, v in m["mailcanary_probe_failures_total"])
        self.lateness = histogram(m["mailcanary_schedule_lateness_seconds_bucket"])
        self.banner = histogram(m["mailcanary_probe_phase_duration_seconds_bucket"],
                                phase="banner")
        self.duration = histogram(m["mailcanary_probe_duration_seconds_bucket"])


# ---- mailcanary ----------------------------------------------------------------------------------

def agent_config(path, targets, interval, timeout, tls, port, ca, phase_histograms=True,
                 buckets=None):
    lines = ["[agent]", f'listen_addresses = ["{HOST}:{AGENT_PORT}"]',
             "max_concurrent_probes = 512", "", "[metrics]",
             f"phase_histograms = {'true' if phase_histograms else 'false'}"]
    if buckets:
        lines.append("duration_buckets = [" + ", ".join(f"{b:.6g}" for b in buckets) + "]")
    lines += ["", "[defaults]", f'interval = "{interval}"', f'timeout = "{timeout}"',
              'helo = "bench.test"', f'tls = "{tls}"', ""]
    for i in range(targets):
        lines += ["[[targets]]", f'name = "t{i:05d}"', f'host = "{HOST}"', f"port = {port}"]
        if tls != "none":
            lines += ["[targets.tls_options]", f'ca_file = "{ca}"']
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


class Agent:
    def __init__(self, binary, work, config, wrapper=()):
        self.url = f"http://{HOST}:{AGENT_PORT}"
        self.process = Process([*wrapper, binary, f"--config.file={config}", "--log.level=warn"],
                               os.path.join(work, "agent.log"))
        end = time.time() + (120 if wrapper else 30)
        while time.time() < end:
            try:
                http_get(self.url + "/-/ready", 2)
                return
            except OSError:
                if not self.process.alive():
                    raise RuntimeError("mailcanary exited; see agent.log")
                time.sleep(0.1)
        raise RuntimeError("mailcanary not ready")

    def stop(self):
        self.process.stop()


def run_agent(args, sink, dialog, rate, window, interval_s=1.0, banner_check=False,
              phase_histograms=True, scrape=False):
    """Runs the agent with `rate` targets every second against the sink; measures one window
    (and, with `scrape`, then one /metrics fetch)."""
    config = os.path.join(args.work, "agent.toml")
    targets = int(round(rate * interval_s))
    buckets = ACCURACY_BUCKETS if banner_check else None
    settle()
    agent_config(config, targets, f"{int(interval_s * 1000)}ms", f"{int(interval_s * 900)}ms",
                 "starttls" if dialog == "starttls" else "none",
                 SLOW_SINK_PORT if banner_check else SINK_PORT, sink.ca, buckets=buckets,
                 phase_histograms=phase_histograms)
    agent = Agent(args.mailcanary, args.work, config)
    metrics = None
    try:
        time.sleep(interval_s + 1.5)  # every target has started; connections are warm
        pid = agent.process.pid
        sink.reset()
        sink_cpu0 = cpu_seconds(sink.process.pid)
        cpu0, sched0 = cpu_seconds(pid), sched_seconds(pid)
        before = AgentSnapshot(agent.url)
        time.sleep(window)
        after = AgentSnapshot(agent.url)
        cpu1, sched1 = cpu_seconds(pid), sched_seconds(pid)
        sink_cpu1 = cpu_seconds(sink.process.pid)
        rss, hwm = memory_mb(pid)
        sink_stats = sink.stats()
        if scrape:
            metrics = curl_scrape(agent.url + "/metrics", pid, args.work)
    finally:
        agent.stop()
    runs = after.runs - before.runs
    elapsed = after.time - before.time
    lateness = delta_buckets(after.lateness, before.lateness)
    total = lateness.get(math.inf, 0.0)
    within_5ms = lateness.get(0.005, 0.0) / total if total else 0.0
    result = {
        "tool": "mailcanary", "dialog": dialog, "rate": rate, "targets": targets,
        "window_s": round(elapsed, 3), "runs": runs, "expected": round(rate * elapsed),
        "skips": after.skips - before.skips, "failures": after.failures - before.failures,
        "cpu_s": round(cpu1 - cpu0, 4), "sched_cpu_s": round(sched1 - sched0, 4),
        "cpu_ms_per_probe": round((cpu1 - cpu0) / runs * 1000, 4) if runs else None,
        "sched_ms_per_probe": round((sched1 - sched0) / runs * 1000, 4) if runs else None,
        "lateness_p99_ms": round(quantile(0.99, lateness) * 1000, 3),
        "lateness_within_5ms": round(within_5ms, 5),
        "rss_mb": round(rss, 1), "hwm_mb": round(hwm, 1),
        "scrape_s": round(after.scrape_seconds, 4),
        "sink": sink_stats, "sink_cpu_s": round(sink_cpu1 - sink_cpu0, 4),
        "sink_cpu_share": round((sink_cpu1 - sink_cpu0) / elapsed, 4),
        "cores": round((cpu1 - cpu0) / elapsed, 4), "interval_s": interval_s,
        "phase_histograms": phase_histograms, "metrics": metrics,
    }
    result["sustained"] = bool(runs >= 0.98 * rate * elapsed and result["skips"] == 0 and
                               result["failures"] == 0 and within_5ms >= 0.99)
    if banner_check:
        banner = delta_buckets(after.banner, before.banner)
        duration = delta_buckets(after.duration, before.duration)
        result["banner_ms"] = {q: round(quantile(p, banner) * 1000, 4)
                               for q, p in (("p50", 0.5), ("p99", 0.99))}
        result["duration_ms"] = {q: round(quantile(p, duration) * 1000, 4)
                                 for q, p in (("p50", 0.5), ("p99", 0.99))}
    return result


# ---- blackbox_exporter ---------------------------------------------------------------------------

def exporter_config(path, ca):
    with open(path, "w") as f:
        f.write(f"""modules:
  smtp_plain:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - expect: "^220 "
        - send: "EHLO bench.test\\r"
        - expect: "^250 "
        - send: "QUIT\\r"
        - expect: "^221 "
  smtp_starttls:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: {ca}
      query_response:
        - expect: "^220 "
        - send: "EHLO bench.test\\r"
        - expect: "^250-STARTTLS"
        - expect: "^250 "
        - send: "STARTTLS\\r"
        - expect: "^220 "
        - starttls: true
        - send: "EHLO bench.test\\r"
        - expect: "^250 "
        - send: "QUIT\\r"
        - expect: "^221 "
""")


class Exporter:
    def __init__(self, work, ca):
        config = os.path.join(work, "blackbox.yml")
        exporter_config(config, ca)
        self.process = Process([EXPORTER, f"--config.file={config}",
                                f"--web.listen-address={HOST}:{EXPORTER_PORT}", "--log.level=warn"],
                               os.path.join(work, "blackbox.log"))
        PEERS.append(self.process.pid)
        wait_port(EXPORTER_PORT)

    def stop(self):
        self.process.stop()


def drive(args, dialog, rate, duration, port=SINK_PORT, samples=None):
    cmd = [os.path.join(args.tools, "mailcanary-http-load"), f"--connect={HOST}:{EXPORTER_PORT}",
           f"--path=/probe?target={HOST}:{port}&module=smtp_{dialog}", f"--rate={rate}",
           f"--duration={duration}", "--timeout=5"]
    if samples:
        cmd.append(f"--samples={samples}")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def run_exporter(args, exporter, sink, dialog, rate, window, port=SINK_PORT, samples=None):
    settle()
    drive(args, dialog, rate, 2, port)  # warm up: connections, goroutines, heap
    pid = exporter.process.pid
    sink.reset()
    sink_cpu0 = cpu_seconds(sink.process.pid)
    cpu0, sched0 = cpu_seconds(pid), sched_seconds(pid)
    started = time.time()
    d = drive(args, dialog, rate, window, port, samples)
    elapsed = time.time() - started
    cpu1, sched1 = cpu_seconds(pid), sched_seconds(pid)
    sink_cpu1 = cpu_seconds(sink.process.pid)
    rss, hwm = memory_mb(pid)
    done = d["completed"]
    result = {
        "tool": "blackbox_exporter", "dialog": dialog, "rate": rate, "window_s": window,
        "runs": done, "expected": d["planned"], "ok": d["ok"], "failed": d["failed"],
        "errors": d["errors"],
        "cpu_s": round(cpu1 - cpu0, 4), "sched_cpu_s": round(sched1 - sched0, 4),
        "cpu_ms_per_probe": round((cpu1 - cpu0) / done * 1000, 4) if done else None,
        "sched_ms_per_probe": round((sched1 - sched0) / done * 1000, 4) if done else None,
        "driver_lateness_p99_ms": d["lateness_ms"].get("p99"),
        "overhead_p99_ms": d["overhead_ms"].get("p99"),
        "latency_p99_ms": d["latency_ms"].get("p99"),
        "probe_ms": d["probe_ms"], "driver_cpu_s": d["cpu_s"],
        "rss_mb": round(rss, 1), "hwm_mb": round(hwm, 1), "sink": sink.stats(),
        "sink_cpu_s": round(sink_cpu1 - sink_cpu0, 4),
        "sink_cpu_share": round((sink_cpu1 - sink_cpu0) / elapsed, 4),
        "cores": round((cpu1 - cpu0) / elapsed, 4), "interval_s": interval_s,
        "phase_histograms": phase_histograms, "metrics": metrics,
    }
    result["sustained"] = bool(d["ok"] == d["planned"] and
                               (d["lateness_ms"].get("p99") or 99) < 5 and
                               (d["overhead_ms"].get("p99") or 99) < 5)
    return result


# ---- check_smtp ----------------------------------------------------------------------------------

def run_check_smtp(sink, dialog, rate, window):
    cmd = [CHECK_SMTP, "-H", HOST, "-p", str(SINK_PORT), "-t", "5"]
    if dialog == "starttls":
        cmd.append("-S")
    sink.reset()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic() + 0.1
    total = int(rate * window)
    running, ok, lateness = {}, 0, []
    devnull = os.open(os.devnull, os.O_WRONLY)
    for i in range(total):
        planned = start + i / rate
        while True:
            now = time.monotonic()
            if now >= planned:
                break
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid:
                ok += os.waitstatus_to_exitcode(status) == 0
                running.pop(pid, None)
            else:
                time.sleep(min(0.001, planned - now))
        lateness.append((time.monotonic() - planned) * 1000)
        pid = os.posix_spawn(cmd[0], cmd, os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
        running[pid] = True
    while running:
        pid, status = os.waitpid(-1, 0)
        ok += os.waitstatus_to_exitcode(status) == 0
        running.pop(pid, None)
    os.close(devnull)
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    lateness.sort()
    return {"tool": "check_smtp", "dialog": dialog, "rate": rate, "runs": total, "ok": ok,
            "cpu_s": round(cpu, 4), "cpu_ms_per_probe": round(cpu / total * 1000, 4),
            "driver_lateness_p99_ms": round(lateness[int(0.99 * (len(lateness) - 1))], 3),
            "sink": sink.stats()}


# ---- sections ------------------------------------------------------------------------------------

def section_cpu(args, sink, exporter, results):
    out = results.setdefault("cpu", [])
    for dialog in ("plain", "starttls"):
        for rate in args.rates:
            window = 20 if rate <= 100 else 10
            for rep in range(args.reps):
                log(f"cpu {dialog} {rate}/s rep {rep + 1}: mailcanary")
                out.append(run_agent(args, sink, dialog, rate, window))
                log(f"  -> {summary(out[-1])}")
                log(f"cpu {dialog} {rate}/s rep {rep + 1}: blackbox_exporter")
                out.append(run_exporter(args, exporter, sink, dialog, rate, window))
                log(f"  -> {summary(out[-1])}")


def section_check(args, sink, results):
    out = results.setdefault("check_smtp", [])
    for dialog in ("plain", "starttls"):
        log(f"check_smtp {dialog} 50/s")
        out.append(run_check_smtp(sink, dialog, 50, 10))
        log(f"  -> {out[-1]}")


def section_maxrate(args, sink, exporter, results):
    out = results.setdefault("maxrate", [])
    ladders = {"plain": args.plain_ladder, "starttls": args.starttls_ladder}
    for dialog, ladder in ladders.items():
        alive = {"mailcanary": True, "blackbox_exporter": True}
        for rate in ladder:
            if alive["mailcanary"]:
                # rate/10 targets every 100 ms: the engine's capacity, with /metrics small enough
                # that the scrapes reading the counters do not decide the result (the CPU table's
                # runs, a target per probe per second, show the effect of big scrapes).
                log(f"maxrate {dialog} {rate}/s: mailcanary")
                r = run_agent(args, sink, dialog, rate, 10, interval_s=0.1)
                out.append(r)
                alive["mailcanary"] = r["sustained"]
                log(f"  -> {summary(r)}")
            if alive["blackbox_exporter"]:
                log(f"maxrate {dialog} {rate}/s: blackbox_exporter")
                r = run_exporter(args, exporter, sink, dialog, rate, 10)
                out.append(r)
                alive["blackbox_exporter"] = r["sustained"]
                log(f"  -> {summary(r)}")
            if not any(alive.values()):
                break


# Fine buckets around 50 ms (25 µs steps to 50.5 ms, then 50 µs to 51 ms): the banner phase's
# error is read from the histogram the agent exports, the way a user would read it.
ACCURACY_BUCKETS = ([0.0499, 0.04995] + [0.05 + i * 0.000025 for i in range(21)] +
                    [0.0505 + i * 0.00005 for i in range(1, 11)] +
                    [0.0515, 0.052, 0.053, 0.055, 0.06, 0.075, 0.1, 0.25, 0.5])


def section_accuracy(args, slow_sink, exporter, results):
    out = results.setdefault("accuracy", [])
    rate, window = 1000, 15
    for rep in range(args.reps):
        # 1,000 targets every second (a big /metrics: its scrapes stall the loop), then 100
        # targets every 100 ms (the same rate, a /metrics ten times smaller).
        for interval in (1.0, 0.1):
            log(f"accuracy rep {rep + 1}: mailcanary, 50 ms banner, {rate}/s, "
                f"{int(rate * interval)} targets")
            r = run_agent(args, slow_sink, "plain", rate, window, interval_s=interval,
                          banner_check=True)
            out.append(r)
            log(f"  -> banner {r['banner_ms']} sink {r['sink']['banner_us']} {summary(r)}")
        log(f"accuracy rep {rep + 1}: blackbox_exporter")
        samples = os.path.join(args.work, "blackbox-durations.txt")
        r = run_exporter(args, exporter, slow_sink, "plain", rate, window, SLOW_SINK_PORT, samples)
        with open(samples) as f:
            values = sorted(float(line) * 1000 for line in f if line.strip())
        r["duration_ms"] = {"p50": round(values[len(values) // 2], 4),
                            "p99": round(values[int(0.99 * (len(values) - 1))], 4)}
        out.append(r)
        log(f"  -> duration {r['duration_ms']} sink {r['sink']['banner_us']} {summary(r)}")


def section_sizing(args, sink, results):
    """What one agent carries (docs/scaling.md): STARTTLS targets at the default 30 s interval,
    the CPU share of a core, RSS and /metrics size in steady state, with and without phase
    histograms."""
    out = results.setdefault("sizing", [])
    for targets, histograms in ((1000, True), (5000, True), (10000, True), (10000, False)):
        log(f"sizing: {targets} STARTTLS targets at 30 s, phase_histograms={histograms}")
        out.append(run_agent(args, sink, "starttls", targets / 30, args.sizing_window,
                             interval_s=30.0, phase_histograms=histograms, scrape=True))
        log(f"  -> {out[-1]}")


def section_memory(args, sink, exporter, results):
    out = results.setdefault("memory", [])
    config = os.path.join(args.work, "agent.toml")
    # Idle: no targets.
    agent_config(config, 0, "30s", "10s", "none", SINK_PORT, sink.ca)
    agent = Agent(args.mailcanary, args.work, config)
    time.sleep(3)
    rss, hwm = memory_mb(agent.process.pid)
    agent.stop()
    out.append({"tool": "mailcanary", "targets": 0, "rss_mb": round(rss, 1), "hwm_mb": round(hwm, 1)})
    log(f"memory idle: {out[-1]}")
    for targets, histograms in ((1000, True), (10000, True), (10000, False)):
        interval = 30
        agent_config(config, targets, f"{interval}s", "10s", "starttls", SINK_PORT, sink.ca,
                     phase_histograms=histograms)
        log(f"memory {targets} STARTTLS targets at {interval}s, phase_histograms={histograms}")
        agent = Agent(args.mailcanary, args.work, config)
        pid = agent.process.pid
        try:
            samples = []
            start = time.time()
            while time.time() - start < interval + 5:
                time.sleep(5)
                samples.append(round(memory_mb(pid)[0], 1))
            rss_after_first_round = memory_mb(pid)[0]
            scrapes = [curl_scrape(agent.url + "/metrics", pid, args.work) for _ in range(3)]
            while time.time() - start < 2 * interval + 10:
                time.sleep(5)
                samples.append(round(memory_mb(pid)[0], 1))
            rss_end, hwm = memory_mb(pid)
        finally:
            agent.stop()
        out.append({"tool": "mailcanary", "targets": targets, "phase_histograms": histograms,
                    "rss_mb": round(rss_after_first_round, 1), "rss_end_mb": round(rss_end, 1),
                    "hwm_mb": round(hwm, 1), "rss_samples": samples,
                    "scrape_s": statistics.median(x["seconds"] for x in scrapes),
                    "scrape_bytes": scrapes[-1]["bytes"],
                    "scrape_cpu_s": statistics.median(x["agent_cpu_s"] for x in scrapes),
                    "scrape_complete": all(x["complete"] for x in scrapes),
                    "series": scrapes[-1]["series"], "scrapes": scrapes})
        log(f"  -> {out[-1]}")
    # blackbox_exporter: idle, then driven at the rate the same targets would need (n / 30 s).
    exporter.stop()
    fresh = Exporter(args.work, sink.ca)
    time.sleep(3)
    rss, hwm = memory_mb(fresh.process.pid)
    out.append({"tool": "blackbox_exporter", "targets": 0, "rss_mb": round(rss, 1),
                "hwm_mb": round(hwm, 1)})
    log(f"memory blackbox idle: {out[-1]}")
    for targets in (1000, 10000):
        rate = targets / 30
        drive(args, "starttls", rate, 30)
        rss, hwm = memory_mb(fresh.process.pid)
        out.append({"tool": "blackbox_exporter", "targets": targets, "rate": round(rate, 1),
                    "rss_mb": round(rss, 1), "hwm_mb": round(hwm, 1)})
        log(f"  -> {out[-1]}")
    return fresh


def curl_scrape(url, pid, work):
    """Fetches /metrics with curl (a fast reader): time, size, series, the agent's CPU for it."""
    path = os.path.join(work, "metrics.txt")
    cpu0 = cpu_seconds(pid)
    out = subprocess.run(["curl", "-s", "-o", path, "-w",
                          "%{http_code} %{size_download} %{time_total}", "--max-time", "120", url],
                         capture_output=True, text=True)
    cpu = cpu_seconds(pid) - cpu0
    code, size, seconds = out.stdout.split() if out.stdout.count(" ") == 2 else ("0", "0", "0")
    series = 0
    with open(path, "rb") as f:
        for line in f:
            if line[:1] != b"#" and line.strip():
                series += 1
    return {"http_code": int(code), "bytes": int(size), "seconds": round(float(seconds), 3),
            "agent_cpu_s": round(cpu, 3), "series": series, "curl_exit": out.returncode,
            "complete": out.returncode == 0 and int(code) == 200}  # curl exits 18 when cut


def callgrind_top(path, count=12):
    out = subprocess.run(["callgrind_annotate", "--threshold=100", path], capture_output=True,
                         text=True).stdout
    total = None
    top = []
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\(100.0%\)\s+PROGRAM TOTALS", line)
        if m:
            total = int(m.group(1).replace(",", ""))
            continue
        m = re.match(r"^\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(\S.*)$", line)
        if m and total is not None and len(top) < count:
            top.append({"ir": int(m.group(1).replace(",", "")), "percent": float(m.group(2)),
                        "function": m.group(3)[:160]})
    return total, top


def section_callgrind(args, sink, results):
    out = results.setdefault("callgrind", [])
    if not shutil.which("valgrind"):
        log("callgrind: valgrind not installed, skipped")
        return
    for dialog, targets in (("plain", 20), ("starttls", 10)):
        config = os.path.join(args.work, "agent.toml")
        agent_config(config, targets, "1s", "900ms", "starttls" if dialog == "starttls" else "none",
                     SINK_PORT, sink.ca)
        cg = os.path.join(args.work, f"callgrind.{dialog}.out")
        for stale in glob.glob(cg + "*"):
            os.unlink(stale)
        log(f"callgrind {dialog}: {targets} targets at 1s under valgrind")
        agent = Agent(args.mailcanary, args.work, config,
                      wrapper=("valgrind", "--tool=callgrind", "--instr-atstart=no",
                               f"--callgrind-out-file={cg}"))
        try:
            time.sleep(5)  # every target has run at least once
            before = AgentSnapshot(agent.url)
            subprocess.run(["callgrind_control", "-i", "on", str(agent.process.pid)], check=True,
                           capture_output=True)
            time.sleep(args.callgrind_seconds)
            subprocess.run(["callgrind_control", "-i", "off", str(agent.process.pid)], check=True,
                           capture_output=True)
            after = AgentSnapshot(agent.url)
        finally:
            agent.stop()
        runs = after.runs - before.runs
        total, top = callgrind_top(cg)
        out.append({"dialog": dialog, "runs": runs, "instructions": total,
                    "per_probe": round(total / runs) if runs and total else None, "top": top,
                    "failures": after.failures - before.failures, "file": cg})
        log(f"  -> {runs} runs, {out[-1]['per_probe']} instructions per probe")


# ---- round trip on the real stack ---------------------------------------------------------------

STACK_PORT_BASE = 31000


class MaildirWatch:
    """Times, by inotify, when Dovecot stores each message (its file appears in new/ or cur/)."""

    IN_MOVED_TO, IN_CREATE = 0x80, 0x100

    def __init__(self, maildir):
        import ctypes
        import threading
        self.libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK)
        self.dirs = {}
        for sub in ("new", "cur"):
            path = os.path.join(maildir, sub)
            wd = self.libc.inotify_add_watch(self.fd, path.encode(),
                                             self.IN_MOVED_TO | self.IN_CREATE)
            self.dirs[wd] = path
        self.stored = {}  # message base name -> (time seen, mtime)
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        import select
        import struct
        while self.running:
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if not ready:
                continue
            now = time.time()
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                continue
            at = 0
            while at < len(data):
                wd, _, _, length = struct.unpack_from("iIII", data, at)
                name = data[at + 16:at + 16 + length].rstrip(b"\0").decode()
                at += 16 + length
                base = name.split(":", 1)[0]
                if base and base not in self.stored:
                    try:
                        mtime = os.stat(os.path.join(self.dirs[wd], name)).st_mtime
                    except OSError:
                        mtime = None
                    self.stored[base] = (now, mtime)

    def stop(self):
        self.running = False
        self.thread.join()
        os.close(self.fd)


def log_times(path, target):
    """When the agent logged a successful run of the target's roundtrip probe (ms resolution)."""
    import datetime
    times = []
    with open(path) as f:
        for line in f:
            if 'msg="probe succeeded"' in line and f"target={target} " in line + " " and \
                    "probe=roundtrip" in line:
                ts = line.split("ts=", 1)[1].split(" ", 1)[0]
                when = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                    tzinfo=datetime.timezone.utc)
                times.append(when.timestamp())
    return times


def section_roundtrip(args, results):
    out = results.setdefault("roundtrip", [])
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    stack_script = os.path.join(repo, "tests", "stack", "mailstack.sh")
    probe = subprocess.run([args.mailcanary, "--help"], capture_output=True, text=True)
    if not os.path.exists(stack_script) or "roundtrip" not in (probe.stdout + probe.stderr +
                                                               open(args.mailcanary, "rb").read(
                                                                   ).decode("latin-1")):
        log("roundtrip: this agent has no roundtrip probe or the tree no test stack; skipped")
        return
    stack = os.path.join("/tmp", "mailcanary-bench-stack")
    env = dict(os.environ, MAILSTACK_PORT_BASE=str(STACK_PORT_BASE))
    log(f"roundtrip: starting the real mail stack in {stack} (ports {STACK_PORT_BASE}+)")
    subprocess.run(["bash", stack_script, "start", stack], env=env, check=True,
                   capture_output=True)
    maildir = os.path.join(stack, "mail", "example.test", "probe", "Maildir")
    # One message stored directly makes Dovecot create the Maildir, so it can be watched.
    subprocess.run(["bash", stack_script, "save", stack, "probe"], env=env, check=True,
                   capture_output=True,
                   input=b"From: someone@example.test\r\nSubject: not a probe\r\n\r\nhello\r\n")
    try:
        # 2.3 s between messages: not a multiple of the poll interval, so the phase drifts.
        for mode, idle, poll, prompt in (
                ("IDLE with prompt checks (the default)", True, "1s", True),
                ("IDLE alone (prompt_checks = false)", True, "1s", False),
                ("polling every 1s (prompt_checks = false)", False, "1s", False),
                ("polling every 25ms (prompt_checks = false)", False, "25ms", False)):
            config = os.path.join(args.work, "roundtrip.toml")
            with open(config, "w") as f:
                f.write(f"""[agent]
listen_addresses = ["{HOST}:{AGENT_PORT}"]
secret_file = "{os.path.join(args.work, 'roundtrip.secret')}"
[defaults]
interval = "2300ms"
timeout = "1500ms"
helo = "bench.test"
[[targets]]
name = "rt"
host = "{HOST}"
port = {STACK_PORT_BASE + 25}
probes = ["roundtrip"]
[targets.tls_options]
ca_file = "{stack}/tls/ca.pem"
[targets.message]
from = "probe@example.test"
to = ["probe@example.test"]
[targets.roundtrip]
imap_host = "{HOST}"
imap_port = {STACK_PORT_BASE + 993}
username = "probe@example.test"
password_file = "{stack}/secrets/probe.password"
timeout = "30s"
idle = {"true" if idle else "false"}
poll_interval = "{poll}"
prompt_checks = {"true" if prompt else "false"}
[targets.roundtrip.tls_options]
ca_file = "{stack}/tls/ca.pem"
""")
            log(f"roundtrip: {mode}, one message every 2.3 s for {args.roundtrip_seconds} s")
            watch = MaildirWatch(maildir)
            agent_log = os.path.join(args.work, "agent.log")
            open(agent_log, "w").close()
            agent = Process([args.mailcanary, f"--config.file={config}", "--log.level=debug"],
                            agent_log)
            time.sleep(args.roundtrip_seconds)
            agent.stop()
            watch.stop()
            noticed = log_times(agent_log, "rt")
            stored = sorted(t for t, _ in watch.stored.values())
            delays = []
            for t in noticed[2:]:  # the first runs open the IMAP session
                before = [x for x in stored if x <= t and t - x < 30]
                if before:
                    delays.append((t - before[-1]) * 1000)
            delays.sort()
            row = {"mode": mode, "messages_stored": len(stored), "runs_succeeded": len(noticed),
                   "delays_ms": [round(d, 1) for d in delays]}
            if delays:
                row.update({"p50_ms": round(delays[len(delays) // 2], 1),
                            "p95_ms": round(delays[int(0.95 * (len(delays) - 1))], 1),
                            "max_ms": round(delays[-1], 1)})
            out.append(row)
            log(f"  -> {row}")
    finally:
        subprocess.run(["bash", stack_script, "stop", stack], env=env, capture_output=True)


# ---- output --------------------------------------------------------------------------------------

def summary(r):
    keys = ["runs", "expected", "skips", "failures", "ok", "cpu_ms_per_probe", "sched_ms_per_probe",
            "lateness_p99_ms", "driver_lateness_p99_ms", "overhead_p99_ms", "rss_mb", "sustained"]
    parts = [f"{k}={r[k]}" for k in keys if k in r]
    if "sink" in r:
        s = r["sink"]
        parts.append(f"sink(sessions={s['sessions']} banner_p99_us={s['banner_us']['p99']} "
                     f"cpu_share={r.get('sink_cpu_share')})")
    return " ".join(parts)


def median_of(rows, key):
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=3):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def ratio(ours, theirs):
    if not ours or not theirs:
        return "n/a"
    return f"{ours / theirs:.2f}"


def report(results):
    lines = []
    add = lines.append
    sizing = results.get("sizing", [])
    if sizing:
        add("## One agent: STARTTLS targets at 30 s (docs/scaling.md)")
        add("")
        add("| targets | phase histograms | probes/s | cores | CPU-ms/probe | RSS MB | "
            "/metrics MB | series | sustained |")
        add("|---|---|---|---|---|---|---|---|---|")
        for r in sizing:
            m = r.get("metrics") or {}
            add(f"| {r['targets']} | {'yes' if r['phase_histograms'] else 'no'} | "
                f"{fmt(r['runs'] / r['window_s'], 1)} | {fmt(r['cores'], 3)} | "
                f"{fmt(r['cpu_ms_per_probe'])} | {r['rss_mb']} | "
                f"{fmt(m.get('bytes', 0) / 1e6, 1)} | {m.get('series')} | {r['sustained']} |")
        add("")
    cpu = results.get("cpu", [])
    if cpu:
        add("## CPU-seconds per 1,000 probes (median of runs; user+sys from /proc/PID/stat)")
        add("")
        add("| dialog | rate/s | mailcanary | blackbox_exporter | ratio | check_smtp | "
            "mailcanary sustained | exporter sustained |")
        add("|---|---|---|---|---|---|---|---|")
        checks = {r["dialog"]: r for r in results.get("check_smtp", [])}
        for dialog in ("plain", "starttls"):
            for rate in sorted({r["rate"] for r in cpu if r["dialog"] == dialog}):
                ours = [r for r in cpu if r["tool"] == "mailcanary" and r["dialog"] == dialog
                        and r["rate"] == rate]
                theirs = [r for r in cpu if r["tool"] == "blackbox_exporter" and
                          r["dialog"] == dialog and r["rate"] == rate]
                a, b = median_of(ours, "cpu_ms_per_probe"), median_of(theirs, "cpu_ms_per_probe")
                check = checks.get(dialog) if rate == 50 else None
                add(f"| {dialog} | {rate} | {fmt(a)} | {fmt(b)} | {ratio(a, b)} | "
                    f"{fmt(check['cpu_ms_per_probe']) if check else ''} | "
                    f"{sum(r['sustained'] for r in ours)}/{len(ours)} | "
                    f"{sum(r['sustained'] for r in theirs)}/{len(theirs)} |")
        add("")
        add("(CPU-ms per probe = CPU-s per 1,000 probes.)")
        add("")
        add("The sink in those runs (median): its CPU as a share of one core, and its own "
            "accept-to-banner time p99 in microseconds:")
        add("")
        add("| dialog | rate/s | sink CPU, mailcanary runs | sink CPU, exporter runs | "
            "banner p99 µs, mailcanary runs | banner p99 µs, exporter runs |")
        add("|---|---|---|---|---|---|")
        for dialog in ("plain", "starttls"):
            for rate in sorted({r["rate"] for r in cpu if r["dialog"] == dialog}):
                rows = {tool: [r for r in cpu if r["tool"] == tool and r["dialog"] == dialog and
                               r["rate"] == rate] for tool in ("mailcanary", "blackbox_exporter")}
                share = {t: median_of(v, "sink_cpu_share") for t, v in rows.items()}
                banner = {t: statistics.median(r["sink"]["banner_us"]["p99"] for r in v)
                          for t, v in rows.items() if v}
                add(f"| {dialog} | {rate} | {fmt(share['mailcanary'], 2)} | "
                    f"{fmt(share['blackbox_exporter'], 2)} | {banner.get('mailcanary')} | "
                    f"{banner.get('blackbox_exporter')} |")
        add("")
    maxrate = results.get("maxrate", []) + cpu
    if results.get("maxrate"):
        add("## Highest sustained rate (all runs completed and successful, no skips, "
            "p99 lateness < 5 ms)")
        add("")
        add("| dialog | mailcanary | blackbox_exporter | ratio |")
        add("|---|---|---|---|")
        for dialog in ("plain", "starttls"):
            best = {}
            for tool in ("mailcanary", "blackbox_exporter"):
                rates = [r["rate"] for r in maxrate if r["tool"] == tool and
                         r["dialog"] == dialog and r["sustained"]]
                failed = [r["rate"] for r in maxrate if r["tool"] == tool and
                          r["dialog"] == dialog and not r["sustained"]]
                top = max(rates) if rates else None
                # A rate counts only if no lower or equal rate failed in the ladder.
                if top is not None and failed and min(failed) <= top:
                    top = max([x for x in rates if x < min(failed)], default=None)
                best[tool] = top
            add(f"| {dialog} | {best['mailcanary'] or 'n/a'}/s | "
                f"{best['blackbox_exporter'] or 'n/a'}/s | "
                f"{ratio(best['mailcanary'], best['blackbox_exporter'])} |")
        add("")
    accuracy = results.get("accuracy", [])
    if accuracy:
        ours = [r for r in accuracy if r["tool"] == "mailcanary" and r["targets"] >= 1000]
        small = [r for r in accuracy if r["tool"] == "mailcanary" and r["targets"] < 1000]
        theirs = [r for r in accuracy if r["tool"] == "blackbox_exporter"]
        add("## Accuracy: 50 ms banner delay, 1,000 probes/s (error = reported - 50 ms)")
        add("")
        add("| measure | p50 error ms | p99 error ms |")
        add("|---|---|---|")
        for label, rows, key in (("mailcanary banner phase, 1,000 targets at 1 s", ours,
                                  "banner_ms"),
                                 ("mailcanary whole run, 1,000 targets at 1 s", ours,
                                  "duration_ms"),
                                 ("mailcanary banner phase, 100 targets at 100 ms", small,
                                  "banner_ms"),
                                 ("mailcanary whole run, 100 targets at 100 ms", small,
                                  "duration_ms"),
                                 ("blackbox_exporter probe_duration_seconds", theirs,
                                  "duration_ms")):
            if not rows:
                continue
            p50 = statistics.median(r[key]["p50"] - 50 for r in rows)
            p99 = statistics.median(r[key]["p99"] - 50 for r in rows)
            add(f"| {label} | {fmt(p50)} | {fmt(p99)} |")
        sink50 = statistics.median(r["sink"]["banner_us"]["p50"] for r in accuracy) / 1000 - 50
        sink99 = statistics.median(r["sink"]["banner_us"]["p99"] for r in accuracy) / 1000 - 50
        add(f"| the sink's own accept-to-banner (its timer overshoot) | {fmt(sink50)} | "
            f"{fmt(sink99)} |")
        add("")
    memory = results.get("memory", [])
    if memory:
        add("## Resident memory (MB) and /metrics")
        add("")
        add("| configuration | mailcanary RSS | after 2nd round | blackbox_exporter RSS |")
        add("|---|---|---|---|")
        bb = {r["targets"]: r for r in memory if r["tool"] == "blackbox_exporter"}
        for r in [r for r in memory if r["tool"] == "mailcanary"]:
            name = f"{r['targets']} STARTTLS targets" if r["targets"] else "idle (no targets)"
            if r.get("phase_histograms") is False:
                name += ", phase_histograms = false"
            other = bb.get(r["targets"])
            add(f"| {name} | {fmt(r['rss_mb'], 1)} | {fmt(r.get('rss_end_mb'), 1)} | "
                f"{fmt(other['rss_mb'], 1) if other and r.get('phase_histograms') is not False else ''} |")
        add("")
        add("| /metrics with | series | size MB | scrape s | agent CPU s per scrape | complete |")
        add("|---|---|---|---|---|---|")
        for r in memory:
            if "scrape_s" in r:
                add(f"| {r['targets']} targets, phase_histograms = "
                    f"{str(r['phase_histograms']).lower()} | {r['series']} | "
                    f"{r['scrape_bytes'] / 1e6:.1f} | {r['scrape_s']} | {r['scrape_cpu_s']} | "
                    f"{'yes' if r.get('scrape_complete') else 'NO (cut off)'} |")
        add("")
    rt = results.get("roundtrip", [])
    if rt:
        add("## Round-trip detection delay (real Postfix + Dovecot)")
        add("")
        add("From Dovecot storing the message (its file appearing in the Maildir, by inotify) to "
            "the agent reporting the run (its log line, millisecond resolution):")
        add("")
        add("| mode | messages | p50 ms | p95 ms | max ms |")
        add("|---|---|---|---|---|")
        for r in rt:
            add(f"| {r['mode']} | {len(r['delays_ms'])} | {r.get('p50_ms')} | {r.get('p95_ms')} | "
                f"{r.get('max_ms')} |")
        add("")
    cg = results.get("callgrind", [])
    if cg:
        add("## Instructions per probe (callgrind, mailcanary)")
        add("")
        for r in cg:
            add(f"- {r['dialog']}: {r['per_probe']:,} instructions per probe "
                f"({r['runs']} runs, {r['instructions']:,} instructions"
                + (f"; {r['failures']} runs FAILED, so this count is too low: rerun on a quieter "
                   "machine)" if r.get("failures") else ")"))
        for r in cg:
            add("")
            add(f"Top functions by own cost, {r['dialog']}:")
            add("")
            add("| % | function |")
            add("|---|---|")
            for t in r["top"]:
                add(f"| {t['percent']} | `{t['function']}` |")
        add("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tools", required=True, help="directory with mailcanary-sink and "
                        "mailcanary-http-load (the build's bench/)")
    parser.add_argument("--mailcanary", required=True, help="the mailcanary binary")
    parser.add_argument("--work", default=None, help="scratch directory")
    parser.add_argument("--out", default="bench-results.json")
    parser.add_argument("--only",
                        default="cpu,check,maxrate,accuracy,memory,callgrind,roundtrip")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rates", default="50,500,2000")
    parser.add_argument("--plain-ladder", default="1000,1500,2000,3000,4000")
    parser.add_argument("--starttls-ladder", default="100,200,300,500,750")
    parser.add_argument("--callgrind-seconds", type=float, default=20)
    parser.add_argument("--sizing-window", type=float, default=30)
    parser.add_argument("--roundtrip-seconds", type=float, default=45)
    parser.add_argument("--report-only", action="store_true",
                        help="print the tables of an existing --out file")
    args = parser.parse_args()
    args.rates = [int(x) for x in args.rates.split(",")]
    args.plain_ladder = [int(x) for x in args.plain_ladder.split(",")]
    args.starttls_ladder = [int(x) for x in args.starttls_ladder.split(",")]
    if args.report_only:
        with open(args.out) as f:
            print(report(json.load(f)))
        return
    # Absolute: the agent resolves paths in its configuration against the file's directory.
    args.work = os.path.abspath(args.work or tempfile.mkdtemp(prefix="mailcanary-bench-"))
    args.out = os.path.abspath(args.out)
    args.tools = os.path.abspath(args.tools)
    args.mailcanary = os.path.abspath(args.mailcanary)
    os.makedirs(args.work, exist_ok=True)
    sections = set(args.only.split(","))

    results = {"machine": {
        "nproc": os.cpu_count(),
        "cpu": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                     if line.startswith("model name")), "?"),
        "kernel": os.uname().release,
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }}
    sink = Sink(args.tools, args.work, SINK_PORT, SINK_CONTROL)
    slow_sink = exporter = None
    try:
        if sections & {"cpu", "maxrate", "accuracy", "memory"}:
            exporter = Exporter(args.work, sink.ca)
        if "sizing" in sections:
            section_sizing(args, sink, results)
        if "cpu" in sections:
            section_cpu(args, sink, exporter, results)
        if "check" in sections:
            section_check(args, sink, results)
        if "maxrate" in sections:
            section_maxrate(args, sink, exporter, results)
        if "accuracy" in sections:
            slow_sink = Sink(args.tools, args.work, SLOW_SINK_PORT, SLOW_SINK_CONTROL, delay_ms=50,
                             realtime=True)
            results["machine"]["ground_truth_sink_realtime"] = slow_sink.realtime
            section_accuracy(args, slow_sink, exporter, results)
        if "memory" in sections:
            exporter = section_memory(args, sink, exporter, results)
        if "callgrind" in sections:
            section_callgrind(args, sink, results)
        if "roundtrip" in sections:
            section_roundtrip(args, results)
    finally:
        results["machine"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
        for p in (exporter, slow_sink, sink):
            if p is not None:
                (p.stop if hasattr(p, "stop") else p.process.stop)()
    print(report(results))
    log(f"raw results: {args.out}; logs and configs: {args.work}")


if __name__ == "__main__":
    main()
