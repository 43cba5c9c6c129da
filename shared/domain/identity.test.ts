import t from 'tap';
import { canonicalId, canonicalName } from './identity.ts';

t.test('identity - ids that look alike are one id; ids that hide characters are refused', async (t) => {
  t.equal(canonicalId('admin', 'id'), 'admin');
  t.equal(canonicalId('ａｄｍｉｎ', 'id'), 'admin', 'fullwidth folds to ASCII (NFKC)');
  t.equal(canonicalId('ﬁle', 'id'), 'file', 'ligatures fold');
  t.equal(canonicalId('e\u0301', 'id'), 'é', 'combining sequences compose');
  for (const bad of ['adm\u200bin', 'admin\u202e', '\u2066admin', 'ad min', 'admin\t', '\u00a0admin', 'ad\u2060min', '\ufeffadmin', '', 'x'.repeat(129)]) {
    t.throws(() => canonicalId(bad, 'the user id'), { code: 'bad_request', message: /the user id/ }, JSON.stringify(bad));
  }
});

t.test('identity - names: NFC, trimmed, no bidi controls, something visible', async (t) => {
  t.equal(canonicalName('  Alice Liddell ', 'name'), 'Alice Liddell');
  t.equal(canonicalName('Cafe\u0301', 'name'), 'Café');
  t.equal(canonicalName('ｆｕｌｌ', 'name'), 'ｆｕｌｌ', 'names keep their width (display text, not identity)');
  for (const bad of ['\u200b\u200b\u200b', '\u200b \u3164', '   ', 'evil\u202etxt.exe', 'a\u2067b', '\u2800\u2800']) {
    t.throws(() => canonicalName(bad, 'the room name'), { code: 'bad_request', message: /the room name/ }, JSON.stringify(bad));
  }
});
