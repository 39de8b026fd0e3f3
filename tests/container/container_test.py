#!/usr/bin/env python3
"""The container image and the sidecar, with podman (scripts/test.sh's container stage).

1. Build: a Debian 12 base from Debian's packages (packaging/container/debian-base.sh: mmdebstrap,
   cached, imported into podman), the image from packaging/container/Containerfile on it, and a
   Postfix image from the same base (tests/container/postfix.Containerfile).
2. The image itself: it runs as its own user, not root; `--version` and `--config.check` of its
   bundled configuration work on a read-only root file system.
3. Beside the test mail stack (tests/stack/mailstack.sh; the host's network, to reach its
   loopback): read-only root, configuration mounted read-only, the SMTP AUTH password a podman
   secret, the message-signing secret written to a named volume (mode 0600, the image's user).
   /metrics shows connect, accept and auth succeeding.
4. The sidecar, as Kubernetes runs one: a pod whose infra container holds the network namespace,
   a real Postfix in one container and mailcanary in another, probing it on 127.0.0.1:25. A real
   Prometheus (Debian's) scrapes the agent on the pod's address: mailcanary_probe_success is 1 for
   connect and accept, and the image's HEALTHCHECK passes. `postfix stop` inside the Postfix
   container: 0 for both, every failure counted as connect_refused, the agent still healthy.
   `postfix start`: 1 again.

Everything it starts is removed on exit, even on failure. Containers are named after this
process, so two runs do not meet. The podman settings of this machine kind (runc, cgroupfs,
ulimits) come from tests/container/containers.conf.

Usage: container_test.py   (env: MAILSTACK_PORT_BASE, the mail stack's, default 21000)
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.join(ROOT, "tests", "container")
BASE_IMAGE = "localhost/mailcanary-base:bookworm"
IMAGE = "localhost/mailcanary:test"
POSTFIX_IMAGE = "localhost/mailcanary-test-postfix:test"
USER_ID = 9725                      # the image's mailcanary user (packaging/container/Containerfile)
STACK_PORT_BASE = os.environ.get("MAILSTACK_PORT_BASE", "21000")
NAME = f"mailcanary-test-{os.getpid()}"
WAIT_S = 60                         # for any one state to be reached
BUILD_TIMEOUT_S = 1800

T0 = time.monotonic()
STARTED = []                        # containers started, whose logs a failure prints


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


class Failure(Exception):
    pass


def run(argv, timeout=120, check=True):
    """Runs argv; its output on failure. Returns the completed process (output as text)."""
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise Failure(f"{' '.join(argv)} exited with {p.returncode}:\n{p.stdout[-3000:]}"
                      f"{p.stderr[-3000:]}")
    return p


def podman(*args, timeout=120, check=True):
    return run(["podman", *args], timeout=timeout, check=check)


def wait_for(what, predicate, timeout=WAIT_S, interval=0.5):
    """Waits until predicate() returns something true, and returns it."""
    end = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
        except (OSError, ValueError, KeyError) as e:
            last = e
        else:
            if last:
                return last
        if time.monotonic() >= end:
            raise Failure(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe_success(metrics_text):
    """{(target, probe): value} of mailcanary_probe_success in an exposition."""
    pattern = r'^mailcanary_probe_success\{probe="([^"]+)",target="([^"]+)"\} (\S+)$'
    return {(m[2], m[1]): float(m[3]) for m in re.finditer(pattern, metrics_text, re.M)}


def read_env(path):
    with open(path) as f:
        return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def print_logs(containers):
    """The end of each container's log, to see why a state was not reached."""
    for container in containers:
        p = podman("logs", "--tail", "20", container, check=False)
        print(f"--- podman logs {container}\n{p.stdout}{p.stderr}", flush=True)


class Cleanup:
    """What to undo on exit, last first; each step runs even if one before it failed."""

    def __init__(self):
        self.steps = []

    def add(self, what, fn):
        self.steps.append((what, fn))

    def run(self):
        for what, fn in reversed(self.steps):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - clean up the rest anyway
                log(f"cleanup: {what}: {e}")


# ------------------------------------------------------------------ 1. build


def build():
    log("base image (packaging/container/debian-base.sh)")
    run(["bash", os.path.join(ROOT, "packaging", "container", "debian-base.sh"), BASE_IMAGE],
        timeout=BUILD_TIMEOUT_S)
    for image, containerfile, context in (
            (IMAGE, os.path.join(ROOT, "packaging", "container", "Containerfile"), ROOT),
            (POSTFIX_IMAGE, os.path.join(HERE, "postfix.Containerfile"), HERE)):
        log(f"podman build {image}")
        podman("build", "--format", "docker", "--build-arg", f"BASE={BASE_IMAGE}",
               "-f", containerfile, "-t", image, context, timeout=BUILD_TIMEOUT_S)
    log("images built")


# ------------------------------------------------------------------ 2. the image itself


def check_image():
    image = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
    if image["Config"].get("User") != "mailcanary":
        raise Failure(f"the image runs as {image['Config'].get('User')!r}, not as mailcanary")
    healthcheck = " ".join((image.get("Healthcheck") or {}).get("Test", []))
    if "/-/healthy" not in healthcheck:
        raise Failure(f"the image's health check does not ask /-/healthy: {healthcheck!r}")
    uid = podman("run", "--rm", "--read-only", "--entrypoint", "id", IMAGE, "-u").stdout.strip()
    if uid != str(USER_ID):
        raise Failure(f"the image's user has uid {uid}, not {USER_ID}")
    version = podman("run", "--rm", "--read-only", IMAGE, "--version").stdout
    if not version.startswith("mailcanary "):
        raise Failure(f"--version printed {version!r}")
    podman("run", "--rm", "--read-only", IMAGE, "--config.check")
    log(f"image: user mailcanary ({uid}), {version.strip()}, bundled configuration valid")


# ------------------------------------------------------------------ 3. beside the mail stack


def stack_config(stack, port):
    host, domain = stack["MAILSTACK_HOST"], stack["MAILSTACK_DOMAIN"]
    tls = f"""[targets.tls_options]
ca_file = "ca.pem"
server_name = "{stack["MAILSTACK_TLS_SERVER_NAME"]}"
"""
    return f"""# written by tests/container/container_test.py
[agent]
listen_addresses = ["127.0.0.1:{port}"]
secret_file = "/var/lib/mailcanary/mailcanary.secret"

[defaults]
interval = "1s"
timeout = "900ms"
helo = "mailcanary.container.test"

[[targets]]
name = "stack-mx"
host = "{host}"
port = {stack["MAILSTACK_SMTP_PORT"]}
probes = ["connect", "accept"]
{tls}[targets.message]
from = "canary@mailcanary.container.test"
to = ["other@{domain}"]

[[targets]]
name = "stack-submission"
host = "{host}"
port = {stack["MAILSTACK_SUBMISSION_PORT"]}
probes = ["connect", "auth"]
{tls}[targets.auth]
username = "{stack["MAILSTACK_USER"]}"
password_file = "/run/secrets/{NAME}-password"
"""


def beside_the_stack(tmp, cleanup):
    stack_dir = os.path.join(tmp, "stack")
    mailstack = os.path.join(ROOT, "tests", "stack", "mailstack.sh")
    env = dict(os.environ, MAILSTACK_PORT_BASE=STACK_PORT_BASE)
    cleanup.add("stop the mail stack",
                lambda: subprocess.run([mailstack, "stop", stack_dir], env=env, timeout=60))
    subprocess.run([mailstack, "start", stack_dir], env=env, check=True, timeout=120,
                   stdout=subprocess.DEVNULL)
    stack = read_env(os.path.join(stack_dir, "stack.env"))

    config_dir = os.path.join(tmp, "stack-config")
    os.mkdir(config_dir)
    port = free_port()
    write(os.path.join(config_dir, "mailcanary.toml"), stack_config(stack, port))
    shutil.copy(stack["MAILSTACK_CA_FILE"], os.path.join(config_dir, "ca.pem"))
    os.chmod(os.path.join(config_dir, "ca.pem"), 0o644)

    volume, secret, container = f"{NAME}-state", f"{NAME}-password", f"{NAME}-stack"
    cleanup.add("remove the password secret", lambda: podman("secret", "rm", secret, check=False))
    podman("secret", "create", secret, stack["MAILSTACK_PASSWORD_FILE"])
    cleanup.add("remove the state volume", lambda: podman("volume", "rm", "-f", volume, check=False))
    podman("volume", "create", volume)
    cleanup.add("remove the agent beside the stack",
                lambda: podman("rm", "-f", "-t", "0", container, check=False))
    STARTED.append(container)
    podman("run", "-d", "--name", container, "--read-only", "--network", "host",
           "--no-healthcheck",  # the image's asks port 9725; this one listens on a free port
           "-v", f"{config_dir}:/etc/mailcanary:ro", "-v", f"{volume}:/var/lib/mailcanary",
           # podman 4.3 mounts a secret before the tmpfs it puts on /run of a read-only root
           "--tmpfs", "/run/secrets", "--secret", f"{secret},uid={USER_ID},mode=0400", IMAGE)
    log(f"agent beside the mail stack (base {STACK_PORT_BASE}) on 127.0.0.1:{port}")

    want = {("stack-mx", "connect"), ("stack-mx", "accept"),
            ("stack-submission", "connect"), ("stack-submission", "auth")}

    def all_succeeded():
        state = podman("inspect", "--format", "{{.State.Status}}", container).stdout.strip()
        if state != "running":
            raise Failure(f"the agent's container is {state}:\n{podman('logs', container).stderr}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            success = probe_success(r.read().decode())
        return success if all(success.get(pair) == 1 for pair in want) else None
    wait_for("connect, accept and auth to succeed against the mail stack", all_succeeded)

    mountpoint = podman("volume", "inspect", "--format", "{{.Mountpoint}}", volume).stdout.strip()
    st = os.stat(os.path.join(mountpoint, "mailcanary.secret"))
    if st.st_uid != USER_ID or st.st_mode & 0o777 != 0o600:
        raise Failure(f"the secret in the volume has uid {st.st_uid}, mode {st.st_mode & 0o777:o}")
    log("beside the stack: connect, accept and auth succeed; secret in the volume, 0600")


# ------------------------------------------------------------------ 4. the sidecar


SIDECAR_CONFIG = """# written by tests/container/container_test.py
[agent]
listen_addresses = [":9725"]
secret_file = "/var/lib/mailcanary/mailcanary.secret"

[defaults]
interval = "1s"
timeout = "900ms"
helo = "mailcanary.pod.test"

# The pod's own mail server, on the loopback it shares with mailcanary.
[[targets]]
name = "pod-mx"
host = "127.0.0.1"
port = 25
tls = "none"
probes = ["connect", "accept"]
[targets.message]
from = "canary@pod.test"
to = ["canary@example.test"]
"""

PROMETHEUS_CONFIG = """global:
  scrape_interval: 1s
scrape_configs:
  - job_name: mailcanary
    scrape_timeout: 900ms
    static_configs:
      - targets: ['{target}']
"""


class Prometheus:
    def __init__(self, tmp, target, cleanup):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = os.path.join(tmp, "prometheus.yml")
        write(config, PROMETHEUS_CONFIG.format(target=target))
        self.log_path = os.path.join(tmp, "prometheus.log")
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                ["prometheus", f"--config.file={config}",
                 f"--storage.tsdb.path={os.path.join(tmp, 'prometheus-data')}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        cleanup.add("stop Prometheus", self.stop)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def query(self, expr, label="probe"):
        """{value of label: value} of an instant query's series."""
        if self.proc.poll() is not None:
            with open(self.log_path, errors="replace") as f:
                raise Failure(f"Prometheus exited:\n{f.read()[-3000:]}")
        url = f"{self.url}/api/v1/query?query={urllib.parse.quote(expr)}"
        with urllib.request.urlopen(url, timeout=5) as r:
            result = json.loads(r.read().decode())["data"]["result"]
        return {s["metric"].get(label, ""): float(s["value"][1]) for s in result}


def healthcheck(container):
    p = podman("healthcheck", "run", container, check=False)
    if p.returncode != 0:
        raise Failure(f"the image's health check fails in {container}: {p.stdout}{p.stderr}")


def the_sidecar(tmp, cleanup):
    config_dir = os.path.join(tmp, "sidecar-config")
    os.mkdir(config_dir)
    write(os.path.join(config_dir, "mailcanary.toml"), SIDECAR_CONFIG)

    pod, postfix, agent = f"{NAME}-pod", f"{NAME}-postfix", f"{NAME}-sidecar"
    cleanup.add("remove the pod", lambda: podman("pod", "rm", "-f", "-t", "0", pod, check=False))
    podman("pod", "create", "--name", pod)
    STARTED.extend([postfix, agent])
    podman("run", "-d", "--pod", pod, "--name", postfix, POSTFIX_IMAGE)
    podman("run", "-d", "--pod", pod, "--name", agent, "--read-only",
           "--health-interval", "disable",  # no systemd here to time it: run by hand below
           "-v", f"{config_dir}:/etc/mailcanary:ro",
           "--tmpfs", "/var/lib/mailcanary:rw,mode=0700,U", IMAGE)  # U: owned by the user
    infra = json.loads(podman("pod", "inspect", pod).stdout)["InfraContainerID"]
    address = json.loads(podman("inspect", infra).stdout)[0]["NetworkSettings"]["IPAddress"]
    if not address:
        raise Failure(f"the pod {pod} has no address")
    log(f"pod {pod} at {address}: Postfix and mailcanary share its loopback")

    prometheus = Prometheus(tmp, f"{address}:9725", cleanup)
    both = {"connect", "accept"}

    def success_is(value):
        return lambda: prometheus.query(
            'mailcanary_probe_success{job="mailcanary",target="pod-mx"} == ' + str(value)).keys() == both
    wait_for("Prometheus to see connect and accept succeed in the pod", success_is(1))
    healthcheck(agent)
    log("sidecar: mailcanary_probe_success 1 for connect and accept, health check passes")

    podman("exec", postfix, "postfix", "stop")
    wait_for("Prometheus to see connect and accept fail once Postfix stopped", success_is(0))
    wait_for("Prometheus to see connect_refused counted for connect and accept",
             lambda: prometheus.query('mailcanary_probe_failures_total'
                                      '{target="pod-mx",reason="connect_refused"} > 0').keys() == both)
    # A session in flight when Postfix stopped may be cut ("network": reset by peer), at most one
    # per probe; every other failure must be the refusal.
    others = prometheus.query(
        'sum by (reason) (mailcanary_probe_failures_total'
        '{target="pod-mx",reason!="connect_refused",reason!="network"})', label="reason")
    cut_more_than_once = prometheus.query(
        'mailcanary_probe_failures_total{target="pod-mx",reason="network"} > 1')
    if others or cut_more_than_once:
        raise Failure(f"failures other than connect_refused: {others}; "
                      f"cut sessions per probe: {cut_more_than_once}")
    healthcheck(agent)
    log("Postfix stopped: success 0 for connect and accept, reason connect_refused, still healthy")

    podman("exec", postfix, "postfix", "start")
    wait_for("Prometheus to see connect and accept succeed again", success_is(1))
    log("Postfix started again: success 1")


def _interrupted(signum, frame):
    raise Failure(f"interrupted by signal {signum}")


def main():
    os.environ["CONTAINERS_CONF"] = os.path.join(HERE, "containers.conf")
    signal.signal(signal.SIGTERM, _interrupted)
    cleanup = Cleanup()
    tmp = tempfile.mkdtemp(prefix="mailcanary-container-test-")
    # Bind-mounted into containers whose user is not root.
    os.chmod(tmp, 0o755)
    cleanup.add("remove the temporary directory", lambda: shutil.rmtree(tmp))
    try:
        build()
        check_image()
        beside_the_stack(tmp, cleanup)
        the_sidecar(tmp, cleanup)
    except (Failure, subprocess.SubprocessError, OSError) as e:
        print(f"FAIL: {e}", flush=True)
        print_logs(STARTED)
        return 1
    finally:
        cleanup.run()
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
