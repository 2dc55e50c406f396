// The Vercel AI SDK's own chat client against a running chatbot server.
//
// pytest (tests/integration/test_ai_sdk.py) starts the server and the fake upstream, then
// runs one scenario of this script:
//
//   node chat_client.mjs <scenario> <json options>
//
// The script talks to the server only through the `ai` package (its chat, the one
// `useChat` wraps, over DefaultChatTransport; or the transport's sendMessages and
// reconnectToStream with readUIMessageStream), asserts what the SDK made of the stream,
// prints `RESULT <json>` for pytest to compare with the server's history, and exits
// non-zero when an assertion fails. `READY <step>` lines tell pytest when to act.

import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import { AbstractChat, DefaultChatTransport, readUIMessageStream } from 'ai';

const [scenario, rawOptions] = process.argv.slice(2);
const options = JSON.parse(rawOptions);
// `headers`: the caller's `Authorization` on a server with sign-in.
const transport = new DefaultChatTransport({ api: options.api, headers: options.headers });
const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Wait until pytest says go (a line on stdin) after it was told we are at `step`. */
async function handOver(step) {
  console.log(`READY ${step}`);
  const { value } = await stdinLines.next();
  assert.equal(value, 'GO', `pytest answered ${value} at ${step}`);
}

/** The chat state React's, Vue's and Svelte's chats keep, as plain arrays. */
class PlainChatState {
  status = 'ready';
  error = undefined;
  messages = [];
  pushMessage = message => {
    this.messages = [...this.messages, message];
  };
  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
  };
  replaceMessage = (index, message) => {
    this.messages = this.messages.map((old, i) => (i === index ? this.snapshot(message) : old));
  };
  snapshot = thing => structuredClone(thing);
}

/** `useChat`'s chat without a UI framework: sendMessage, regenerate and edits as it does. */
class Chat extends AbstractChat {
  constructor() {
    super({ id: options.chatId, transport, state: new PlainChatState() });
  }

  /** Run one of the chat's actions and return the reply it ended with. */
  async reply(action) {
    await action;
    assert.equal(this.status, 'ready', `the chat ended in ${this.status}: ${this.error}`);
    return this.lastMessage;
  }
}

function userMessage(id, text) {
  return { id, role: 'user', parts: [{ type: 'text', text }] };
}

function textOf(message) {
  return message.parts
    .filter(part => part.type === 'text')
    .map(part => part.text)
    .join('');
}

function routeOf(message) {
  return message.parts.find(part => part.type === 'data-route')?.data;
}

async function lastSnapshot(snapshots) {
  let last;
  for await (const message of snapshots) last = message;
  assert.ok(last, 'the stream produced no message');
  return last;
}

function assertCompleted(message, expected) {
  assert.equal(message.role, 'assistant');
  assert.equal(textOf(message), expected.text);
  assert.deepEqual(routeOf(message), { mode: expected.mode });
  assert.equal(message.metadata?.outcome, 'completed');
  assert.equal(message.metadata?.mode, expected.mode);
  assert.equal(message.parts.find(part => part.type === 'text')?.state, 'done');
}

const scenarios = {
  // Two turns of one chat, then useChat's regenerate() of the last reply.
  async conversation() {
    const [first, second, regenerated] = options.replies;
    const chat = new Chat();
    const reply1 = await chat.reply(chat.sendMessage({ text: options.prompts[0] }));
    assertCompleted(reply1, first);
    const reply2 = await chat.reply(chat.sendMessage({ text: options.prompts[1] }));
    assertCompleted(reply2, second);
    assert.notEqual(reply2.id, reply1.id);

    const reply3 = await chat.reply(chat.regenerate());
    assertCompleted(reply3, regenerated);
    assert.notEqual(reply3.id, reply2.id);
    assert.equal(chat.messages.length, 4);
    return { replies: [reply1, reply2, reply3].map(textOf), messages: chat.messages.map(textOf) };
  },

  // Regenerating an earlier reply, then editing the first message, by their ids.
  async branches() {
    const [first, second, regenerated, edited] = options.replies;
    const chat = new Chat();
    const reply1 = await chat.reply(chat.sendMessage({ text: options.prompts[0] }));
    assertCompleted(reply1, first);
    assertCompleted(await chat.reply(chat.sendMessage({ text: options.prompts[1] })), second);

    const again = await chat.reply(chat.regenerate({ messageId: reply1.id }));
    assertCompleted(again, regenerated);
    assert.deepEqual(chat.messages.map(textOf), [options.prompts[0], regenerated.text]);
    await handOver('regenerated');

    const firstPrompt = chat.messages[0];
    const afterEdit = await chat.reply(
      chat.sendMessage({ text: options.editedPrompt, messageId: firstPrompt.id }),
    );
    assertCompleted(afterEdit, edited);
    assert.equal(chat.messages[0].id, firstPrompt.id, 'an edit keeps the message id');
    return { messages: chat.messages.map(textOf) };
  },

  // A connection dropped mid-reply (a fetch abort, as on a reload), then the SDK's resume:
  // the replayed stream carries the rest of the same message.
  async reconnect() {
    const abort = new AbortController();
    const stream = await transport.sendMessages({
      chatId: options.chatId,
      messages: [userMessage('u1', options.prompt)],
      trigger: 'submit-message',
      messageId: undefined,
      abortSignal: abort.signal,
    });
    let before;
    for await (const message of readUIMessageStream({ stream })) {
      before = message;
      if (textOf(message) === options.textBeforeCut) break;
    }
    abort.abort();
    assert.equal(textOf(before), options.textBeforeCut);

    const resumed = await transport.reconnectToStream({ chatId: options.chatId });
    assert.ok(resumed, 'the running reply answered 204');
    // The upstream is held until now: everything after this point is new to the client.
    await handOver('reconnected');
    const after = await lastSnapshot(readUIMessageStream({ stream: resumed }));
    assert.equal(after.id, before.id, 'the resume is the same message');
    assertCompleted(after, { text: options.fullText, mode: options.mode });
    assert.ok(textOf(after).length > textOf(before).length, 'the resume yields the rest');

    // Finished: nothing to resume any more.
    assert.equal(await transport.reconnectToStream({ chatId: options.chatId }), null);
    return { before: textOf(before), after: textOf(after) };
  },

  // One message and its reply, whatever it says (the server's history is compared).
  async oneTurn() {
    const chat = new Chat();
    const reply = await chat.reply(chat.sendMessage({ text: options.prompt }));
    assert.equal(reply.metadata?.outcome, 'completed');
    return { text: textOf(reply) };
  },

  // A message the server refuses before any reply (a quota, say): the chat's error.
  async refused() {
    const chat = new Chat();
    await chat.sendMessage({ text: options.prompt });
    assert.equal(chat.status, 'error', 'the chat did not end in an error');
    return { error: chat.error.message };
  },

  // Another user's chat of the same id: nothing of theirs to resume.
  async nothingToResume() {
    assert.equal(await transport.reconnectToStream({ chatId: options.chatId }), null);
    return { resumed: null };
  },

  // The upstream fails mid-reply: the SDK raises the error, the message keeps the text
  // that was written and says why it ended.
  async failure() {
    const stream = await transport.sendMessages({
      chatId: options.chatId,
      messages: [userMessage('u1', options.prompt)],
      trigger: 'submit-message',
      messageId: undefined,
      abortSignal: undefined,
    });
    let last;
    let raised;
    try {
      for await (const message of readUIMessageStream({ stream, terminateOnError: true })) {
        last = message;
      }
    } catch (error) {
      raised = error;
    }
    assert.ok(raised instanceof Error, 'the SDK raised no error');
    assert.equal(textOf(last), options.textBeforeFailure);
    assert.equal(last.metadata?.outcome, 'failed');
    assert.equal(raised.message, last.metadata.error.message);
    return { error: raised.message, code: last.metadata.error.code };
  },
};

try {
  const result = await scenarios[scenario]();
  console.log(`RESULT ${JSON.stringify(result)}`);
  process.exit(0);
} catch (error) {
  console.error(error);
  process.exit(1);
}
