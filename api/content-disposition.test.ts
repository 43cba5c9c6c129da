import t from 'tap';
import { cleanFileName, contentDisposition } from './content-disposition.ts';

t.test('content disposition - ASCII fallback and the exact UTF-8 name', async (t) => {
  t.equal(contentDisposition('attachment', 'report.pdf'), `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`);
  t.equal(contentDisposition('inline', 'café "1".png'), `inline; filename="cafe _1_.png"; filename*=UTF-8''caf%C3%A9%20%221%22.png`);
  t.equal(contentDisposition('attachment', undefined), 'attachment');
  t.equal(contentDisposition('attachment', '☕'), `attachment; filename="file"; filename*=UTF-8''%E2%98%95`);
});

t.test('content disposition - uploaded names lose paths and controls', async (t) => {
  t.equal(cleanFileName('../../etc/passwd'), 'passwd');
  t.equal(cleanFileName('C:\\Users\\me\\cat.png'), 'cat.png');
  t.equal(cleanFileName('evil\u202Egnp.exe'), 'evilgnp.exe', 'no right-to-left override');
  t.equal(cleanFileName('a\u0000b\nc.txt'), 'abc.txt');
  t.equal(cleanFileName('..'), undefined);
  t.equal(cleanFileName(''), undefined);
  t.equal(cleanFileName('x'.repeat(300))?.length, 255);
});
