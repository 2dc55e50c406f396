// The Vercel AI SDK's own chat client against a running chatbot server.
//
// pytest (tests/integration/test_ai_sdk.py) starts the server and the fake upstream, then
// runs one scenario of this script:
//
//   node chat_client.mjs <scenario> <json options>
//
// The script talks to the server only through the `ai` package (DefaultChatTransport's
// sendMessages and reconnectToStream, readUIMessageStream), asserts what the SDK made of
// the stream, prints `RESULT <json>` for pytest to compare with the server's history, and
// exits non-zero when an assertion fails. `READY <step>` lines tell pytest when to act.

import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import { DefaultChatTransport, readUIMessageStream } from 'ai';

const [scenario, rawOptions] = process.argv.slice(2);
const options = JSON.parse(rawOptions);
const transport = new DefaultChatTransport({ api: options.api });
const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Wait until pytest says go (a line on stdin) after it was told we are at `step`. */
async function handOver(step) {
  console.log(`READY ${step}`);
  const { value } = await stdinLines.next();
  assert.equal(value, 'GO', `pytest answered ${value} at ${step}`);
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

/** Send the chat and read the reply to its end, as the UI message the SDK assembled. */
async function send(messages, { trigger = 'submit-message', messageId } = {}) {
  const stream = await transport.sendMessages({
    chatId: options.chatId,
    messages,
    trigger,
    messageId,
    abortSignal: undefined,
  });
  return lastSnapshot(readUIMessageStream({ stream, terminateOnError: true }));
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
  // Three turns of one chat: a reply, a second message that continues the conversation,
  // then regenerate-message replacing the second reply.
  async conversation() {
    const [first, second, regenerated] = options.replies;
    const messages = [userMessage('u1', options.prompts[0])];
    const reply1 = await send(messages);
    assertCompleted(reply1, first);

    messages.push(reply1, userMessage('u2', options.prompts[1]));
    const reply2 = await send(messages);
    assertCompleted(reply2, second);
    assert.notEqual(reply2.id, reply1.id);

    // What useChat's regenerate() sends: the chat without the reply being replaced.
    const reply3 = await send(messages, {
      trigger: 'regenerate-message',
      messageId: reply2.id,
    });
    assertCompleted(reply3, regenerated);
    assert.notEqual(reply3.id, reply2.id);
    return { replies: [reply1, reply2, reply3].map(textOf), ids: [reply1.id, reply3.id] };
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
