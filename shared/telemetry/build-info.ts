import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** What this process runs: reported by /info and /health/detailed, and on traces as service.version. */
export interface BuildInfo {
  /** The package version. */
  version: string;
  /** The git commit the build was made from, when known. */
  commit: string | undefined;
  /** The commit when known, else the version: what tells two builds apart. */
  build: string;
}

const ROOT = resolve(import.meta.dirname, '../..');
/** Written by an image build (the checkout's .git is not in the image): `{"commit":"<sha>"}`. */
export const BUILD_INFO_FILE = 'build-info.json';
const SHA = /^[0-9a-f]{7,64}$/;

let cached: BuildInfo | undefined;

/**
 * Read once: the commit comes from build-info.json when an image build wrote it, else from the
 * checkout's git (a development run), else it is unknown and `build` is the version.
 */
export function buildInfo(): BuildInfo {
  if (cached) return cached;
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const commit = commitFromFile() ?? commitFromGit();
  cached = { version, commit, build: commit ?? version };
  return cached;
}

function commitFromFile(): string | undefined {
  let text: string;
  try {
    text = readFileSync(join(ROOT, BUILD_INFO_FILE), 'utf8');
  } catch {
    return undefined; // no image build wrote one
  }
  const commit = (JSON.parse(text) as { commit?: unknown }).commit;
  return typeof commit === 'string' && SHA.test(commit) ? commit : undefined;
}

function commitFromGit(): string | undefined {
  try {
    const out = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'], timeout: 2000 }).toString().trim();
    return SHA.test(out) ? out : undefined;
  } catch {
    return undefined; // not a checkout, or no git here: the version stands in
  }
}
