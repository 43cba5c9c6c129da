import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { ENV_SCHEMA, DEFAULTS } from '../shared/config/index.ts';
import { startChatProcess, removeDir } from './support/chat-process.ts';
import { DEPLOY, ROOT, hasTool } from './support/deploy-files.ts';

/**
 * deploy/k8s: the Kustomize base and overlays build (kubectl kustomize), every object they make
 * is valid against the Kubernetes API schemas (kubernetes-models: types, required fields and
 * enums; unknown fields are not caught), and the objects agree with each other and with the code:
 * probes name routes the server has, env names are config variables, ports, selectors and names
 * match, the gateway's grace period covers its drain, the HPA's custom metric is the one the
 * Prometheus adapter serves.
 */
type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: any };

const K8S = join(DEPLOY, 'k8s');
const BUILDS = ['base', 'overlays/dev', 'overlays/prod'];
const KUBECTL = process.env['KUBECTL'] ?? 'kubectl';
const kubectl = hasTool(KUBECTL, ['kustomize', '--help']);
const noKubectl = !kubectl && `${KUBECTL} with kustomize not found: the base's files are checked as written`;

const MODELS: Record<string, new (o: any) => { validate(): void }> = {
  Namespace, ConfigMap, Secret, Service, Deployment, Job, PodDisruptionBudget, HorizontalPodAutoscaler, Ingress,
};

/** The `chat` subcommands (bin/chat.ts). */
const COMMANDS = [...readFileSync(join(ROOT, 'bin/chat.ts'), 'utf8').matchAll(/program\.command\('([a-z]+)'\)/g)].map((m) => m[1]!);

/** Variables the process reads that are not in ENV_SCHEMA: OpenTelemetry's own. */
const isEnvName = (name: string) => name in ENV_SCHEMA || /^OTEL_[A-Z_]+$/.test(name);

function build(dir: string): Obj[] {
  if (!kubectl) {
    // without kustomize: the base's resources as written, the generated ConfigMap from config.env
    const k = parse(readFileSync(join(K8S, 'base/kustomization.yaml'), 'utf8')) as { resources: string[] };
    const objs = k.resources.flatMap((f) => parseAllDocuments(readFileSync(join(K8S, 'base', f), 'utf8')).map((d) => d.toJSON() as Obj));
    return [...objs, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'chat-config' }, data: readEnvFile(join(K8S, 'base/config.env')) }];
  }
  const r = spawnSync(KUBECTL, ['kustomize', join(K8S, dir)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir}: ${r.stderr}`);
  return parseAllDocuments(r.stdout).map((d) => d.toJSON() as Obj).filter(Boolean);
}

function readEnvFile(path: string): Record<string, string> {
  return Object.fromEntries(readFileSync(path, 'utf8').split('\n').filter((l) => /^[A-Z]/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

const builds = new Map(BUILDS.filter((b) => kubectl || b === 'base').map((b) => [b, build(b)]));
const of = (objs: Obj[], kind: string) => objs.filter((o) => o.kind === kind);
const containers = (d: Obj): any[] => d['spec'].template.spec.containers;
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);

t.test('k8s - the base and both overlays build with kubectl kustomize', { skip: noKubectl }, async (t) => {
  for (const [dir, objs] of builds) {
    const kinds = new Set(objs.map((o) => o.kind));
    for (const kind of ['ConfigMap', 'Deployment', 'Service', 'PodDisruptionBudget', 'HorizontalPodAutoscaler', 'Ingress', 'Job']) t.ok(kinds.has(kind), `${dir} makes a ${kind}`);
    t.same(of(objs, 'Deployment').map((d) => d.metadata.name).sort(), ['chat-api', 'chat-gateway', 'chat-persister'], `${dir}: one Deployment per tier`);
  }
  const dev = builds.get('overlays/dev')!;
  t.ok(of(dev, 'Secret').some((s) => s.metadata.name.startsWith('chat-secrets')), 'dev generates chat-secrets');
  t.notOk(of(builds.get('overlays/prod')!, 'Secret').length, 'prod generates no Secret (it is created out of band)');
});

t.test('k8s - every object is valid against the Kubernetes API schema', async (t) => {
  for (const [dir, objs] of builds) {
    for (const o of objs) {
      const Model = MODELS[o.kind];
      t.ok(Model, `${dir}: ${o.kind} ${o.metadata.name} has a schema to check against`);
      if (!Model) continue;
      t.doesNotThrow(() => new Model(o).validate(), `${dir}: ${o.kind} ${o.metadata.name}`);
    }
  }
});

t.test('k8s - a broken object is refused by the same validation', async (t) => {
  const d = structuredClone(of(builds.get('base')!, 'Deployment')[0]!);
  containers(d)[0].ports[0].containerPort = 'http';
  t.throws(() => new Deployment(d).validate(), /containerPort must be integer/);
});

t.test('k8s - containers run chat subcommands, take their env from names the config knows, and listen on PORT', async (t) => {
  for (const [dir, objs] of builds) {
    const configMaps = new Map(of(objs, 'ConfigMap').map((c) => [c.metadata.name, c['data'] as Record<string, string>]));
    for (const [name, data] of configMaps) {
      for (const key of Object.keys(data)) t.ok(isEnvName(key), `${dir}: ConfigMap ${name} key ${key} is a config variable`);
    }
    for (const s of of(objs, 'Secret')) {
      for (const key of Object.keys(s['data'] ?? {})) t.ok(isEnvName(key), `${dir}: Secret ${s.metadata.name} key ${key} is a config variable`);
    }
    for (const w of [...of(objs, 'Deployment'), ...of(objs, 'Job')]) {
      for (const c of containers(w)) {
        t.ok(COMMANDS.includes(c.args?.[0]), `${dir}: ${w.metadata.name} runs \`chat ${c.args?.[0]}\``);
        for (const from of c.envFrom ?? []) {
          if (from.configMapRef) t.ok(configMaps.has(from.configMapRef.name), `${dir}: ${w.metadata.name} reads ConfigMap ${from.configMapRef.name}, which exists`);
        }
        const port = Number([...configMaps.values()][0]?.['PORT'] ?? DEFAULTS.port);
        for (const p of c.ports ?? []) t.equal(p.containerPort, port, `${dir}: ${w.metadata.name} port ${p.name} is PORT (${port})`);
      }
    }
  }
});

t.test('k8s - Services, Ingress backends, PDBs and HPAs reach what exists', async (t) => {
  for (const [dir, objs] of builds) {
    const deployments = of(objs, 'Deployment');
    const podLabels = deployments.map((d) => d['spec'].template.metadata.labels as Record<string, string>);
    const services = new Map(of(objs, 'Service').map((s) => [s.metadata.name, s]));
    for (const s of services.values()) {
      const target = deployments.find((d) => matches(s['spec'].selector, d['spec'].template.metadata.labels));
      t.ok(target, `${dir}: Service ${s.metadata.name} selects a Deployment's pods`);
      for (const p of s['spec'].ports) {
        t.ok(target && containers(target).some((c) => c.ports?.some((cp: any) => cp.name === p.targetPort || cp.containerPort === p.targetPort)),
          `${dir}: Service ${s.metadata.name} targetPort ${p.targetPort} is a container port`);
      }
    }
    for (const ing of of(objs, 'Ingress')) {
      for (const rule of ing['spec'].rules) {
        for (const p of rule.http.paths) {
          const svc = services.get(p.backend.service.name);
          t.ok(svc, `${dir}: Ingress ${ing.metadata.name} ${p.path} -> Service ${p.backend.service.name} exists`);
          t.ok(svc?.['spec'].ports.some((sp: any) => sp.name === p.backend.service.port.name), `${dir}: ... its port ${p.backend.service.port.name}`);
        }
      }
    }
    for (const pdb of of(objs, 'PodDisruptionBudget')) {
      t.ok(podLabels.some((l) => matches(pdb['spec'].selector.matchLabels, l)), `${dir}: PDB ${pdb.metadata.name} selects pods`);
    }
    for (const d of deployments) {
      t.ok(matches(d['spec'].selector.matchLabels, d['spec'].template.metadata.labels), `${dir}: Deployment ${d.metadata.name} selects its own pods`);
    }
    for (const hpa of of(objs, 'HorizontalPodAutoscaler')) {
      t.ok(deployments.some((d) => d.metadata.name === hpa['spec'].scaleTargetRef.name), `${dir}: HPA ${hpa.metadata.name} scales an existing Deployment`);
      t.ok(hpa['spec'].metrics.some((m: any) => m.type === 'Resource' && m.resource.name === 'cpu'), `${dir}: HPA ${hpa.metadata.name} scales on CPU`);
    }
  }
});

t.test('k8s - the gateway HPA scales on the connection count the Prometheus adapter serves', async (t) => {
  const hpa = of(builds.get('base')!, 'HorizontalPodAutoscaler').find((h) => h.metadata.name === 'chat-gateway')!;
  const custom = hpa['spec'].metrics.find((m: any) => m.type === 'Pods');
  t.equal(custom?.pods.metric.name, 'chat_ws_open_connections');
  const adapter = parse(readFileSync(join(K8S, 'monitoring/values-prometheus-adapter.yaml'), 'utf8')) as { rules: { custom: Array<{ seriesQuery: string; name: { as: string } }> } };
  const rule = adapter.rules.custom.find((r) => r.name.as === custom?.pods.metric.name);
  t.ok(rule, 'the adapter has a rule that serves it');
  t.match(rule?.seriesQuery ?? '', /^chat_ws_open_connections\{/, 'from the gauge of that name');
  const prometheus = parse(readFileSync(join(K8S, 'monitoring/values-prometheus.yaml'), 'utf8')) as { extraScrapeConfigs: string };
  const scrape = parse(prometheus.extraScrapeConfigs) as Array<{ relabel_configs: Array<{ target_label?: string }> }>;
  const targets = scrape[0]!.relabel_configs.map((r) => r.target_label);
  for (const label of ['job', 'namespace', 'pod']) t.ok(targets.includes(label), `the scrape config sets ${label}, which the adapter and the alerts use`);
});

t.test('k8s - the gateway\'s grace period covers its preStop sleep and the drain grace', async (t) => {
  for (const [dir, objs] of builds) {
    const gw = of(objs, 'Deployment').find((d) => d.metadata.name === 'chat-gateway')!;
    const config = of(objs, 'ConfigMap').find((c) => containers(gw)[0].envFrom.some((f: any) => f.configMapRef?.name === c.metadata.name))!;
    const drainMs = Number(config['data']['DRAIN_GRACE_MS']);
    t.ok(drainMs > 0, `${dir}: DRAIN_GRACE_MS is set (${drainMs})`);
    const preStop = containers(gw)[0].lifecycle?.preStop?.exec?.command as string[] | undefined;
    t.equal(preStop?.[0], 'sleep', `${dir}: the gateway's preStop waits for the Ingress to let go`);
    const grace = gw['spec'].template.spec.terminationGracePeriodSeconds as number;
    const needed = Number(preStop?.[1]) + drainMs / 1000 + 5;
    t.ok(grace >= needed, `${dir}: terminationGracePeriodSeconds ${grace} >= preStop ${preStop?.[1]} s + drain ${drainMs / 1000} s + 5 s`);
  }
});

t.test('k8s - the probe paths answer on a running chat process', async (t) => {
  const paths = new Set<string>();
  for (const objs of builds.values()) {
    for (const d of of(objs, 'Deployment')) {
      for (const c of containers(d)) {
        for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) if (c[probe]?.httpGet) paths.add(c[probe].httpGet.path);
      }
    }
  }
  t.same([...paths].sort(), ['/health', '/health/ready'], 'liveness on /health, readiness on /health/ready');
  const chat = await startChatProcess({ command: 'all' });
  t.teardown(async () => { await chat.stop(); removeDir(chat.dataDir); });
  for (const path of paths) {
    const res = await fetch(chat.http + path);
    t.equal(res.status, 200, `GET ${path} answers 200`);
  }
});

t.test('k8s - the Helm values files turn on what chat-svc needs', async (t) => {
  const nats = parse(readFileSync(join(K8S, 'helm/values-nats.yaml'), 'utf8'));
  t.equal(nats.config.cluster.enabled, true, 'NATS: a cluster');
  t.equal(nats.config.cluster.replicas, 3, 'of 3 servers');
  t.equal(nats.config.jetstream.enabled, true, 'with JetStream');
  t.equal(nats.config.jetstream.fileStore.enabled, true, 'on file storage');
  const cassandra = parse(readFileSync(join(K8S, 'helm/values-cassandra.yaml'), 'utf8'));
  t.match(String(cassandra.image.tag), /^5\.0/, 'Cassandra 5.0');
  const config = readEnvFile(join(K8S, 'base/config.env'));
  t.equal(cassandra.cluster.datacenter, config['CASSANDRA_LOCAL_DC'], 'its datacenter is CASSANDRA_LOCAL_DC');
  t.equal(cassandra.dbUser.user, config['CASSANDRA_USERNAME'], 'its user is CASSANDRA_USERNAME');
  t.ok(Number(config['CASSANDRA_REPLICATION']) <= cassandra.replicaCount, 'the keyspace replication fits the nodes');
  t.ok(Number(config['NATS_STREAM_REPLICAS']) <= nats.config.cluster.replicas, 'the stream replicas fit the NATS servers');
});
