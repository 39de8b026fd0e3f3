"""The on-call path with real processes, shared by the tests that run it: the end-to-end
monitoring test (e2e_test.py), the protected-endpoint test (web_config_test.py) and the soak
(scripts/soak.sh, tests/soak/soak.py).

- processes started so that they die with the caller and are stopped on exit (Procs);
- a webhook receiver for what Alertmanager sends: PagerDuty Events API v2 requests and chat
  messages (Receiver);
- config/prometheus.yml, config/rules/ and config/alertmanager.yml, rewritten for a test: each
  difference made by replacing one exact line, which must be found exactly once, and the rules'
  durations divided by a factor (scale_rules);
- reading alerts back from Prometheus.

python3 standard library only.
"""
import ctypes
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import monitoring_lib as lib

HOST = "127.0.0.1"
T0 = time.monotonic()
_deadline = [None]   # monotonic time that bounds every wait_for, when set


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


class Failure(Exception):
    pass


def set_deadline(seconds):
    """Bound every later wait_for to `seconds` from the start of the process."""
    _deadline[0] = T0 + seconds


def wait_for(what, predicate, timeout, interval=0.5):
    end = time.monotonic() + timeout
    if _deadline[0] is not None:
        end = min(end, max(time.monotonic(), _deadline[0]))
    last = None
    while True:
        try:
            last = predicate()
        except Exception as e:  # noqa: BLE001 - report the last error on timeout
            last = e
            if not isinstance(e, (OSError, urllib.error.URLError, ValueError, KeyError)):
                raise
        else:
            if last:
                return last
        if time.monotonic() >= end:
            raise Failure(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def http_get_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode())


def replace_once(text, old, new, what):
    n = text.count(old)
    if n != 1:
        raise Failure(f"{what}: expected exactly one {old!r}, found {n}: the shipped file changed, "
                      f"update tests/monitoring/live_monitoring.py")
    return text.replace(old, new)


def interrupted(signum, frame):
    """A SIGTERM handler (e.g. ctest giving up) that still runs the caller's cleanup."""
    raise KeyboardInterrupt(f"signal {signum}")


# ------------------------------------------------------------------ processes

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _child_setup():
    # Die with this test even if it is killed with SIGKILL, and keep signals to ourselves.
    os.setsid()
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Procs:
    def __init__(self, logdir):
        self.logdir = logdir
        self.procs = []

    def start(self, name, argv, env=None):
        out = open(os.path.join(self.logdir, f"{name}.log"), "wb")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             preexec_fn=_child_setup, env=env, close_fds=True)
        out.close()
        self.procs.append((name, p))
        log(f"started {name} (pid {p.pid}): {' '.join(argv)}")
        return p

    def check_alive(self):
        for name, p in self.procs:
            if p.poll() is not None:
                raise Failure(f"{name} exited with {p.returncode}; log:\n{self.tail(name)}")

    def print_logs(self):
        """The end of every process's log, for a failure's report."""
        for name, _ in self.procs:
            print(f"--- {name} log (tail) ---\n{self.tail(name)}", flush=True)

    def tail(self, name, n=30):
        try:
            with open(os.path.join(self.logdir, f"{name}.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop_all(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        end = time.monotonic() + 5
        for name, p in reversed(self.procs):
            try:
                p.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop on SIGTERM, killing it")
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)


# ------------------------------------------------------------------ webhook receiver


class Receiver:
    """Records what Alertmanager posts: PagerDuty Events API v2 requests on /pagerduty, and
    chat (Slack-compatible) messages on /chat."""

    def __init__(self):
        self.events = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                try:
                    doc = json.loads(body.decode())
                except ValueError:
                    doc = {"unparsed": body.decode(errors="replace")}
                with receiver.lock:
                    receiver.events.append((self.path, doc))
                reply = json.dumps({"status": "success", "message": "Event processed",
                                    "dedup_key": doc.get("dedup_key", "")}).encode()
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def pager_events(self):
        with self.lock:
            return [doc for path, doc in self.events if path == "/pagerduty"]

    def chat_events(self):
        with self.lock:
            return [doc for path, doc in self.events if path == "/chat"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------ configuration


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    return env



#####
def check_agent_config(agent, path):
    r = subprocess.run([agent, f"--config.file={path}", "--config.check"], capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        raise Failure("the agent rejects the test's configuration (a renamed key?):\n"
                      + (r.stdout + r.stderr).strip())


_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _divided(number, unit, divisor):
    return f"{max(1, int(number) * _UNIT_S[unit] // divisor)}s"


def scale_rules(text, divisor, windows=False):
    """Every `for:` (and `keep_firing_for:`) divided by `divisor`, in seconds (by 20, 3m becomes
    9s and 15m 45s), so the alerts keep their order relative to each other. With `windows`, the
    range and offset durations of the expressions too (`[15m]`, `offset 15m`), so that a count
    over a window ends as much sooner. Returns the text, how many `for:` and how many windows
    were divided."""
    out, fors = re.subn(r"^(\s+(?:keep_firing_)?for: )(\d+)([smhd])\s*$",
                        lambda m: m.group(1) + _divided(m.group(2), m.group(3), divisor),
                        text, flags=re.M)
    left = re.findall(r"^\s+(?:keep_firing_)?for: .*$", out, flags=re.M)
    if fors != len(left):
        raise Failure(f"could not shorten every for: duration: {left}")
    spans = 0
    if windows:
        out, ranges = re.subn(r"\[(\d+)([smhd])\]",
                              lambda m: f"[{_divided(m.group(1), m.group(2), divisor)}]", out)
        out, offsets = re.subn(r"\boffset (\d+)([smhd])\b",
                               lambda m: f"offset {_divided(m.group(1), m.group(2), divisor)}", out)
        spans = ranges + offsets
    return out, fors, spans


def prometheus_config(tmp, prom_port, am_port, agent_port, divisor, windows=False):
    """config/prometheus.yml with 1s scrapes and evaluations, this caller's ports, and the rules
    of config/rules/ divided by `divisor` (scale_rules) written beside it. Returns its path."""
    with open(os.path.join(lib.SOURCE_DIR, "config", "prometheus.yml")) as f:
        text = f.read()
    what = "config/prometheus.yml"
    text = replace_once(text, "  scrape_interval: 15s\n", "  scrape_interval: 1s\n", what)
    text = replace_once(text, "  evaluation_interval: 30s\n", "  evaluation_interval: 1s\n", what)
    text = replace_once(text, "- targets: ['127.0.0.1:9093']", f"- targets: ['{HOST}:{am_port}']", what)
    text = replace_once(text, "- targets: ['127.0.0.1:9725']", f"- targets: ['{HOST}:{agent_port}']", what)
    text = replace_once(text, "    scrape_timeout: 10s\n", "    scrape_timeout: 900ms\n", what)
    os.makedirs(os.path.join(tmp, "rules"), exist_ok=True)
    fors = spans = 0
    for name in ("mailcanary-recording.yml", "mailcanary-alerts.yml"):
        with open(os.path.join(lib.SOURCE_DIR, "config", "rules", name)) as f:
            rules, n_for, n_span = scale_rules(f.read(), divisor, windows)
        fors += n_for
        spans += n_span
        with open(os.path.join(tmp, "rules", name), "w") as f:
            f.write(rules)
    path = os.path.join(tmp, "prometheus.yml")
    with open(path, "w") as f:
        f.write(text)
    log(f"prometheus.yml from config/, {fors} `for:` durations"
        + (f" and {spans} range and offset windows" if windows else "")
        + f" of config/rules divided by {divisor}")
    return path


def alertmanager_config(tmp, receiver_port, pager_key):
    """config/alertmanager.yml with its PagerDuty and chat receivers pointing at `receiver_port`
    (Receiver), group_wait 1s and group_interval 2s. Returns its path."""
    with open(os.path.join(lib.SOURCE_DIR, "config", "alertmanager.yml")) as f:
        text = f.read()
    what = "config/alertmanager.yml"
    key_file = os.path.join(tmp, "pagerduty-routing-key")
    with open(key_file, "w") as f:
        f.write(pager_key + "\n")
    chat_file = os.path.join(tmp, "chat-webhook-url")
    with open(chat_file, "w") as f:
        f.write(f"http://{HOST}:{receiver_port}/chat\n")
    text = replace_once(text, "pagerduty_url: https://events.pagerduty.com/v2/enqueue",
                        f"pagerduty_url: http://{HOST}:{receiver_port}/pagerduty", what)
    text = replace_once(text, "routing_key_file: /etc/alertmanager/secrets/pagerduty-routing-key",
                        f"routing_key_file: {key_file}", what)
    text = replace_once(text, "api_url_file: /etc/alertmanager/secrets/chat-webhook-url",
                        f"api_url_file: {chat_file}", what)
    text = replace_once(text, "  group_wait: 30s\n", "  group_wait: 1s\n", what)
    text = replace_once(text, "  group_interval: 5m\n", "  group_interval: 2s\n", what)
    path = os.path.join(tmp, "alertmanager.yml")
    with open(path, "w") as f:
        f.write(text)
    return path


def prom_alerts(prom):
    return http_get_json(f"{prom}/api/v1/alerts")["data"]["alerts"]


def prom_alerts_for(prom, target):
    """Alerts of a target in Prometheus, pending or firing."""
    return [a for a in prom_alerts(prom) if a["labels"].get("target") == target]


def firing(prom, alertname, target):
    return [a for a in prom_alerts(prom) if a["labels"].get("alertname") == alertname
            and a["labels"].get("target") == target and a["state"] == "firing"]


def smtp_banner(host, port):
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            s.settimeout(2)
            return s.recv(512).startswith(b"220")
    except OSError:
        return False




def start_watched_agent(procs, args, tmp, agent_cfg, am_cfg, prom_cfg, am_port, prom_port):
    """Alertmanager, Prometheus and the agent, as the live tests run them (args.alertmanager,
    args.prometheus, args.agent); returns once Alertmanager and Prometheus are ready."""
    procs.start("alertmanager", [
        args.alertmanager, f"--config.file={am_cfg}",
        f"--storage.path={os.path.join(tmp, 'am-data')}",
        f"--web.listen-address={HOST}:{am_port}", "--cluster.listen-address=",
        "--log.level=info"])
    procs.start("prometheus", [
        args.prometheus, f"--config.file={prom_cfg}",
        f"--storage.tsdb.path={os.path.join(tmp, 'prom-data')}",
        f"--web.listen-address={HOST}:{prom_port}", "--log.level=info"])
    procs.start("mailcanary", [args.agent, f"--config.file={agent_cfg}", "--log.level=info"])
    for name, port in (("Alertmanager", am_port), ("Prometheus", prom_port)):
        url = f"http://{HOST}:{port}/-/ready"
        wait_for(f"{name} ready",
                 lambda url=url: urllib.request.urlopen(url, timeout=2).status == 200, 30)
