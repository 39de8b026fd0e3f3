// Checks deploy/kubernetes offline (ctest: kubernetes_manifests; docs/testing.md):
// - every object against the Kubernetes and prometheus-operator API schemas (kubernetes-models'
//   validators), and no field the API does not know (the schemas alone allow any);
// - what the manifests promise: the native sidecar, its probes and hardening, the scrape
//   annotations and PodMonitors that select the agents, the StatefulSet's shard flags, and that
//   every ConfigMap's configuration passes the real agent's --config.check with its Secret's
//   keys as the files it names;
// - the Prometheus side: the scrape job's relabelling applied to discovered pods, and the
//   PrometheusRule holding exactly the rules of config/rules/ (MAILCANARY_UPDATE_GOLDEN=1
//   regenerates it).
//
// Environment: MAILCANARY_BINARY, the agent to run --config.check with (required);
// MAILCANARY_SOURCE_DIR, the repository (default: two folders up from this file).
// By hand: cd tests/kubernetes && npm ci && MAILCANARY_BINARY=... node --test manifests.test.mjs
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const here = path.dirname(fileURLToPath(import.meta.url));
// ctest runs a copy of this file beside its node_modules in the build tree.
const root = process.env.MAILCANARY_SOURCE_DIR ?? path.resolve(here, "../..");
const deploy = path.join(root, "deploy/kubernetes");
const modules = path.join(here, "node_modules");

// --- Loading --------------------------------------------------------------------------------

function objectsIn(folder) {
  const objects = [];
  for (const file of fs.readdirSync(path.join(deploy, folder)).sort()) {
    if (!file.endsWith(".yaml")) continue;
    const text = fs.readFileSync(path.join(deploy, folder, file), "utf8");
    for (const document of YAML.parseAllDocuments(text)) {
      assert.deepEqual(document.errors, [], `${folder}/${file}`);
      objects.push({ where: `${folder}/${file}`, object: document.toJS() });
    }
  }
  return objects;
}

const folders = ["sidecar", "shards", "prometheus"];
const all = folders.flatMap(objectsIn);
const find = (folder, kind) => {
  const found = all.filter((o) => o.where.startsWith(folder + "/") && o.object.kind === kind);
  assert.equal(found.length, 1, `one ${kind} in ${folder}/`);
  return found[0].object;
};

// --- Schemas --------------------------------------------------------------------------------

// Where a kind's model lives: kubernetes-models/<group>/<version>/<Kind> (core: v1/<Kind>), the
// prometheus-operator's in its own package.
function modelFile(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "monitoring.coreos.com")
    return path.join(modules, "@kubernetes-models/prometheus-operator", group, version, kind);
  return path.join(modules, "kubernetes-models", group, version, kind);
}

// The fields an interface declares, read from the model's TypeScript declarations: the schemas
// set no additionalProperties, so a misspelt field would pass them; this walk refuses it.
// A type is a named interface (followed into its file), Array<T>, a map {[key: string]: T}, an
// inline object, or anything else (a leaf).
const interfaces = new Map();

function members(body) {
  const fields = new Map();
  let depth = 0;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if ("{<(".includes(c)) depth++;
    else if ("}>)".includes(c)) depth--;
    else if (c === ";" && depth === 0) {
      const member = body.slice(start, i).trim();
      start = i + 1;
      const match = /^(?:"([^"]+)"|\[key: string\])\??:\s*([\s\S]+)$/.exec(member);
      if (match) fields.set(match[1] ?? "[key]", match[2].trim());
    }
  }
  return fields;
}

function declarations(file) {
  if (interfaces.has(file)) return interfaces.get(file);
  const text = fs.readFileSync(file, "utf8").replace(/\/\*\*[\s\S]*?\*\//g, "");
  const imports = new Map();
  for (const [, name, from] of text.matchAll(/import \{ (\w+) \} from "([^"]+)";/g)) {
    const target = from.startsWith(".")
      ? path.join(path.dirname(file), from.replace(/\.js$/, ""))
      : path.join(modules, from.replace(/\.js$/, ""));
    imports.set(name, target + ".d.ts");
  }
  const head = /export interface \w+(?: extends [\w, ]+)? \{/.exec(text);
  let depth = 1;
  let end = head.index + head[0].length;
  for (; depth > 0; end++) {
    if (text[end] === "{") depth++;
    else if (text[end] === "}") depth--;
  }
  const declared = { fields: members(text.slice(head.index + head[0].length, end - 1)), imports };
  interfaces.set(file, declared);
  return declared;
}

function unknownFields(value, type, imports, at, problems) {
  if (value === null || typeof value !== "object") return;
  let match;
  if ((match = /^Array<([\s\S]+)>$/.exec(type))) {
    value.forEach((element, i) => unknownFields(element, match[1], imports, `${at}[${i}]`, problems));
  } else if (imports.has(type)) {
    const declared = declarations(imports.get(type));
    checkFields(value, declared.fields, declared.imports, at, problems);
  } else if (type.startsWith("{")) {
    checkFields(value, members(type.slice(1, type.lastIndexOf("}"))), imports, at, problems);
  }
}

function checkFields(value, fields, imports, at, problems) {
  for (const [key, field] of Object.entries(value)) {
    const type = fields.get(key) ?? fields.get("[key]");
    if (type === undefined) problems.push(`${at}.${key}: not a field of the API`);
    else unknownFields(field, type, imports, `${at}.${key}`, problems);
  }
}

for (const { where, object } of all) {
  test(`${where}: ${object.kind} ${object.metadata?.name} matches its API schema`, async () => {
    const file = modelFile(object.apiVersion, object.kind);
    const model = (await import(file + ".js"))[object.kind];
    assert.doesNotThrow(() => new model(object).validate());
    const problems = [];
    const declared = declarations(file + ".d.ts");
    checkFields(object, declared.fields, declared.imports, object.kind, problems);
    assert.deepEqual(problems, []);
  });
}

test("the field check refuses a misspelt field, the schema a wrong type", async () => {
  const deployment = structuredClone(find("sidecar", "Deployment"));
  deployment.spec.template.spec.initContainers[0].readinesProbe = {};
  const problems = [];
  const declared = declarations(modelFile("apps/v1", "Deployment") + ".d.ts");
  checkFields(deployment, declared.fields, declared.imports, "Deployment", problems);
  assert.deepEqual(problems, [
    "Deployment.spec.template.spec.initContainers[0].readinesProbe: not a field of the API",
  ]);
  deployment.spec.template.spec.initContainers[0].ports[0].containerPort = "9725";
  const { Deployment } = await import(modelFile("apps/v1", "Deployment") + ".js");
  assert.throws(() => new Deployment(deployment).validate(), /containerPort must be integer/);
});

// --- What the manifests promise -------------------------------------------------------------

const podSpec = (workload) => workload.spec.template.spec;
const agentOf = (spec) =>
  [...(spec.initContainers ?? []), ...spec.containers].find((c) => c.name === "mailcanary");

function checkAgentContainer(workload) {
  const pod = workload.spec.template;
  const agent = agentOf(pod.spec);
  const port = agent.ports.find((p) => p.name === "metrics");
  assert.equal(port?.containerPort, 9725);
  assert.deepEqual(agent.livenessProbe.httpGet, { path: "/-/healthy", port: "metrics" });
  assert.deepEqual(agent.readinessProbe.httpGet, { path: "/-/ready", port: "metrics" });
  for (const kind of ["requests", "limits"])
    for (const resource of ["cpu", "memory"]) assert.ok(agent.resources[kind][resource], kind);
  const security = agent.securityContext;
  assert.equal(security.readOnlyRootFilesystem, true);
  assert.equal(security.runAsNonRoot, true);
  assert.ok(security.runAsUser > 0);
  assert.equal(security.allowPrivilegeEscalation, false);
  assert.deepEqual(security.capabilities.drop, ["ALL"]);
  const annotations = pod.metadata.annotations;
  assert.equal(annotations["prometheus.io/scrape"], "true");
  assert.equal(annotations["prometheus.io/port"], String(port.containerPort));
  assert.equal(annotations["prometheus.io/path"], "/metrics");
  return agent;
}

function selects(selector, labels) {
  return Object.entries(selector.matchLabels).every(([key, value]) => labels[key] === value);
}

function checkPodMonitor(folder, workload) {
  const monitor = find(folder, "PodMonitor");
  assert.ok(selects(monitor.spec.selector, workload.spec.template.metadata.labels));
  const [endpoint] = monitor.spec.podMetricsEndpoints;
  assert.ok(agentOf(podSpec(workload)).ports.some((p) => p.name === endpoint.port));
  // The alert rules select the agents by job="mailcanary".
  assert.ok(endpoint.relabelings.some((r) => r.targetLabel === "job" && r.replacement === "mailcanary"));
  for (const label of monitor.spec.podTargetLabels ?? [])
    assert.ok(label in workload.spec.template.metadata.labels, label);
}

// Runs the agent's --config.check on a ConfigMap's configuration as the pod would see it: the
// mounts under /etc/mailcanary/ become a temporary directory, the Secret's keys files in it.
function configCheck(configMap, mounts, flags = []) {
  const binary = process.env.MAILCANARY_BINARY;
  assert.ok(binary && fs.existsSync(binary), "MAILCANARY_BINARY names the mailcanary binary");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailcanary-k8s-"));
  try {
    for (const [mountPath, files] of mounts) {
      const target = path.join(dir, path.relative("/etc/mailcanary", mountPath));
      fs.mkdirSync(target, { recursive: true });
      for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(target, name), content, { mode: 0o440 });
    }
    const configPath = path.join(dir, "config/mailcanary.toml");
    const config = configMap.data["mailcanary.toml"].replaceAll("/etc/mailcanary/", dir + "/");
    fs.writeFileSync(configPath, config);
    return execFileSync(binary, [`--config.file=${configPath}`, "--config.check", ...flags], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// Each volume mount of the agent with the files it holds: a ConfigMap's data, a Secret's keys.
function mountedFiles(folder, workload) {
  const agent = agentOf(podSpec(workload));
  return agent.volumeMounts.map((mount) => {
    const volume = podSpec(workload).volumes.find((v) => v.name === mount.name);
    if (volume.configMap) {
      const configMap = find(folder, "ConfigMap");
      assert.equal(volume.configMap.name, configMap.metadata.name);
      return [mount.mountPath, {}];
    }
    const secret = find(folder, "Secret");
    assert.equal(volume.secret.secretName, secret.metadata.name);
    assert.equal(volume.secret.defaultMode, 0o440, "the password readable by the pod's group only");
    return [mount.mountPath, secret.stringData];
  });
}

test("sidecar: mailcanary is a native sidecar of the mail server pod", () => {
  const deployment = find("sidecar", "Deployment");
  const spec = podSpec(deployment);
  assert.equal(spec.initContainers.find((c) => c.name === "mailcanary").restartPolicy, "Always");
  assert.ok(spec.containers.some((c) => c.name !== "mailcanary"), "a mail server beside it");
  const agent = checkAgentContainer(deployment);
  assert.ok(agent.args.includes("--config.file=/etc/mailcanary/config/mailcanary.toml"));
  checkPodMonitor("sidecar", deployment);
});

test("sidecar: the configuration passes --config.check with the Secret's keys as its files", () => {
  const deployment = find("sidecar", "Deployment");
  const output = configCheck(find("sidecar", "ConfigMap"), mountedFiles("sidecar", deployment));
  assert.match(output, /configuration is valid \(2 targets, 0 warnings\)/);
  // And the password file is the Secret's, not something that happens to exist.
  const withoutSecret = mountedFiles("sidecar", deployment).filter(([mount]) => !mount.endsWith("secrets"));
  assert.throws(() => configCheck(find("sidecar", "ConfigMap"), withoutSecret), /password_file/);
});

test("shards: every agent of the StatefulSet probes its own shard", () => {
  const statefulSet = find("shards", "StatefulSet");
  const agent = checkAgentContainer(statefulSet);
  assert.ok(agent.args.includes("--shard.index=from-hostname"));
  const count = statefulSet.spec.replicas;
  assert.ok(count > 1);
  assert.ok(agent.args.includes(`--shard.count=${count}`), "--shard.count is the number of replicas");
  const service = find("shards", "Service");
  assert.equal(statefulSet.spec.serviceName, service.metadata.name);
  assert.equal(service.spec.clusterIP, "None");
  assert.ok(selects({ matchLabels: service.spec.selector }, statefulSet.spec.template.metadata.labels));
  checkPodMonitor("shards", statefulSet);

  // The pods together probe every target exactly once: the shares --config.check reports add up.
  const configMap = find("shards", "ConfigMap");
  const mounts = mountedFiles("shards", statefulSet);
  let total = 0;
  let sum = 0;
  for (let index = 0; index < count; index++) {
    const output = configCheck(configMap, mounts, [`--shard.index=${index}`, `--shard.count=${count}`]);
    const match = /\((\d+) targets, (\d+) in shard (\d+) of (\d+), 0 warnings\)/.exec(output);
    assert.ok(match, output);
    total = Number(match[1]);
    sum += Number(match[2]);
    assert.ok(Number(match[2]) > 0, `shard ${index} of ${count} has targets`);
  }
  assert.ok(total >= 10);
  assert.equal(sum, total);
});

// --- The Prometheus side --------------------------------------------------------------------

// Prometheus's relabelling for the actions the scrape job uses (keep, drop, replace); regexes
// are anchored as Prometheus anchors them.
function relabel(labels, rules) {
  const out = { ...labels };
  for (const rule of rules) {
    const value = (rule.source_labels ?? []).map((name) => out[name] ?? "").join(rule.separator ?? ";");
    const regex = new RegExp(`^(?:${rule.regex ?? "(.*)"})$`);
    const match = regex.exec(value);
    const action = rule.action ?? "replace";
    if (action === "keep" && !match) return null;
    if (action === "drop" && match) return null;
    if (action === "replace" && match) {
      const replacement = (rule.replacement ?? "$1").replace(/\$\{?(\d+)\}?/g, (_, n) => match[Number(n)] ?? "");
      if (replacement === "") delete out[rule.target_label];
      else out[rule.target_label] = replacement;
    }
  }
  for (const name of Object.keys(out)) if (name.startsWith("__meta_")) delete out[name];
  return out;
}

// What the pod role discovers: one target per container port (init containers included).
function discovered(namespace, workload, name, ip) {
  const pod = workload.spec.template;
  const spec = pod.spec;
  const targets = [];
  for (const [init, containers] of [["true", spec.initContainers ?? []], ["false", spec.containers]]) {
    for (const container of containers) {
      for (const port of container.ports ?? []) {
        const labels = {
          __address__: `${ip}:${port.containerPort}`,
          __metrics_path__: "/metrics",
          __meta_kubernetes_namespace: namespace,
          __meta_kubernetes_pod_name: name,
          __meta_kubernetes_pod_ip: ip,
          __meta_kubernetes_pod_phase: "Running",
          __meta_kubernetes_pod_container_name: container.name,
          __meta_kubernetes_pod_container_init: init,
          __meta_kubernetes_pod_container_port_name: port.name,
        };
        for (const [key, value] of Object.entries(pod.metadata.labels ?? {}))
          labels[`__meta_kubernetes_pod_label_${key.replace(/[^a-zA-Z0-9_]/g, "_")}`] = value;
        for (const [key, value] of Object.entries(pod.metadata.annotations ?? {}))
          labels[`__meta_kubernetes_pod_annotation_${key.replace(/[^a-zA-Z0-9_]/g, "_")}`] = value;
        targets.push(labels);
      }
    }
  }
  return targets;
}

test("prometheus.yml: the pod discovery job scrapes each agent once and nothing else", () => {
  const config = YAML.parse(fs.readFileSync(path.join(deploy, "prometheus/prometheus.yml"), "utf8"));
  const [job] = config.scrape_configs;
  assert.equal(job.job_name, "mailcanary");
  assert.deepEqual(job.kubernetes_sd_configs, [{ role: "pod" }]);
  const sidecarPod = find("sidecar", "Deployment");
  const shardPod = find("shards", "StatefulSet");
  const found = [
    ...discovered("mail", sidecarPod, "mail-server-7d9f-abcde", "10.1.0.5"),
    ...discovered("monitoring", shardPod, "mailcanary-1", "10.1.0.6"),
  ];
  assert.equal(found.length, 4, "Postfix's two ports and one port of each agent");
  const kept = found.map((labels) => relabel(labels, job.relabel_configs)).filter(Boolean);
  assert.deepEqual(kept, [
    { __address__: "10.1.0.5:9725", __metrics_path__: "/metrics", namespace: "mail", pod: "mail-server-7d9f-abcde", site: "eu-west-1" },
    { __address__: "10.1.0.6:9725", __metrics_path__: "/metrics", namespace: "monitoring", pod: "mailcanary-1", site: "eu-west-1" },
  ]);
  for (const rules of config.rule_files) assert.ok(fs.existsSync(path.join(root, "config", rules)), rules);
});

// The PrometheusRule is config/rules/ as one object: generated, never edited by hand.
const ruleFiles = ["mailcanary-recording.yml", "mailcanary-alerts.yml"];
const ruleRuleFile = path.join(deploy, "prometheus/prometheusrule.yaml");

function prometheusRule() {
  const groups = new YAML.YAMLSeq();
  for (const file of ruleFiles) {
    const document = YAML.parseDocument(fs.readFileSync(path.join(root, "config/rules", file), "utf8"));
    for (const group of document.get("groups").items) groups.items.push(group);
  }
  const document = new YAML.Document({
    apiVersion: "monitoring.coreos.com/v1",
    kind: "PrometheusRule",
    metadata: { name: "mailcanary", labels: { "app.kubernetes.io/name": "mailcanary" } },
    spec: { groups: [] },
  });
  document.setIn(["spec", "groups"], groups);
  document.commentBefore =
    " Generated from config/rules/ (" + ruleFiles.join(", ") + ") by\n" +
    " tests/kubernetes/manifests.test.mjs with MAILCANARY_UPDATE_GOLDEN=1: edit those, not this.\n" +
    " For the Prometheus Operator; its ruleSelector must match these labels (add yours).";
  return document.toString({ lineWidth: 0 });
}

test("prometheusrule.yaml holds exactly the rules of config/rules/", () => {
  const expected = prometheusRule();
  if (process.env.MAILCANARY_UPDATE_GOLDEN === "1") fs.writeFileSync(ruleRuleFile, expected);
  const actual = fs.readFileSync(ruleRuleFile, "utf8");
  assert.deepEqual(YAML.parse(actual), YAML.parse(expected), "regenerate: MAILCANARY_UPDATE_GOLDEN=1");
  const groups = ruleFiles.flatMap((file) => YAML.parse(fs.readFileSync(path.join(root, "config/rules", file), "utf8")).groups);
  assert.deepEqual(YAML.parse(actual).spec.groups, groups);
  assert.ok(groups.flatMap((g) => g.rules).some((r) => r.alert === "MailcanaryAgentDown"));
});
