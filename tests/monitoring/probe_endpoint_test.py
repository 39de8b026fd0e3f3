#!/usr/bin/env python3
"""/probe driven by a real Prometheus, as blackbox_exporter is (ctest: monitoring_probe_endpoint).

Two real agents serve /probe with the same [[modules]]; one target list (servers of the real test
stack, a server that never speaks) is spread over them by Prometheus with `hashmod`, and each
job uses blackbox's relabelling: the target becomes `__param_target` and `instance`, and
`__address__` is replaced by the agent's. Checked:

 1. every target is scraped exactly once, by the agent of its hashmod half (both halves used);
 2. probe_success is 1 for the healthy servers and 0 for the expired certificate and the silent
    server, with mailcanary's reason; the silent server's run ends within Prometheus's scrape
    timeout (X-Prometheus-Scrape-Timeout-Seconds), so `up` stays 1 for it;
 3. blackbox's series and mailcanary's phases are in Prometheus for every target.

Bounded (DEADLINE_S); every process it starts is stopped on exit.

Usage: probe_endpoint_test.py --agent PATH --prometheus PATH --stack-dir DIR
"""
import argparse
import hashlib
import os
import shutil
import signal
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_test import SilentServer  # noqa: E402
from live_monitoring import (HOST, Failure, Procs, free_port, http_get_json,  # noqa: E402
                             interrupted, log, read_env, wait_for)

DEADLINE_S = 100
SHARDS = 2
MODULE = "smtp_starttls"


def hashmod(value, modulus):
    """Prometheus's hashmod relabelling: the low 8 bytes of the MD5, big-endian, mod modulus."""
    return int.from_bytes(hashlib.md5(value.encode()).digest()[8:], "big") % modulus


def agent_config(stack, port):
    return f"""# written by tests/monitoring/probe_endpoint_test.py
[agent]
listen_addresses = ["{HOST}:{port}"]

[probe_endpoint]
allow = ["127.0.0.0/8", "localhost"]
min_interval_per_host = "500ms"

[[modules]]
name = "{MODULE}"
probes = ["connect"]
tls = "starttls"
timeout = "10s"
helo = "probe.mailcanary.test"
[modules.tls_options]
ca_file = "{stack["MAILSTACK_CA_FILE"]}"
server_name = "{stack["MAILSTACK_TLS_SERVER_NAME"]}"
"""


def prometheus_config(agent_ports, targets):
    jobs = ""
    for shard, agent_port in enumerate(agent_ports):
        listed = ", ".join(f'"{t}"' for t in targets)
        jobs += f"""  - job_name: probe-shard-{shard}
    metrics_path: /probe
    params:
      module: [{MODULE}]
    static_configs:
      - targets: [{listed}]
    relabel_configs:
      - source_labels: [__address__]
        modulus: {SHARDS}
        target_label: __tmp_hash
        action: hashmod
      - source_labels: [__tmp_hash]
        regex: "{shard}"
        action: keep
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: {HOST}:{agent_port}
"""
    return f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
{jobs}"""


def query(prom, expr):
    doc = http_get_json(f"{prom}/api/v1/query?query=" + urllib.parse.quote(expr))
    return {(r["metric"].get("job"), r["metric"].get("instance")): float(r["value"][1])
            for r in doc["data"]["result"]}


def expect(condition, what):
    if not condition:
        raise Failure(what)
    log(f"ok: {what}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--stack-dir", required=True)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGALRM, interrupted)
    signal.alarm(DEADLINE_S)
    stack_env = os.path.join(args.stack_dir, "stack.env")
    if not os.path.exists(stack_env):
        print(f"FAIL: {stack_env} missing: the mailstack fixture is not running", flush=True)
        return 1
    stack = read_env(stack_env)
    tmp = tempfile.mkdtemp(prefix="mailcanary-probe-endpoint-")
    procs = Procs(tmp)
    silent = SilentServer()
    try:
        smtp, submission = stack["MAILSTACK_SMTP_PORT"], stack["MAILSTACK_SUBMISSION_PORT"]
        healthy = [f"{HOST}:{smtp}", f"localhost:{smtp}", f"{HOST}:{submission}",
                   f"localhost:{submission}"]
        expired = f"{HOST}:{stack['MAILSTACK_SMTP_EXPIRED_PORT']}"
        quiet = f"{HOST}:{silent.port}"
        targets = healthy + [expired, quiet]
        halves = [{t for t in targets if hashmod(t, SHARDS) == shard} for shard in range(SHARDS)]
        if not all(halves):
            raise Failure(f"the target list hashes into one half only: {halves}; change it")
        log(f"halves: {halves}")

        agent_ports = [free_port() for _ in range(SHARDS)]
        for shard, port in enumerate(agent_ports):
            cfg = os.path.join(tmp, f"agent-{shard}.toml")
            with open(cfg, "w") as f:
                f.write(agent_config(stack, port))
            procs.start(f"mailcanary-{shard}", [args.agent, f"--config.file={cfg}",
                                                "--log.level=info"])
        prom_port = free_port()
        prom = f"http://{HOST}:{prom_port}"
        prom_cfg = os.path.join(tmp, "prometheus.yml")
        with open(prom_cfg, "w") as f:
            f.write(prometheus_config(agent_ports, targets))
        procs.start("prometheus", [
            args.prometheus, f"--config.file={prom_cfg}",
            f"--storage.tsdb.path={os.path.join(tmp, 'prom-data')}",
            f"--web.listen-address={HOST}:{prom_port}", "--log.level=info"])
        wait_for("Prometheus ready",
                 lambda: urllib.request.urlopen(f"{prom}/-/ready", timeout=2).status == 200, 30)

        expected = {(f"probe-shard-{shard}", t) for shard in range(SHARDS) for t in halves[shard]}

        def all_scraped():
            procs.check_alive()
            return set(query(prom, "probe_success")) == expected
        wait_for("probe_success of every target, each from its own half", all_scraped, 30)
        # 1. the scrapes went to the agent of the job, and only the own half was listed
        for target in http_get_json(f"{prom}/api/v1/targets")["data"]["activeTargets"]:
            shard = int(target["labels"]["job"].rsplit("-", 1)[1])
            url = target["scrapeUrl"]
            expect(url.startswith(f"http://{HOST}:{agent_ports[shard]}/probe?")
                   and target["labels"]["instance"] in halves[shard],
                   f"{target['labels']['instance']} scraped by agent {shard} only ({url})")
        time.sleep(3)  # a few more scrapes, rate limit included
        procs.check_alive()

        # 2. success by target; every scrape worked (no 429 or timeout), the silent one too
        success = query(prom, "probe_success")
        for job, instance in expected:
            want = 0.0 if instance in (expired, quiet) else 1.0
            expect(success[(job, instance)] == want,
                   f"probe_success{{instance={instance!r}}} == {want}")
        ups = query(prom, "min_over_time(up[3s])")
        expect(all(ups.get(key) == 1.0 for key in expected),
               f"up stayed 1 for every target, the silent server's included: {ups}")
        reasons = query(prom, "mailcanary_probe_run_failure_info")
        reason_of = {}
        doc = http_get_json(f"{prom}/api/v1/query?query=" +
                            urllib.parse.quote("mailcanary_probe_run_failure_info"))
        for r in doc["data"]["result"]:
            reason_of[r["metric"]["instance"]] = r["metric"]["reason"]
        expect(reason_of.get(expired) == "tls_cert_expired" and
               reason_of.get(quiet) == "banner_timeout" and len(reasons) == 2,
               f"reasons of the failures: {reason_of}")
        durations = query(prom, 'probe_duration_seconds')
        quiet_key = next(k for k in expected if k[1] == quiet)
        expect(0.3 < durations[quiet_key] < 1.0,
               f"the silent server's run ended by the scrape timeout less the offset "
               f"({durations[quiet_key]:.2f}s)")

        # 3. blackbox's series and mailcanary's phases for the healthy ones
        for series in ("probe_ip_protocol", "probe_ssl_earliest_cert_expiry",
                       "probe_tls_version_info",
                       'mailcanary_probe_run_phase_duration_seconds{phase="banner"}'):
            found = {instance for _, instance in query(prom, series)}
            expect(set(healthy) <= found, f"{series} for every healthy target")
        print("PASS", flush=True)
        return 0
    except (Failure, KeyboardInterrupt) as e:
        print(f"FAIL: {e!r}", flush=True)
        procs.print_logs()
        return 1
    finally:
        procs.stop_all()
        silent.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
