import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createDiskObjects } from './disk-objects.ts';
import { runObjectsContract } from './objects.contract.ts';

const base = mkdtempSync(join(tmpdir(), 'chat-disk-objects-'));
t.teardown(() => rmSync(base, { recursive: true, force: true }));
let dirs = 0;

runObjectsContract(t, { name: 'disk', open: async () => createDiskObjects({ dir: join(base, `objects-${++dirs}`) }) });

t.test('disk objects - a failed put leaves no temporary file behind', async (t) => {
  const dir = join(base, 'leftovers');
  const objects = createDiskObjects({ dir });
  async function* failing() {
    yield Buffer.alloc(1000);
    throw new Error('client went away');
  }
  await t.rejects(objects.put('r/x', failing(), { contentType: 'text/plain' }), /client went away/);
  t.same(readdirSync(join(dir, 'tmp')), []);
});
