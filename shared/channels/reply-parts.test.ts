import t from 'tap';
import { replyParts } from './reply-parts.ts';
import type { Attachment } from '../domain/models.ts';

const file = (id: string, type: Attachment['type'] = 'image') => ({ id, type });

t.test('reply parts - text only is one send, files or not supported', async (t) => {
  t.same(replyParts('hello', []), [{ content: 'hello', media: [] }]);
  t.same(replyParts('hello', [], { perSend: 10, captionMaxChars: 1600 }), [{ content: 'hello', media: [] }]);
});

t.test('reply parts - one file per send: the text is the first one\'s caption when it fits', async (t) => {
  const wa = { perSend: 1, captionMaxChars: 10, uncaptioned: ['audio'] as const };
  t.same(replyParts('look', [file('a'), file('b', 'file')], wa), [
    { content: 'look', media: [file('a')] },
    { content: '', media: [file('b', 'file')] },
  ]);
  t.same(replyParts('x'.repeat(11), [file('a')], wa), [{ content: 'x'.repeat(11), media: [] }, { content: '', media: [file('a')] }], 'too long for a caption: a text send first');
  t.same(replyParts('é'.repeat(10), [file('a')], wa), [{ content: 'é'.repeat(10), media: [file('a')] }], 'the limit counts characters, not bytes');
  t.same(replyParts('listen', [file('a', 'audio'), file('b')], wa), [
    { content: 'listen', media: [] }, { content: '', media: [file('a', 'audio')] }, { content: '', media: [file('b')] },
  ], 'a file kind without captions: the text goes on its own');
});

t.test('reply parts - no captions at all (Messenger): text first, then each file', async (t) => {
  t.same(replyParts('here', [file('a'), file('b')]), [
    { content: 'here', media: [] }, { content: '', media: [file('a')] }, { content: '', media: [file('b')] },
  ]);
});

t.test('reply parts - several files per send (Twilio MMS): groups in order, the text with the first', async (t) => {
  const files = Array.from({ length: 12 }, (_, i) => file(`f${i}`));
  const parts = replyParts('album', files, { perSend: 10, captionMaxChars: 1600 });
  t.same(parts.map((p) => [p.content, p.media.map((m) => m.id)]), [['album', files.slice(0, 10).map((f) => f.id)], ['', ['f10', 'f11']]]);
});

t.test('reply parts - no text: only the files; blank text counts as none', async (t) => {
  t.same(replyParts('', [file('a')], { perSend: 1, captionMaxChars: 1024 }), [{ content: '', media: [file('a')] }]);
  t.same(replyParts('  ', [file('a')]), [{ content: '', media: [file('a')] }]);
});
