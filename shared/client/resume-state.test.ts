import t from 'tap';
import { idAtTime, idTime } from '../ids/snowflake.ts';
import { ResumeState } from './resume-state.ts';
import { RoomCursors } from './room-cursors.ts';
import type { Message } from './types.ts';

function message(roomId: string, messageId: string): Message {
  return {
    messageId, roomId, authorId: 'u', authorName: 'U', content: 'x', type: 'text', timestamp: new Date(idTime(messageId)).toISOString(),
    reactions: {}, replyTo: null, threadId: null, mentions: [], attachments: [], isEdited: false, isDeleted: false, isPinned: false,
    isAnonymous: false,
  };
}

t.test('resume state - nothing to resume from before the first connection', async (t) => {
  let live = false;
  const s = new ResumeState(new RoomCursors(10), new Set(['a']), () => live);
  t.equal(s.text(), '');
  t.equal(s.position('a'), undefined);
  t.equal(s.gapStart('a'), undefined);
  live = true;
  s.welcomed(new Date().toISOString());
  t.ok(s.position('a'), 'once live, a position from the server clock');
});

t.test('resume state - a room resumes from its newest message when that is later than the last moment heard', async (t) => {
  let live = true;
  const cursors = new RoomCursors(10);
  const joined = new Set(['quiet', 'busy']);
  const s = new ResumeState(cursors, joined, () => live);
  // The server's clock runs 60 s ahead of ours.
  s.welcomed(new Date(Date.now() + 60_000).toISOString());
  s.heard();
  live = false;
  s.lost();
  const heardAt = idTime(s.position('quiet')!);
  t.ok(Math.abs(heardAt - (Date.now() + 60_000 - 2000)) < 500, 'the last moment heard, in server time, less a margin');
  const newer = idAtTime(Date.now() + 120_000);
  cursors.acceptMessage(message('busy', newer));
  t.equal(s.position('busy'), newer, 'the newer message id wins');
  t.equal(s.gapStart('busy'), newer);
  t.equal(s.gapStart('quiet'), s.position('quiet'), 'a room without messages: from the last moment heard');
  t.equal(s.text(), `busy:${newer},*:${s.position('quiet')}`, 'rooms ahead of the shared position are listed');
});

t.test('resume state - the fallback position never starts after what the server vouched for', async (t) => {
  const s = new ResumeState(new RoomCursors(10), new Set(['a']), () => true);
  s.welcomed(new Date().toISOString());
  const older = idAtTime(Date.now() - 30_000);
  s.vouched(older);
  t.equal(s.text(), `*:${older}`);
});
