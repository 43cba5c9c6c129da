import t from 'tap';
import { mayTriggerAi, parseAiCommand } from './triggers.ts';
import { moderate } from './moderation.ts';

t.test('ai triggers - @ai and @assistant at the start, in any case; the seed phrases alone do not trigger', async (t) => {
  for (const yes of ['@ai help me with tests', '@AI', '@assistant what is NATS?', '@ai: translate fr: hi', '@Assistant, summarize']) {
    t.ok(mayTriggerAi(yes), yes);
  }
  for (const no of ['Can you explain this?', 'Summarize this...', 'Translate: hola', ' @ai leading space', '@aiden hi', '@assistants', 'hi @ai', '']) {
    t.notOk(mayTriggerAi(no), JSON.stringify(no));
  }
});

t.test('ai triggers - commands after the address', async (t) => {
  t.same(parseAiCommand('@ai summarize'), { task: 'summarize', text: '' });
  t.same(parseAiCommand('@ai Summarize this...'), { task: 'summarize', text: '' }, 'the seed\'s phrase after the address');
  t.same(parseAiCommand('@ai summarize the last 20 messages'), { task: 'summarize', text: '', count: 20 });
  t.same(parseAiCommand('@ai summarize 5'), { task: 'summarize', text: '', count: 5 });
  t.same(parseAiCommand('@ai translate fr: good morning'), { task: 'translate', text: 'good morning', language: 'fr' });
  t.same(parseAiCommand('@ai translate to German: good morning'), { task: 'translate', text: 'good morning', language: 'German' });
  t.same(parseAiCommand('@ai Translate: hola'), { task: 'translate', text: 'hola', language: 'English' });
  t.same(parseAiCommand('@ai sentiment'), { task: 'sentiment', text: '' });
  t.same(parseAiCommand('@assistant can you explain raft?'), { task: 'answer', text: 'can you explain raft?' });
  t.same(parseAiCommand('@ai'), { task: 'answer', text: '' });
});

t.test('moderation - whole words and phrases, any case; clean text is clean', async (t) => {
  t.same(moderate('You are an IDIOT.'), { flagged: true, categories: ['abuse'] });
  t.same(moderate('I will  kill   you'), { flagged: true, categories: ['threat'] });
  t.same(moderate('shit, free crypto here'), { flagged: true, categories: ['profanity', 'spam'] });
  t.same(moderate('the idiotic assumption of scunthorpe'), { flagged: false, categories: [] }, 'not inside other words');
  t.same(moderate('hello team'), { flagged: false, categories: [] });
});
