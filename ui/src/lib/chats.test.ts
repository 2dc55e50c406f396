import { afterEach, describe, expect, it, vi } from "vitest";

import { chatFor, stopChat } from "./chats";
import { stopReply } from "./queries";

vi.mock("./queries", () => ({
  stopReply: vi.fn(),
  refreshConversations: vi.fn(async () => undefined),
  historyQuery: (projectId: string, appId: string) => ({ queryKey: ["history", projectId, appId] }),
  queryClient: { fetchQuery: vi.fn(async () => Promise.reject(new Error("not in this test"))) },
}));

/** A `/api/chat` answer whose UI message stream parts the test writes one by one. */
function serverStream() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  const encoder = new TextEncoder();
  let signal: AbortSignal | undefined;
  const fetch = vi.fn(async (_url: RequestInfo | URL, init?: RequestInit) => {
    signal = init?.signal ?? undefined;
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  vi.stubGlobal("fetch", fetch);
  return {
    fetch,
    aborted: () => Boolean(signal?.aborted),
    write: (part: object) => controller.enqueue(encoder.encode(`data: ${JSON.stringify(part)}\n\n`)),
    end: () => {
      controller.enqueue(encoder.encode("data: [DONE]\n\n"));
      controller.close();
    },
  };
}

const until = (check: () => boolean) => vi.waitFor(() => expect(check()).toBe(true));
let chatCount = 0;

afterEach(() => {
  vi.unstubAllGlobals();
  vi.mocked(stopReply).mockReset();
});

describe("stopChat", () => {
  it("sends the stop again once the turn begins when the server had none to stop yet", async () => {
    const server = serverStream();
    const chat = chatFor("p", `early-${chatCount++}`, []);
    const sending = chat.sendMessage({ text: "a long answer, please" });
    await until(() => server.fetch.mock.calls.length === 1 && chat.status === "submitted");

    // Before the turn begins, the server has nothing to stop (409); once it began, it stops it.
    vi.mocked(stopReply).mockResolvedValueOnce(false).mockImplementationOnce(async () => {
      server.write({ type: "message-metadata", messageMetadata: { outcome: "stopped" } });
      server.write({ type: "abort" });
      server.end();
      return true;
    });
    const stopping = stopChat(chat, "p");
    await until(() => vi.mocked(stopReply).mock.calls.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(vi.mocked(stopReply)).toHaveBeenCalledTimes(1); // nothing sent again before the start

    server.write({ type: "start", messageId: "reply-1", messageMetadata: { prompt: "a long answer, please" } });
    await stopping;
    await sending;
    expect(vi.mocked(stopReply).mock.calls).toEqual([
      ["p", chat.id],
      ["p", chat.id],
    ]);
    // The reply ended on the server's abort, not by dropping the request here.
    expect(server.aborted()).toBe(false);
    expect(chat.status).toBe("ready");
    expect(chat.messages.at(-1)).toMatchObject({ id: "reply-1", role: "assistant", metadata: { outcome: "stopped" } });
  });

  it("stops on the server once, with the turn already begun", async () => {
    const server = serverStream();
    const chat = chatFor("p", `begun-${chatCount++}`, []);
    const sending = chat.sendMessage({ text: "hello" });
    server.write({ type: "start", messageId: "reply-2" });
    server.write({ type: "text-start", id: "text" });
    server.write({ type: "text-delta", id: "text", delta: "Partial" });
    await until(() => chat.status === "streaming");
    vi.mocked(stopReply).mockImplementationOnce(async () => {
      server.write({ type: "text-end", id: "text" });
      server.write({ type: "abort" });
      server.end();
      return true;
    });
    await stopChat(chat, "p");
    await sending;
    expect(vi.mocked(stopReply)).toHaveBeenCalledTimes(1);
    expect(server.aborted()).toBe(false);
  });

  it("drops the request itself when the server has no turn to stop and it has begun", async () => {
    const server = serverStream();
    const chat = chatFor("p", `ended-${chatCount++}`, []);
    const sending = chat.sendMessage({ text: "hello" });
    server.write({ type: "start", messageId: "reply-3" });
    await until(() => chat.messages.at(-1)?.id === "reply-3");
    vi.mocked(stopReply).mockResolvedValue(false);
    await stopChat(chat, "p");
    await sending;
    expect(vi.mocked(stopReply)).toHaveBeenCalledTimes(1);
    expect(server.aborted()).toBe(true);
    expect(chat.status).toBe("ready");
  });
});
