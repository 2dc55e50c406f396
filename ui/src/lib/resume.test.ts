import { describe, expect, it, vi } from "vitest";

import { ApiError } from "./api";
import {
  type ConversationAction,
  conversationReducer,
  type ConversationState,
  emptyConversation,
} from "./conversation";
import type { ChatItem } from "./protocol";
import { type FollowOptions, followReply } from "./resume";

const enc = new TextEncoder();

interface ServerFrame {
  type: string;
  value: unknown;
  id?: string;
}

const sse = ({ type, value, id }: ServerFrame) =>
  `${id ? `id: ${id}\n` : ""}data: ${JSON.stringify({ type, value })}\n\n`;

const HISTORY: ChatItem[] = [
  { role: "user", content: "first?", type: "text" },
  { role: "assistant", content: "first.", type: "text" },
];
const TOKENS = ["The ", "reply ", "grows ", "one ", "word ", "at ", "a ", "time."];
const FULL = TOKENS.join("");

/** The frames GET …/stream sends for one turn, ids as the server numbers them. */
function turnFrames(reply = "r1"): ServerFrame[] {
  const events: ServerFrame[] = [
    { type: "prompt", value: "second?" },
    { type: "step", value: "answer_question" },
    ...TOKENS.map((t) => ({ type: "delta", value: t })),
    {
      type: "end",
      value: {
        item: { role: "assistant", content: FULL, type: "text" },
        mode: "answer_question",
        timings: { first_delta_ms: 1, total_ms: 2 },
      },
    },
  ];
  return [
    { type: "chat_history", value: HISTORY },
    ...events.map((e, index) => ({ ...e, id: `${reply}.${index}` })),
  ];
}

/** A response whose body sends `frames`, then ends cleanly or breaks. */
function streamResponse(frames: ServerFrame[], ending: "close" | "break" = "close"): Response {
  const chunks = frames.map((f) => enc.encode(sse(f)));
  // One chunk per read, so a break comes after every frame was read (an error would drop
  // chunks still queued).
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = chunks.shift();
      if (chunk) controller.enqueue(chunk);
      else if (ending === "close") controller.close();
      else controller.error(new TypeError("network error"));
    },
  });
  return new Response(body, { headers: { "Content-Type": "text/event-stream" } });
}

/** A server that answers GET …/stream as ours does: after the given id, only what follows it. */
function resumingServer(frames: ServerFrame[]) {
  return vi.fn(async (_p: string, _a: string, lastId: string | null) => {
    const after = lastId === null ? 0 : frames.findIndex((f) => f.id === lastId) + 1;
    return streamResponse(after === 0 ? frames : frames.slice(after));
  });
}

function follow(extra: Partial<FollowOptions> & Pick<FollowOptions, "api">) {
  const actions: ConversationAction[] = [];
  const controller = new AbortController();
  const done = followReply({
    projectId: "proj",
    appId: "app",
    turnId: "r",
    userId: "u",
    signal: controller.signal,
    dispatch: (a) => actions.push(a),
    sleep: async () => {},
    ...extra,
  });
  return { actions, controller, done };
}

function screen(actions: ConversationAction[]): ConversationState {
  const loaded = conversationReducer(emptyConversation(), { type: "historyLoaded", items: HISTORY });
  return actions.reduce(conversationReducer, loaded);
}

describe("followReply", () => {
  it("shows a running reply after a reload: its history, its prompt, then it grows", async () => {
    const attach = resumingServer(turnFrames());
    const { actions, done } = follow({ api: { attach } });
    expect(await done).toBe("ended");
    expect(actions[0]).toEqual({
      type: "turnAttached",
      turnId: "r",
      userId: "u",
      history: HISTORY,
      prompt: "second?",
    });
    expect(actions.filter((a) => a.type === "delta")).toHaveLength(TOKENS.length);
    expect(actions.at(-1)?.type).toBe("turnFinished");
    const state = screen(actions);
    expect(state.messages.map((m) => m.content)).toEqual(["first?", "first.", "second?", FULL]);
    expect(state.activeTurn).toBeNull();
  });

  it("answers none, and shows nothing, when no reply is being written", async () => {
    const { actions, done } = follow({ api: { attach: async () => null } });
    expect(await done).toBe("none");
    expect(actions).toEqual([]);
  });

  it("uses the answer the page already has before asking again", async () => {
    const attach = vi.fn(async () => null);
    const { done } = follow({ api: { attach }, first: streamResponse(turnFrames()) });
    expect(await done).toBe("ended");
    expect(attach).not.toHaveBeenCalled();
  });

  it("after a drop at any frame, reconnects with the last id: the text is whole and never doubled", async () => {
    const frames = turnFrames();
    for (let cut = 1; cut < frames.length; cut++) {
      for (const ending of ["break", "close"] as const) {
        const attach = resumingServer(frames);
        const first = streamResponse(frames.slice(0, cut), ending);
        const { actions, done } = follow({ api: { attach }, first });
        expect(await done, `cut ${cut} ${ending}`).toBe("ended");
        const lastSeen = frames[cut - 1]!.id ?? null;
        expect(attach).toHaveBeenCalledWith("proj", "app", lastSeen, expect.any(AbortSignal));
        const state = screen(actions);
        expect(state.messages.map((m) => m.content), `cut ${cut} ${ending}`).toEqual([
          "first?",
          "first.",
          "second?",
          FULL,
        ]);
      }
    }
  });

  it("rebuilds the turn when the server replays it from the start", async () => {
    const frames = turnFrames();
    // Cut after three deltas; the server no longer knows the id and replays everything.
    const attach = vi.fn(async () => streamResponse(frames));
    const { actions, done } = follow({ api: { attach }, first: streamResponse(frames.slice(0, 6), "break") });
    expect(await done).toBe("ended");
    expect(actions.filter((a) => a.type === "turnAttached")).toHaveLength(2);
    expect(screen(actions).messages.at(-1)?.content).toBe(FULL);
  });

  it("waits longer between each reconnect, and starts over once frames flow again", async () => {
    const frames = turnFrames();
    const waits: number[] = [];
    let calls = 0;
    const attach = vi.fn(async (_p: string, _a: string, lastId: string | null) => {
      calls += 1;
      if (calls <= 2) throw new TypeError("Failed to fetch");
      if (calls === 3) return streamResponse(frames.slice(0, 5), "break");
      if (calls === 4) throw new TypeError("Failed to fetch");
      return resumingServer(frames)("proj", "app", lastId);
    });
    const { done } = follow({
      api: { attach },
      reconnectDelaysMs: [10, 20, 40],
      sleep: async (ms) => void waits.push(ms),
    });
    expect(await done).toBe("ended");
    expect(waits).toEqual([10, 20, 10, 20]);
  });

  it("gives the turn up as gone when the server no longer has the reply", async () => {
    const frames = turnFrames();
    const attach = vi.fn(async () => null);
    const { actions, done } = follow({ api: { attach }, first: streamResponse(frames.slice(0, 5), "break") });
    expect(await done).toBe("gone");
    expect(actions.some((a) => a.type === "turnFinished" || a.type === "turnFailed")).toBe(false);
  });

  it("gives the turn up as gone when every reconnect fails", async () => {
    const attach = vi.fn(async () => {
      throw new TypeError("Failed to fetch");
    });
    const { done } = follow({
      api: { attach },
      first: streamResponse(turnFrames().slice(0, 5), "break"),
      reconnectDelaysMs: [1, 1, 1],
    });
    expect(await done).toBe("gone");
    expect(attach).toHaveBeenCalledTimes(3); // one after each wait
  });

  it("fails the turn on an error a retry cannot fix", async () => {
    const attach = vi.fn(async () => {
      throw new ApiError(401, "unauthorized", "Key needed.");
    });
    const { actions, done } = follow({ api: { attach }, first: streamResponse(turnFrames().slice(0, 5), "break") });
    expect(await done).toBe("ended");
    expect(actions.at(-1)).toMatchObject({ type: "turnFailed", error: { kind: "http", status: 401 } });
  });

  it("shows a stop from elsewhere as stopped, keeping the text", async () => {
    const frames = turnFrames().slice(0, 6);
    frames.push({ type: "error", value: { code: "reply_stopped", message: "Stopped.", retryable: true }, id: "r1.99" });
    const { actions, done } = follow({ api: { attach: async () => null }, first: streamResponse(frames) });
    expect(await done).toBe("ended");
    const reply = screen(actions).messages.at(-1);
    expect(reply).toMatchObject({ status: "stopped", interrupted: true, content: "The reply grows " });
  });

  it("stops when aborted, keeping what arrived", async () => {
    let push!: (f: ServerFrame) => void;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        push = (f) => c.enqueue(enc.encode(sse(f)));
      },
    });
    const first = new Response(body, { headers: { "Content-Type": "text/event-stream" } });
    const { actions, controller, done } = follow({ api: { attach: async () => null }, first });
    for (const f of turnFrames().slice(0, 4)) push(f);
    await vi.waitFor(() => expect(actions).toHaveLength(2));
    controller.abort();
    expect(await done).toBe("ended");
    expect(actions.map((a) => a.type)).toEqual(["turnAttached", "delta", "turnStopped"]);
  });
});
