import { Readable } from 'node:stream';
import t from 'tap';
import { createS3Objects } from './s3-objects.ts';
import { runObjectsContract } from './objects.contract.ts';
import { s3proxyJar, startS3Proxy, type S3ProxyServer } from '../../test/support/s3proxy-server.ts';

// A real S3-compatible server (S3Proxy, deploy/s3proxy/): started here on a loopback port.
const found = await s3proxyJar();
if ('skip' in found) {
  t.comment(found.skip);
  t.pass(`skipped: ${found.skip}`);
} else {
  const server: S3ProxyServer = await startS3Proxy(found.jar);
  t.teardown(() => server.stop());
  let prefixes = 0;
  runObjectsContract(t, {
    name: 's3 (S3Proxy)',
    open: async () => {
      // one bucket, the namespace of each run its own by key prefix would change keys: a bucket each instead
      void prefixes++;
      return createS3Objects({
        bucket: server.bucket, endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true,
        credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
      });
    },
  });

  t.test('s3 objects - credentials from a frozen config (loadConfig freezes it) work', async (t) => {
    const objects = createS3Objects(Object.freeze({
      bucket: server.bucket, endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true,
      credentials: Object.freeze({ accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey }),
    }));
    const put = await objects.put('frozen/x', Readable.from([Buffer.from('ok')]), { contentType: 'text/plain' }, { size: 2 });
    t.equal(put.size, 2);
    t.equal((await objects.head('frozen/x'))?.size, 2);
    await objects.close();
  });

  t.test('s3 objects - an unreachable server is unavailable, a missing bucket too', async (t) => {
    const wrongBucket = createS3Objects({
      bucket: 'no-such-bucket', endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    });
    await t.rejects(wrongBucket.check(), { code: 'unavailable' });
    await wrongBucket.close();
    const down = createS3Objects({
      bucket: server.bucket, endpoint: 'http://127.0.0.1:1', region: 'us-east-1', forcePathStyle: true,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    });
    await t.rejects(down.head('r/x'), { code: 'unavailable' });
    await down.close();
  });
}
