/**
 * A strict reader of the OpenMetrics text exposition (the rules a scraper enforces that prom-client
 * output could break): every family declared once with a TYPE before its samples, its samples
 * together, each sample named after exactly one family with a suffix its type allows (so a gauge
 * `x` next to a counter `x_total`, whose family is `x`, is a clash), label sets well formed and
 * unique per family, values numbers, histograms with a +Inf bucket equal to their count, and
 * `# EOF` last. Throws naming the first problem; returns the samples.
 */
export interface Sample {
  family: string;
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  families: Map<string, string>;
  samples: Sample[];
  /** The value of the sample with this name and exactly these labels, if any. */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

const SUFFIXES: Record<string, string[]> = {
  counter: ['_total', '_created'],
  gauge: [''],
  histogram: ['_bucket', '_count', '_sum', '_created'],
  gaugehistogram: ['_bucket', '_gcount', '_gsum'],
  summary: ['', '_count', '_sum', '_created'],
  info: ['_info'],
  stateset: [''],
  unknown: [''],
};
const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function parseOpenMetrics(text: string): Exposition {
  if (!text.endsWith('# EOF\n')) throw new Error('the exposition must end with "# EOF"');
  const lines = text.slice(0, -'# EOF\n'.length).split('\n');
  if (lines.at(-1) === '') lines.pop();
  const families = new Map<string, string>();
  const done = new Set<string>();
  const seen = new Set<string>();
  const meta = new Set<string>();
  const samples: Sample[] = [];
  let current: string | undefined;
  lines.forEach((line, i) => {
    const where = `line ${i + 1} (${line.slice(0, 80)})`;
    if (line === '') throw new Error(`${where}: empty lines are not allowed`);
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE|UNIT) ([^ ]+)(?: (.*))?$/.exec(line);
      if (!m) throw new Error(`${where}: not a HELP, TYPE or UNIT line`);
      const [, kind, name] = m as unknown as [string, string, string, string | undefined];
      if (!NAME.test(name)) throw new Error(`${where}: bad family name`);
      if (meta.has(`${kind} ${name}`)) throw new Error(`${where}: ${kind} of ${name} given twice (a name clash)`);
      meta.add(`${kind} ${name}`);
      if (name === current && samples.at(-1)?.family === name) throw new Error(`${where}: metadata after ${name}'s samples`);
      if (name !== current) {
        if (current !== undefined) done.add(current);
        if (done.has(name) || families.has(name)) throw new Error(`${where}: family ${name} declared twice (a name clash)`);
        current = name;
      }
      if (kind === 'TYPE') {
        const type = m[3] ?? '';
        if (!(type in SUFFIXES)) throw new Error(`${where}: unknown type ${type}`);
        if (type === 'counter' && name.endsWith('_total')) throw new Error(`${where}: a counter family must not end in _total`);
        families.set(name, type);
      }
      return;
    }
    const sample = parseSample(line, where);
    const owners = [...families].filter(([f, type]) => SUFFIXES[type]!.some((s) => sample.name === f + s));
    const other = [...families.keys()].filter((f) => f !== current && SUFFIXES[families.get(f)!]!.some((s) => sample.name === f + s));
    if (current === undefined || !owners.some(([f]) => f === current)) throw new Error(`${where}: sample does not belong to family ${current} (its TYPE must come first)`);
    if (other.length) throw new Error(`${where}: sample name also belongs to family ${other[0]} (a name clash)`);
    const key = `${sample.name}{${Object.entries(sample.labels).sort().map(([k, v]) => `${k}=${v}`).join(',')}}`;
    if (seen.has(key)) throw new Error(`${where}: duplicate sample ${key}`);
    seen.add(key);
    samples.push({ ...sample, family: current });
  });
  for (const [family, type] of families) {
    if (type !== 'histogram') continue;
    const groups = new Map<string, { inf?: number; count?: number }>();
    for (const s of samples.filter((x) => x.family === family)) {
      const { le, ...rest } = s.labels;
      const g = groups.get(JSON.stringify(rest)) ?? {};
      if (s.name === `${family}_bucket` && le === '+Inf') g.inf = s.value;
      if (s.name === `${family}_count`) g.count = s.value;
      groups.set(JSON.stringify(rest), g);
    }
    for (const [labels, g] of groups) {
      if (g.inf === undefined || g.inf !== g.count) throw new Error(`histogram ${family}${labels}: +Inf bucket ${g.inf} must equal the count ${g.count}`);
    }
  }
  return {
    families, samples,
    value(name, labels = {}) {
      const want = JSON.stringify(Object.entries(labels).sort());
      return samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want)?.value;
    },
  };
}

function parseSample(line: string, where: string): Omit<Sample, 'family'> {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*?\})? ([^ ]+)( [^ #]+)?( # .*)?$/.exec(line);
  if (!m) throw new Error(`${where}: not a sample line`);
  const labels: Record<string, string> = {};
  if (m[2]) {
    const body = m[2].slice(1, -1);
    const re = /([^=,]+)="((?:[^"\\]|\\.)*)"(,|$)/y;
    let pos = 0;
    while (pos < body.length) {
      re.lastIndex = pos;
      const l = re.exec(body);
      if (!l) throw new Error(`${where}: bad label set`);
      const [, name, value] = l as unknown as [string, string, string];
      if (!LABEL.test(name)) throw new Error(`${where}: bad label name ${name}`);
      if (name in labels) throw new Error(`${where}: label ${name} twice`);
      labels[name] = value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      pos = re.lastIndex;
    }
  }
  const raw = m[3]!;
  const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : raw === 'NaN' ? NaN : Number(raw);
  if (raw === '' || (Number.isNaN(value) && raw !== 'NaN')) throw new Error(`${where}: value ${raw} is not a number`);
  return { name: m[1]!, labels, value };
}
