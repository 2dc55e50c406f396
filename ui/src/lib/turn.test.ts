import { describe, expect, it, vi } from "vitest";

import { ApiError } from "./api";
import type { ConversationAction } from "./conversation";
import { runTurn, type TurnOptions } from "./turn";

const enc = new TextEncoder();
const sse = (obj: unknown) => `data: ${JSON.stringify(obj)}\n\n`;
const endFrame = sse({
  type: "end",
  value: { item: { role: "assistant", content: "Hello!", type: "text" }, mode: "answer_question", timings: { first_delta_ms: 1, total_ms: 2 } },
});

/** A streamed answer whose chunks the test pushes by hand. */
function controllableStream() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
  });
  return {
    response: new Response(body, { headers: { "Content-Type": "text/event-stream; charset=utf-8" } }),
    push: (text: string) => controller.enqueue(enc.encode(text)),
    close: () => controller.close(),
    fail: (error: Error) => controller.error(error),
  };
}

function setup(
  respond: TurnOptions["api"]["respond"],
  extra: Partial<TurnOptions> = {},
  attach: TurnOptions["api"]["attach"] = async () => null,
) {
  const actions: ConversationAction[] = [];
  const controller = new AbortController();
  const create = vi.fn(async () => "app");
  const attachSpy = vi.fn(attach);
  // A branch turn's answer is a prompt's: the same scripted answer serves all three routes.
  const open = () => respond("proj", "app", "hi");
  const edit = vi.fn(open);
  const regenerate = vi.fn(open);
  const respondSpy = vi.fn(respond);
  const options: TurnOptions = {
    api: { respond: respondSpy, edit, regenerate, create, attach: attachSpy },
    projectId: "proj",
    appId: "app",
    request: { kind: "respond", prompt: "hi" },
    turnId: "t1",
    userId: "u1",
    create: false,
    signal: controller.signal,
    dispatch: (a) => actions.push(a),
    ...extra,
  };
  return {
    actions,
    controller,
    create,
    attach: attachSpy,
    routes: { respond: respondSpy, edit, regenerate },
    run: () => runTurn(options),
  };
}

const types = (actions: ConversationAction[]) => actions.map((a) => a.type);

describe("runTurn", () => {
  it("reports history, deltas and the end", async () => {
    const stream = controllableStream();
    const { actions, run } = setup(async () => stream.response);
    const done = run();
    stream.push(sse({ type: "chat_history", value: [] }) + sse({ type: "delta", value: "Hel" }));
    stream.push(": ping\n\n" + sse({ type: "delta", value: "lo!" }) + endFrame);
    stream.close();
    await done;
    expect(types(actions)).toEqual(["historySynced", "delta", "delta", "turnFinished"]);
  });

  it("sends a prompt to the response route", async () => {
    const stream = controllableStream();
    const { routes, run } = setup(async () => stream.response);
    stream.push(endFrame);
    stream.close();
    await run();
    expect(routes.respond).toHaveBeenCalledWith("proj", "app", "hi", expect.any(AbortSignal));
    expect(routes.edit).not.toHaveBeenCalled();
    expect(routes.regenerate).not.toHaveBeenCalled();
  });

  it("runs an edit through the same engine: its route, then the same frames", async () => {
    const stream = controllableStream();
    const { actions, routes, run } = setup(async () => stream.response, {
      request: { kind: "edit", index: 2, prompt: "better question" },
    });
    const done = run();
    stream.push(sse({ type: "chat_history", value: [{ role: "user", content: "q", type: "text" }] }));
    stream.push(sse({ type: "delta", value: "Hel" }) + sse({ type: "delta", value: "lo!" }) + endFrame);
    stream.close();
    expect(await done).toBe("ended");
    expect(routes.edit).toHaveBeenCalledWith("proj", "app", 2, "better question", expect.any(AbortSignal));
    expect(routes.respond).not.toHaveBeenCalled();
    expect(types(actions)).toEqual(["historySynced", "delta", "delta", "turnFinished"]);
  });

  it("runs a regeneration through its route and follows it when the stream drops", async () => {
    const stream = controllableStream();
    const replay = controllableStream();
    const { actions, routes, attach, run } = setup(
      async () => stream.response,
      { request: { kind: "regenerate", index: 1 } },
      async () => replay.response,
    );
    const done = run();
    stream.push(sse({ type: "chat_history", value: [] }) + sse({ type: "delta", value: "Hel" }));
    await vi.waitFor(() => expect(actions).toHaveLength(2));
    stream.fail(new TypeError("network error"));
    replay.push(sse({ type: "chat_history", value: [] }) + sse({ type: "prompt", value: "hi" }));
    replay.push(sse({ type: "delta", value: "Hello!" }) + endFrame);
    replay.close();
    expect(await done).toBe("ended");
    expect(routes.regenerate).toHaveBeenCalledWith("proj", "app", 1, expect.any(AbortSignal));
    expect(attach).toHaveBeenCalledTimes(1);
    expect(types(actions)).toEqual(["historySynced", "delta", "turnAttached", "delta", "turnFinished"]);
  });

  it("reports a refused branch like a refused prompt", async () => {
    const { actions, run } = setup(
      async () => {
        throw new ApiError(422, "invalid_request", "Item 3 is a reply, not a prompt.");
      },
      { request: { kind: "edit", index: 3, prompt: "x" } },
    );
    await run();
    expect(actions).toEqual([
      {
        type: "turnFailed",
        turnId: "t1",
        error: { kind: "http", code: "invalid_request", message: "Item 3 is a reply, not a prompt.", retryable: false, status: 422 },
      },
    ]);
  });

  it("creates the conversation first when asked", async () => {
    const stream = controllableStream();
    const { actions, create, run } = setup(async () => stream.response, { create: true });
    stream.push(endFrame);
    stream.close();
    await run();
    expect(create).toHaveBeenCalledWith("proj", "app");
    expect(types(actions)).toEqual(["created", "turnFinished"]);
  });

  it("reports an error frame, and nothing after it", async () => {
    const stream = controllableStream();
    const { actions, run } = setup(async () => stream.response);
    stream.push(sse({ type: "delta", value: "pa" }));
    stream.push(sse({ type: "error", value: { code: "upstream_error", message: "Upstream said 500", retryable: true } }));
    stream.push(endFrame);
    stream.close();
    await run();
    expect(types(actions)).toEqual(["delta", "turnFailed"]);
    expect(actions[1]).toMatchObject({
      error: { kind: "stream", code: "upstream_error", message: "Upstream said 500", retryable: true },
    });
  });

  it("turns an HTTP error into a failure carrying the server's message", async () => {
    const { actions, run } = setup(async () => {
      throw new ApiError(409, "conversation_busy", "A reply is already streaming.");
    });
    await run();
    expect(actions).toEqual([
      {
        type: "turnFailed",
        turnId: "t1",
        error: { kind: "http", code: "conversation_busy", message: "A reply is already streaming.", retryable: true, status: 409 },
      },
    ]);
  });

  it("reports a network failure", async () => {
    const { actions, run } = setup(async () => {
      throw new TypeError("Failed to fetch");
    });
    await run();
    expect(actions[0]).toMatchObject({ type: "turnFailed", error: { kind: "network", code: "network_error" } });
  });

  it("reports a connection that breaks mid-stream, keeping the deltas", async () => {
    const stream = controllableStream();
    const { actions, run } = setup(async () => stream.response);
    const done = run();
    stream.push(sse({ type: "delta", value: "pa" }));
    await vi.waitFor(() => expect(actions).toHaveLength(1));
    stream.fail(new TypeError("network error"));
    await done;
    expect(types(actions)).toEqual(["delta", "turnFailed"]);
  });

  it("reports a stream that ends without an end frame", async () => {
    const stream = controllableStream();
    const { actions, run } = setup(async () => stream.response);
    stream.push(sse({ type: "delta", value: "pa" }));
    stream.close();
    await run();
    expect(actions[1]).toMatchObject({ type: "turnFailed", error: { code: "stream_incomplete" } });
  });

  it("a stop from elsewhere ends the turn as stopped, not failed", async () => {
    const stream = controllableStream();
    const { actions, run } = setup(async () => stream.response);
    stream.push(sse({ type: "chat_history", value: [] }) + sse({ type: "delta", value: "pa" }));
    stream.push(sse({ type: "error", value: { code: "reply_stopped", message: "Stopped.", retryable: true } }));
    stream.close();
    expect(await run()).toBe("ended");
    expect(types(actions)).toEqual(["historySynced", "delta", "turnStopped"]);
  });

  it("follows the reply through the resume route when the stream drops after it began", async () => {
    const stream = controllableStream();
    const replay = controllableStream();
    const { actions, attach, run } = setup(async () => stream.response, {}, async () => replay.response);
    const done = run();
    stream.push(sse({ type: "chat_history", value: [] }) + sse({ type: "delta", value: "Hel" }));
    await vi.waitFor(() => expect(actions).toHaveLength(2));
    stream.fail(new TypeError("network error"));
    // No id came with the POST's frames: the server replays the turn, which is rebuilt.
    replay.push(sse({ type: "chat_history", value: [] }) + sse({ type: "prompt", value: "hi" }));
    replay.push(sse({ type: "delta", value: "Hello!" }) + endFrame);
    replay.close();
    expect(await done).toBe("ended");
    expect(attach).toHaveBeenCalledWith("proj", "app", null, expect.any(AbortSignal));
    expect(types(actions)).toEqual(["historySynced", "delta", "turnAttached", "delta", "turnFinished"]);
    expect(actions[2]).toMatchObject({ turnId: "t1", prompt: "hi" });
  });

  it("says the reply is gone when the server no longer has it to follow", async () => {
    const stream = controllableStream();
    const { actions, run } = setup(async () => stream.response);
    stream.push(sse({ type: "chat_history", value: [] }) + sse({ type: "delta", value: "pa" }));
    stream.close();
    expect(await run()).toBe("gone");
    expect(types(actions)).toEqual(["historySynced", "delta"]);
  });

  it("reports a response that is not an event stream", async () => {
    const { actions, run } = setup(async () => new Response("<html></html>", { headers: { "Content-Type": "text/html" } }));
    await run();
    expect(actions[0]).toMatchObject({ type: "turnFailed", error: { kind: "protocol" } });
  });

  it("stops on abort, keeping what arrived", async () => {
    const stream = controllableStream();
    const { actions, controller, run } = setup(async () => stream.response);
    const done = run();
    stream.push(sse({ type: "delta", value: "partial" }));
    await vi.waitFor(() => expect(actions).toHaveLength(1));
    controller.abort();
    await done;
    expect(types(actions)).toEqual(["delta", "turnStopped"]);
  });

  it("stops when aborted before the answer arrives", async () => {
    let rejectFetch!: (e: unknown) => void;
    const { actions, controller, run } = setup(() => new Promise((_, reject) => (rejectFetch = reject)));
    const done = run();
    controller.abort();
    rejectFetch(new DOMException("The operation was aborted.", "AbortError"));
    await done;
    expect(types(actions)).toEqual(["turnStopped"]);
  });
});
