// The status page in a real browser (Debian's chromium, driven by puppeteer-core): an agent probes
// the real test mail stack with healthy and failing targets, and the page must show each row's
// state and reason, failing rows first, filter them, open a transcript from the keyboard, refresh
// without reloading, ask no other origin, and fit a phone's width. Screenshots (desktop, phone,
// transcript) go to MAILCANARY_BROWSER_ARTIFACTS for a person to look at.
//
// Environment (tests/browser/CMakeLists.txt): MAILCANARY_BINARY, MAILCANARY_STACK_DIR,
// MAILCANARY_BROWSER_ARTIFACTS, CHROMIUM (the browser's path).
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import puppeteer from "puppeteer-core";

const required = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);  // a missing part fails, never skips
  return value;
};
const binary = required("MAILCANARY_BINARY");
const stackDir = required("MAILCANARY_STACK_DIR");
const artifacts = required("MAILCANARY_BROWSER_ARTIFACTS");
const chromium = required("CHROMIUM");

const stack = Object.fromEntries(
  fs.readFileSync(path.join(stackDir, "stack.env"), "utf8").split("\n")
    .filter((line) => line.includes("=") && !line.startsWith("#"))
    .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailcanary-browser-"));
const wrongPasswordFile = path.join(dir, "wrong.password");
fs.writeFileSync(wrongPasswordFile, "not-the-password\n", { mode: 0o600 });
const rightPassword = fs.readFileSync(stack.MAILSTACK_PASSWORD_FILE, "utf8").trim();

// A port nothing listens on: bound, closed again, so a connect is refused.
const closedPort = await new Promise((resolve) => {
  import("node:net").then(({ createServer }) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
});

// Each accept run leaves a message in the stack's probe mailbox: this sender's are expunged after.
const sender = "browser-test@mailcanary.test";
const target = (name, port, tls, extra = "") =>
  `[[targets]]\nname = "${name}"\nhost = "${stack.MAILSTACK_HOST}"\nport = ${port}\n` +
  `tls = "${tls}"\n${extra}`;
const tlsOptions = `[targets.tls_options]\nca_file = "${stack.MAILSTACK_CA_FILE}"\n` +
  `server_name = "${stack.MAILSTACK_TLS_SERVER_NAME}"\n`;
const auth = (passwordFile) =>
  `[targets.auth]\nusername = "${stack.MAILSTACK_USER}"\npassword_file = "${passwordFile}"\n`;
const config =
  `[defaults]\ninterval = "2s"\ntimeout = "1500ms"\nhelo = "probe.mailcanary.test"\n\n` +
  target("mx", stack.MAILSTACK_SMTP_PORT, "starttls", `probes = ["connect", "accept"]\n`) +
  tlsOptions +
  `[targets.message]\nfrom = "${sender}"\nto = ["${stack.MAILSTACK_USER}"]\n\n` +
  target("submission", stack.MAILSTACK_SUBMISSION_PORT, "starttls", `probes = ["auth"]\n`) +
  tlsOptions + auth(stack.MAILSTACK_PASSWORD_FILE) + "\n" +
  target("wrong-password", stack.MAILSTACK_SUBMISSION_PORT, "starttls", `probes = ["auth"]\n`) +
  tlsOptions + auth(wrongPasswordFile) + "\n" +
  target("nothing-listens", closedPort, "none") + "\n" +
  // Dual-stack on the IPv6 address alone: the v4 instance has no address (dns), v6 works.
  `[[targets]]\nname = "dual"\nhost = "${stack.MAILSTACK_HOST6}"\n` +
  `port = ${stack.MAILSTACK_SMTP_PORT}\ntls = "none"\nip = "both"\n`;
fs.writeFileSync(path.join(dir, "agent.toml"), config);

const expected = {
  "mx/connect": { state: "ok", reason: null },
  "mx/accept": { state: "ok", reason: null },
  "submission/auth": { state: "ok", reason: null },
  "wrong-password/auth": { state: "failing", reason: "auth_rejected" },
  "nothing-listens/connect": { state: "failing", reason: "connect_refused" },
  "dual [ip_family=v4]/connect": { state: "failing", reason: "dns" },
  "dual [ip_family=v6]/connect": { state: "ok", reason: null },
};

let agent;
let base;
let browser;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

before(async () => {
  const log = fs.openSync(path.join(dir, "agent.log"), "w");
  agent = spawn(binary, [`--config.file=${path.join(dir, "agent.toml")}`,
                         "--web.listen-address=127.0.0.1:0"], { stdio: ["ignore", "ignore", log] });
  const deadline = Date.now() + 10000;
  while (!base && agent.exitCode === null && Date.now() < deadline) {
    const found = /address=127\.0\.0\.1:(\d+)/.exec(fs.readFileSync(path.join(dir, "agent.log"), "utf8"));
    if (found) base = `http://127.0.0.1:${found[1]}`;
    else await sleep(50);
  }
  assert.ok(base, "the agent did not start:\n" + fs.readFileSync(path.join(dir, "agent.log"), "utf8"));
  // Every row has run once (the first runs are spread over the 2 s interval).
  let status;
  while (Date.now() < deadline + 10000) {
    status = await (await fetch(`${base}/api/v1/status`)).json();
    if (status.probes.every((row) => row.state !== "pending")) break;
    await sleep(200);
  }
  assert.ok(status.probes.every((row) => row.state !== "pending"), JSON.stringify(status));
  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    // As root (CI, this sandbox) Chromium refuses to start with its sandbox.
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run"],
  });
  fs.mkdirSync(artifacts, { recursive: true });
});

after(async () => {
  await browser?.close();
  if (agent?.exitCode === null) {
    agent.kill("SIGTERM");
    await new Promise((resolve) => agent.once("exit", resolve));
  }
  execFileSync("doveadm", ["-c", stack.MAILSTACK_DOVECOT_CONFIG, "expunge", "-u",
                           stack.MAILSTACK_USER, "mailbox", "INBOX", "from", sender]);
});

// The rows as a person sees them: key, state badge, reason, in page order.
const rowsOf = (page) => page.$$eval("#rows tr", (rows) => rows.map((row) => ({
  key: row.dataset.key.replace("\u0000", "/"),
  state: row.querySelector(".state").textContent,
  reason: row.querySelector(".reason")?.textContent ?? null,
  text: row.innerText,
})));

test("the API answers bad parameters with a reason", async () => {
  const cases = [
    ["/api/v1/results", 400, /"target" is required/],
    ["/api/v1/results?target=mx&color=red", 400, /unknown parameter "color"/],
    ["/api/v1/results?target=", 400, /is empty/],
    ["/api/v1/results?target=nope", 404, /no target "nope"/],
    ["/api/v1/results?target=mx&probe=imap", 404, /has no probe "imap"/],
    ["/api/v1/status?x=1", 400, /takes none/],
  ];
  for (const [url, status, reason] of cases) {
    const response = await fetch(base + url);
    assert.equal(response.status, status, url);
    assert.match((await response.json()).error, reason, url);
  }
});

test("desktop: rows, states, reasons, failing first, filter, transcript, refresh", async () => {
  const page = await browser.newPage();
  const origins = new Set();
  page.on("request", (request) => origins.add(new URL(request.url()).origin));
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => { if (message.type() === "error") errors.push(message.text()); });
  await page.setViewport({ width: 1366, height: 860 });
  await page.goto(base + "/", { waitUntil: "load" });
  await page.waitForSelector("#rows tr");

  const rows = await rowsOf(page);
  assert.deepEqual(rows.map((row) => row.key).sort(), Object.keys(expected).sort());
  for (const row of rows) {
    const want = expected[row.key];
    assert.equal(row.state, want.state.toUpperCase(), row.key + ": " + row.text);
    assert.equal(row.reason, want.reason, row.key + ": " + row.text);
  }
  // Failing rows come first.
  const firstOk = rows.findIndex((row) => row.state === "OK");
  assert.ok(rows.slice(firstOk).every((row) => row.state === "OK"), rows.map((r) => r.key).join());
  // The wrong password's row shows the server's refusal; the accept row its queue id; every run
  // that ran has a waterfall and a sparkline.
  const wrong = rows.find((row) => row.key === "wrong-password/auth");
  assert.match(wrong.text, /535/);
  assert.match(rows.find((row) => row.key === "mx/accept").text, /queued as [0-9A-Za-z]+/);
  assert.equal(await page.$$eval("#rows .waterfall", (bars) => bars.length), rows.length);
  assert.equal(await page.$$eval("#rows svg.spark", (charts) => charts.length), rows.length);
  assert.match(await page.$eval("#summary", (node) => node.textContent), /3 failing · 4 ok/);
  assert.match(await page.title(), /^\(3 failing\) mailcanary$/);
  await page.screenshot({ path: path.join(artifacts, "status-desktop.png"), fullPage: true });

  // The filter: words match target, probe, host or reason; the buttons pick a state.
  await page.type("#filter", "refused");
  assert.deepEqual((await rowsOf(page)).map((row) => row.key), ["nothing-listens/connect"]);
  await page.click("#filter", { clickCount: 3 });
  await page.keyboard.press("Backspace");
  await page.click('button[data-show="failing"]');
  assert.deepEqual((await rowsOf(page)).map((row) => row.state), ["FAILING", "FAILING", "FAILING"]);
  assert.equal(await page.$eval('button[data-show="failing"]', (b) => b.getAttribute("aria-pressed")), "true");
  await page.click('button[data-show="all"]');
  assert.equal((await rowsOf(page)).length, rows.length);

  // The transcript, from the keyboard: tab to the wrong password's button, Enter, read, Escape.
  const button = 'button.show-transcript[aria-label="Transcript of wrong-password / auth"]';
  await page.focus("#filter");
  let focused = "";
  for (let presses = 0; presses < 40 && !focused.includes("wrong-password"); presses++) {
    await page.keyboard.press("Tab");
    focused = await page.evaluate(() => document.activeElement.getAttribute("aria-label") || "");
  }
  assert.equal(focused, "Transcript of wrong-password / auth");
  // The focused element has a visible outline.
  assert.notEqual(await page.$eval(button, (b) => getComputedStyle(b).outlineStyle), "none");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelector("#transcript-body pre"));
  const transcript = await page.$eval("#transcript-body", (node) => node.innerText);
  assert.ok(await page.$eval("#transcript", (dialog) => dialog.open));
  assert.match(transcript, /C: AUTH PLAIN <redacted>/);
  assert.match(transcript, /S: 535 5\.7\.8/);
  assert.ok(!transcript.includes(rightPassword) && !transcript.includes("not-the-password"));
  await page.screenshot({ path: path.join(artifacts, "status-transcript.png") });
  await page.keyboard.press("Escape");
  assert.ok(!(await page.$eval("#transcript", (dialog) => dialog.open)));

  // A family's transcript is that family's: the v6 row's button shows the connection to [::1].
  await page.click('button.show-transcript[aria-label="Transcript of dual [ip_family=v6] / connect"]');
  await page.waitForFunction(() => document.querySelector("#transcript-body pre"));
  const v6 = await page.$eval("#transcript-body", (node) => node.innerText);
  assert.match(v6, /connected to \[::1\]/);
  assert.match(await page.$eval("#transcript-title", (node) => node.textContent),
               /Transcript: dual \[ip_family=v6\] \/ connect/);
  await page.keyboard.press("Escape");

  // It refreshes itself without reloading: the page's own state survives a newer answer.
  await page.evaluate(() => { window.notReloaded = true; });
  const first = await page.$eval("#updated", (node) => node.textContent);
  await page.waitForFunction((text) => document.querySelector("#updated").textContent !== text,
                             { timeout: 12000 }, first);
  assert.equal(await page.evaluate(() => window.notReloaded), true);

  assert.deepEqual([...origins], [base], "the page asked another origin");
  assert.deepEqual(errors, []);
  await page.close();
});

test("phone: every row readable without sideways scrolling", async () => {
  const page = await browser.newPage();
  await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
  await page.goto(base + "/", { waitUntil: "load" });
  await page.waitForSelector("#rows tr");
  assert.equal((await rowsOf(page)).length, Object.keys(expected).length);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
  // Each cell carries its label, since a phone shows no table header.
  const labels = await page.$eval("#rows tr", (row) =>
    [...row.querySelectorAll("td")].map((cell) => getComputedStyle(cell, "::before").content));
  assert.ok(labels.includes('"State"') && labels.includes('"Reason"'), labels.join());
  await page.screenshot({ path: path.join(artifacts, "status-phone.png"), fullPage: true });
  await page.close();
});
