#!/usr/bin/env python3
"""Protected endpoints with real clients (ctest: monitoring_web_config).

The real agent serves with --web.config.file (exporter-toolkit's format); certificates are made
here with the openssl command, bcrypt hashes with libcrypt (python's crypt module). Steps:

 1. TLS with basic authentication: a real Prometheus scrapes it with the right password
    (`up == 1`) and, as a second job, with a wrong one (`up == 0`, the scrape error says 401);
    curl over plain HTTP to the TLS port gets no HTTP answer; without credentials, 401 with
    WWW-Authenticate; GET /-/reload is 405 and POST /-/reload 200 (with credentials);
 2. TLS requiring a client certificate (RequireAndVerifyClientCert): curl with the client
    certificate gets 200, without one the handshake fails, and with a certificate from another
    CA too; a Prometheus job with the client certificate scrapes it (`up == 1`);
 3. a web configuration file with errors: the agent does not start, and says where they are.

Bounded (DEADLINE_S); every process it starts is stopped on exit. No mail stack is needed: the
agent's one target is a closed port, probed rarely.

Usage: web_config_test.py --agent PATH --prometheus PATH
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from live_monitoring import (HOST, Failure, Procs, free_port, http_get_json,  # noqa: E402
                             interrupted, log, wait_for)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # noqa: E402  - libcrypt's bcrypt, as the agent verifies it

DEADLINE_S = 90
PASSWORD = "correct horse battery staple"


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, **kwargs)


def openssl(*args):
    result = run(["openssl", *args])
    if result.returncode != 0:
        raise Failure(f"openssl {' '.join(args)}: {result.stderr}")


def make_pki(tmp):
    """A CA with a server certificate for 127.0.0.1 and a client certificate, and a client
    certificate from another CA."""
    def key(name):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", os.path.join(tmp, name + ".key"))

    def ca(name):
        key(name)
        openssl("req", "-x509", "-new", "-key", os.path.join(tmp, name + ".key"), "-days", "2",
                "-subj", f"/CN={name}", "-out", os.path.join(tmp, name + ".crt"))

    def leaf(name, issuer, ext):
        key(name)
        ext_file = os.path.join(tmp, name + ".ext")
        with open(ext_file, "w") as f:
            f.write(ext)
        openssl("req", "-new", "-key", os.path.join(tmp, name + ".key"), "-subj", f"/CN={name}",
                "-out", os.path.join(tmp, name + ".csr"))
        openssl("x509", "-req", "-in", os.path.join(tmp, name + ".csr"), "-days", "2",
                "-CA", os.path.join(tmp, issuer + ".crt"),
                "-CAkey", os.path.join(tmp, issuer + ".key"), "-CAcreateserial",
                "-extfile", ext_file, "-out", os.path.join(tmp, name + ".crt"))

    ca("ca")
    ca("other-ca")
    leaf("server", "ca", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    leaf("client", "ca", "extendedKeyUsage=clientAuth\n")
    leaf("stranger", "other-ca", "extendedKeyUsage=clientAuth\n")


def curl(tmp, url, *args):
    """(exit code, HTTP status or 0, headers and body)"""
    result = run(["curl", "-sS", "--max-time", "5", "-o", "-", "-D", "-",
                  "-w", "\n%{http_code}", "--cacert", os.path.join(tmp, "ca.crt"), *args, url])
    lines = result.stdout.rsplit("\n", 1)
    status = int(lines[-1]) if lines[-1].isdigit() else 0
    return result.returncode, status, lines[0] + result.stderr


def start_agent(procs, agent, tmp, port, web_yml, name):
    cfg = os.path.join(tmp, "mailcanary.toml")
    with open(cfg, "w") as f:
        f.write(f"""# written by tests/monitoring/web_config_test.py
[agent]
listen_addresses = ["{HOST}:{port}"]

[[targets]]
name = "closed-port"
host = "{HOST}"
port = {free_port()}
tls = "none"
interval = "1h"
""")
    procs.start(name, [agent, f"--config.file={cfg}", f"--web.config.file={web_yml}"])
    wait_for(f"{name} listening", lambda: "serving metrics" in procs.tail(name), 10, 0.1)


def prometheus_config(tmp, prom_port, agent_port, jobs):
    scrape = ""
    for job, extra in jobs.items():
        scrape += f"""  - job_name: {job}
    scheme: https
    static_configs:
      - targets: ["{HOST}:{agent_port}"]
    tls_config:
      ca_file: {os.path.join(tmp, "ca.crt")}
{extra}"""
    path = os.path.join(tmp, f"prometheus-{agent_port}.yml")
    with open(path, "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
{scrape}""")
    return path


def wait_for_up(prom, job, value):
    def check():
        doc = http_get_json(f"{prom}/api/v1/query?query=" + urllib.parse.quote(f'up{{job="{job}"}}'))
        result = doc["data"]["result"]
        return result and result[0]["value"][1] == value
    wait_for(f'up{{job="{job}"}} == {value}', check, 30)


def scrape_error(prom, job):
    for target in http_get_json(f"{prom}/api/v1/targets")["data"]["activeTargets"]:
        if target["labels"]["job"] == job:
            return target.get("lastError", "")
    return ""


def expect(condition, what):
    if not condition:
        raise Failure(what)
    log(f"ok: {what}")


def protected_by_password(args, tmp, procs):
    hashed = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))
    web_yml = os.path.join(tmp, "web-password.yml")
    with open(web_yml, "w") as f:
        f.write(f"""tls_server_config:
  cert_file: server.crt
  key_file: server.key
basic_auth_users:
  prometheus: {hashed}
""")
    agent_port, prom_port = free_port(), free_port()
    start_agent(procs, args.agent, tmp, agent_port, web_yml, "mailcanary-password")
    url = f"https://{HOST}:{agent_port}"
    prom_cfg = prometheus_config(tmp, prom_port, agent_port, {
        "right-password": f"    basic_auth:\n      username: prometheus\n      password: {PASSWORD}\n",
        "wrong-password": "    basic_auth:\n      username: prometheus\n      password: guess\n"})
    procs.start("prometheus-password", [
        args.prometheus, f"--config.file={prom_cfg}",
        f"--storage.tsdb.path={os.path.join(tmp, 'prom-data-password')}",
        f"--web.listen-address={HOST}:{prom_port}"])
    prom = f"http://{HOST}:{prom_port}"

    code, status, text = curl(tmp, f"http://{HOST}:{agent_port}/metrics")
    expect(code != 0 and status == 0, f"plain HTTP to the TLS port gets no HTTP answer "
                                      f"(curl exit {code}, status {status})")
    code, status, text = curl(tmp, f"{url}/metrics")
    expect(status == 401 and 'www-authenticate: basic realm="mailcanary"' in text.lower(),
           f"no credentials: 401 with WWW-Authenticate (got {status})")
    for path in ("/", "/results", "/-/healthy", "/-/ready"):
        code, status, _ = curl(tmp, f"{url}{path}")
        expect(status == 401, f"{path} without credentials: 401 (got {status})")
    user = ["-u", f"prometheus:{PASSWORD}"]
    code, status, text = curl(tmp, f"{url}/metrics", *user)
    expect(status == 200 and "mailcanary_targets" in text, f"right password: 200 (got {status})")
    code, status, text = curl(tmp, f"{url}/metrics", "-u", "prometheus:guess")
    expect(status == 401, f"wrong password: 401 (got {status})")
    code, status, text = curl(tmp, f"{url}/-/reload", *user)
    expect(status == 405, f"GET /-/reload: 405 (got {status})")
    code, status, text = curl(tmp, f"{url}/-/reload", "-X", "POST", "-u", "prometheus:guess")
    expect(status == 401, f"POST /-/reload with a wrong password: 401 (got {status})")
    code, status, text = curl(tmp, f"{url}/-/reload", "-X", "POST", *user)
    expect(status == 200 and "configuration reloaded" in text, f"POST /-/reload: 200 (got {status})")

    wait_for_up(prom, "right-password", "1")
    log("ok: Prometheus scrapes over TLS with the right password: up == 1")
    wait_for_up(prom, "wrong-password", "0")
    error = scrape_error(prom, "wrong-password")
    expect("401" in error, f"with a wrong password: up == 0, scrape error {error!r}")


def protected_by_client_certificate(args, tmp, procs):
    web_yml = os.path.join(tmp, "web-client-cert.yml")
    with open(web_yml, "w") as f:
        f.write("""tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  min_version: TLS12
""")
    agent_port, prom_port = free_port(), free_port()
    start_agent(procs, args.agent, tmp, agent_port, web_yml, "mailcanary-client-cert")
    url = f"https://{HOST}:{agent_port}/metrics"
    client = ["--cert", os.path.join(tmp, "client.crt"), "--key", os.path.join(tmp, "client.key")]
    code, status, _ = curl(tmp, url, *client)
    expect(status == 200, f"with the client certificate: 200 (got {status})")
    code, status, text = curl(tmp, url)
    expect(code != 0 and status == 0,
           f"without a client certificate: no answer (curl exit {code}: {text.strip()[-80:]})")
    code, status, text = curl(tmp, url, "--cert", os.path.join(tmp, "stranger.crt"),
                              "--key", os.path.join(tmp, "stranger.key"))
    expect(code != 0 and status == 0,
           f"a certificate from another CA: no answer (curl exit {code})")

    prom_cfg = prometheus_config(tmp, prom_port, agent_port, {
        "client-cert": f"      cert_file: {os.path.join(tmp, 'client.crt')}\n"
                       f"      key_file: {os.path.join(tmp, 'client.key')}\n"})
    procs.start("prometheus-client-cert", [
        args.prometheus, f"--config.file={prom_cfg}",
        f"--storage.tsdb.path={os.path.join(tmp, 'prom-data-client-cert')}",
        f"--web.listen-address={HOST}:{prom_port}"])
    wait_for_up(f"http://{HOST}:{prom_port}", "client-cert", "1")
    log("ok: Prometheus with the client certificate: up == 1")


def refused_with_errors(args, tmp):
    web_yml = os.path.join(tmp, "web-broken.yml")
    with open(web_yml, "w") as f:
        f.write("tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n"
                "basic_auth_users:\n  prometheus: not-a-hash\n")
    cfg = os.path.join(tmp, "mailcanary.toml")
    result = run([args.agent, f"--config.file={cfg}", f"--web.config.file={web_yml}"])
    expect(result.returncode == 1 and f"{web_yml}:5:15: basic_auth_users.prometheus:" in result.stderr,
           f"a web config with errors: exit 1, the error's place given ({result.stderr.strip()!r})")
    result = run([args.agent, f"--config.file={cfg}", f"--web.config.file={web_yml}",
                  "--config.check"])
    expect(result.returncode == 1 and f"{web_yml}:5:15:" in result.stderr,
           "--config.check reports it too")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--prometheus", required=True)
    args = ap.parse_args()
    # SIGTERM (ctest giving up) and the deadline must still run the cleanup below.
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGALRM, interrupted)
    signal.alarm(DEADLINE_S)
    tmp = tempfile.mkdtemp(prefix="mailcanary-web-config-")
    procs = Procs(tmp)
    try:
        make_pki(tmp)
        protected_by_password(args, tmp, procs)
        protected_by_client_certificate(args, tmp, procs)
        refused_with_errors(args, tmp)
        print("PASS", flush=True)
        return 0
    except (Failure, KeyboardInterrupt) as e:
        print(f"FAIL: {e!r}", flush=True)
        procs.print_logs()
        return 1
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
