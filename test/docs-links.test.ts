import t from 'tap';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * The documentation lives in the repository: every relative link of the README and of docs/
 * reaches a file of the repository (and a heading, when it names one), and code comments cite
 * those docs rather than a design document the repository does not hold.
 */
const ROOT = resolve(import.meta.dirname, '..');
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const CODE_DIRS = ['shared', 'gateway', 'api', 'persister', 'bin', 'test', 'bench'];

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-');
}

function anchors(file: string): Set<string> {
  const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!)));
}

function links(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8').replace(/```[\s\S]*?```/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
}

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'results' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sources(path, out);
    else if (/\.(ts|tsx|mjs)$/.test(name)) out.push(path);
  }
  return out;
}

t.test('docs - relative links of the README and docs/ reach files and headings inside the repository', async (t) => {
  for (const doc of DOCS) {
    for (const link of links(doc)) {
      if (/^[a-z]+:/.test(link)) continue; // a web address: allowed, not checked
      const [path, anchor] = link.split('#') as [string, string | undefined];
      const target = path === '' ? join(ROOT, doc) : resolve(ROOT, dirname(doc), path);
      t.notOk(relative(ROOT, target).startsWith('..'), `${doc}: ${link} stays inside the repository`);
      t.ok(existsSync(target), `${doc}: ${link} exists`);
      if (anchor && existsSync(target) && target.endsWith('.md')) t.ok(anchors(target).has(anchor), `${doc}: ${link} names a heading`);
    }
  }
});

t.test('docs - the docs folder has its index, the architecture and the protocol', async (t) => {
  for (const f of ['docs/README.md', 'docs/architecture.md', 'docs/protocol.md']) t.ok(DOCS.includes(f), `${f} exists`);
  const index = links('docs/README.md');
  for (const f of DOCS.filter((d) => d.startsWith('docs/') && d !== 'docs/README.md')) {
    t.ok(index.includes(f.slice('docs/'.length)), `docs/README.md links ${f}`);
  }
});

t.test('docs - code comments cite documents of the repository, not DESIGN.md', async (t) => {
  const citing = CODE_DIRS.flatMap((d) => sources(join(ROOT, d)))
    .filter((f) => f !== import.meta.filename && readFileSync(f, 'utf8').includes('DESIGN.md'));
  t.strictSame(citing.map((f) => relative(ROOT, f)), [], 'no source file mentions DESIGN.md');
});
