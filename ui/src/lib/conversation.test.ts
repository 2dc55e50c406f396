import { describe, expect, it } from "vitest";

import {
  chatReducer,
  type ChatStore,
  conversationReducer,
  type ConversationAction,
  type ConversationState,
  emptyConversation,
} from "./conversation";
import type { EndValue } from "./protocol";

function run(actions: ConversationAction[], state = emptyConversation()): ConversationState {
  return actions.reduce(conversationReducer, state);
}

const end = (content: string, mode = "answer_question"): EndValue => ({
  item: { role: "assistant", content, type: "text" },
  mode,
  timings: { first_delta_ms: 5, total_ms: 50 },
});

const start = (turnId = "a1", prompt = "hello"): ConversationAction => ({
  type: "turnStarted",
  turnId,
  userId: `u-${turnId}`,
  prompt,
});

describe("conversationReducer", () => {
  it("loads history", () => {
    const state = run([
      { type: "historyRequested" },
      {
        type: "historyLoaded",
        items: [
          { role: "user", content: "q", type: "text" },
          { role: "assistant", content: "par", type: "text", interrupted: true },
        ],
      },
    ]);
    expect(state.history).toBe("loaded");
    expect(state.created).toBe(true);
    expect(state.messages.map((m) => [m.role, m.content, m.status, m.interrupted])).toEqual([
      ["user", "q", "complete", undefined],
      ["assistant", "par", "complete", true],
    ]);
    expect(new Set(state.messages.map((m) => m.id)).size).toBe(2);
  });

  it("marks a missing conversation and a failed load apart", () => {
    const error = { kind: "http" as const, code: "not_found", message: "nope", retryable: false, status: 404 };
    expect(run([{ type: "historyFailed", error, missing: true }]).history).toBe("missing");
    expect(run([{ type: "historyFailed", error, missing: false }]).history).toBe("failed");
  });

  it("runs a turn: start, history sync, deltas, end", () => {
    let state = run([{ type: "started" }, start("a1", "write a poem")]);
    expect(state.activeTurn).toBe("a1");
    expect(state.messages.map((m) => [m.role, m.content, m.status])).toEqual([
      ["user", "write a poem", "complete"],
      ["assistant", "", "streaming"],
    ]);
    state = run(
      [
        { type: "historySynced", turnId: "a1", items: [{ role: "user", content: "earlier", type: "text" }] },
        { type: "delta", turnId: "a1", text: "Roses " },
        { type: "delta", turnId: "a1", text: "are red" },
      ],
      state,
    );
    expect(state.messages.map((m) => m.content)).toEqual(["earlier", "write a poem", "Roses are red"]);
    expect(state.messages[2]?.status).toBe("streaming");
    state = conversationReducer(state, {
      type: "turnFinished",
      turnId: "a1",
      end: end("Roses are red,\nviolets are blue", "generate_poem"),
    });
    const reply = state.messages[2];
    expect(reply).toMatchObject({
      content: "Roses are red,\nviolets are blue",
      status: "complete",
      mode: "generate_poem",
      timings: { first_delta_ms: 5, total_ms: 50 },
    });
    expect(state.activeTurn).toBeNull();
  });

  it("keeps the mode and timings of earlier replies when the next turn syncs history", () => {
    let state = run([
      start("a1", "poem please"),
      { type: "turnFinished", turnId: "a1", end: end("Roses", "generate_poem") },
    ]);
    const firstReply = state.messages[1];
    state = run(
      [
        start("a2", "more"),
        {
          type: "historySynced",
          turnId: "a2",
          items: [
            { role: "user", content: "poem please", type: "text" },
            { role: "assistant", content: "Roses", type: "text" },
          ],
        },
      ],
      state,
    );
    expect(state.messages[1]).toBe(firstReply);
    expect(state.messages[1]?.mode).toBe("generate_poem");
    expect(state.messages.map((m) => m.content)).toEqual(["poem please", "Roses", "more", ""]);
  });

  it("takes the server's version from the first difference on", () => {
    const error = { kind: "stream" as const, code: "upstream_error", message: "boom", retryable: true };
    let state = run([
      start("a1", "one"),
      { type: "turnFinished", turnId: "a1", end: end("reply one") },
      start("a2", "fails"),
      { type: "turnFailed", turnId: "a2", error },
      start("a3", "three"),
    ]);
    state = conversationReducer(state, {
      type: "historySynced",
      turnId: "a3",
      items: [
        { role: "user", content: "one", type: "text" },
        { role: "assistant", content: "reply one, longer on the server", type: "text", interrupted: true },
      ],
    });
    expect(state.messages.map((m) => [m.content, m.interrupted ?? false])).toEqual([
      ["one", false],
      ["reply one, longer on the server", true],
      ["three", false],
      ["", false],
    ]);
  });

  it("ignores a second prompt while a turn streams", () => {
    const state = run([start("a1"), start("a2")]);
    expect(state.messages).toHaveLength(2);
    expect(state.activeTurn).toBe("a1");
  });

  it("keeps partial text on stop and ignores late frames", () => {
    const state = run([
      start("a1"),
      { type: "delta", turnId: "a1", text: "partial" },
      { type: "turnStopped", turnId: "a1" },
      { type: "delta", turnId: "a1", text: " late" },
      { type: "turnFinished", turnId: "a1", end: end("full") },
    ]);
    expect(state.messages[1]).toMatchObject({ content: "partial", status: "stopped", interrupted: true });
    expect(state.activeTurn).toBeNull();
  });

  it("keeps partial text on error, with the error", () => {
    const error = { kind: "stream" as const, code: "upstream_error", message: "boom", retryable: true };
    const state = run([
      start("a1"),
      { type: "delta", turnId: "a1", text: "par" },
      { type: "turnFailed", turnId: "a1", error },
      { type: "turnFailed", turnId: "a1", error: { ...error, message: "second" } },
    ]);
    expect(state.messages[1]).toMatchObject({ content: "par", status: "failed", error });
    expect(state.activeTurn).toBeNull();
  });

  it("retry keeps a failed turn the server had started (it is stored there)", () => {
    const error = { kind: "stream" as const, code: "upstream_error", message: "x", retryable: true };
    const state = run([
      start("a1", "again"),
      { type: "historySynced", turnId: "a1", items: [] },
      { type: "turnFailed", turnId: "a1", error },
      { type: "turnStarted", turnId: "a2", userId: "u2", prompt: "again", replaces: "a1" },
    ]);
    expect(state.messages.map((m) => [m.content, m.status, m.retried ?? false])).toEqual([
      ["again", "complete", false],
      ["", "failed", true],
      ["again", "complete", false],
      ["", "streaming", false],
    ]);
  });

  it("retry replaces a failed turn the server never saw", () => {
    const error = { kind: "network" as const, code: "network_error", message: "x", retryable: true };
    const state = run([
      { type: "historyLoaded", items: [{ role: "user", content: "old", type: "text" }] },
      start("a1", "again"),
      { type: "turnFailed", turnId: "a1", error },
      { type: "turnStarted", turnId: "a2", userId: "u2", prompt: "again", replaces: "a1" },
    ]);
    expect(state.messages.map((m) => [m.content, m.status])).toEqual([
      ["old", "complete"],
      ["again", "complete"],
      ["", "streaming"],
    ]);
    expect(state.activeTurn).toBe("a2");
  });

  it("does not let a late history load wipe a turn in flight", () => {
    const state = run([
      { type: "historyRequested" },
      start("a1"),
      { type: "historyLoaded", items: [{ role: "user", content: "old", type: "text" }] },
    ]);
    expect(state.messages.map((m) => m.id)).toEqual(["u-a1", "a1"]);
    expect(state.history).toBe("loaded");
  });

  it("shows a reply found on the server after its history, growing", () => {
    const earlier = [
      { role: "user" as const, content: "first?", type: "text" as const },
      { role: "assistant" as const, content: "first.", type: "text" as const },
    ];
    const state = run([
      { type: "historyRequested" },
      { type: "historyLoaded", items: earlier },
      { type: "turnAttached", turnId: "r1", userId: "u-r1", history: earlier, prompt: "second?" },
      { type: "delta", turnId: "r1", text: "sec" },
      { type: "delta", turnId: "r1", text: "ond" },
    ]);
    expect(state.activeTurn).toBe("r1");
    expect(state.messages.map((m) => [m.role, m.content, m.status])).toEqual([
      ["user", "first?", "complete"],
      ["assistant", "first.", "complete"],
      ["user", "second?", "complete"],
      ["assistant", "second", "streaming"],
    ]);
    // Retry and the stored-turn rules treat it as a turn the server started.
    expect(state.messages[3]).toMatchObject({ prompt: "second?", serverStarted: true });
    const done = conversationReducer(state, { type: "turnFinished", turnId: "r1", end: end("second") });
    expect(done.activeTurn).toBeNull();
    expect(done.messages[3]?.status).toBe("complete");
  });

  it("rebuilds a reattached turn replayed from its start, so nothing is doubled", () => {
    const history = [{ role: "user" as const, content: "q", type: "text" as const }];
    const attached: ConversationAction = {
      type: "turnAttached",
      turnId: "r1",
      userId: "u-r1",
      history: [],
      prompt: "again?",
    };
    let state = run([{ type: "started" }, attached, { type: "delta", turnId: "r1", text: "par" }]);
    const ids = state.messages.map((m) => m.id);
    state = run(
      [
        { ...attached, userId: "another", history },
        { type: "delta", turnId: "r1", text: "partial" },
      ],
      state,
    );
    expect(state.messages.map((m) => m.content)).toEqual(["q", "again?", "partial"]);
    expect(state.messages.slice(1).map((m) => m.id)).toEqual(ids);
  });

  it("reattaches this tab's own turn in place when its stream dropped", () => {
    let state = run([{ type: "started" }, start("a1", "mine?"), { type: "historySynced", turnId: "a1", items: [] }]);
    state = run(
      [
        { type: "delta", turnId: "a1", text: "half" },
        { type: "turnAttached", turnId: "a1", userId: "ignored", history: [], prompt: "mine?" },
        { type: "delta", turnId: "a1", text: "half and whole" },
      ],
      state,
    );
    expect(state.messages.map((m) => [m.id, m.content])).toEqual([
      ["u-a1", "mine?"],
      ["a1", "half and whole"],
    ]);
  });

  it("shows a reply that finished just before the page loaded once, as stored", () => {
    const items = [
      { role: "user" as const, content: "q?", type: "text" as const },
      { role: "assistant" as const, content: "done.", type: "text" as const },
    ];
    const loaded = run([{ type: "historyLoaded", items }]);
    const replayed = run(
      [
        { type: "turnAttached", turnId: "r1", userId: "u-r1", history: [], prompt: "q?" },
        { type: "delta", turnId: "r1", text: "done." },
        { type: "turnFinished", turnId: "r1", end: end("done.") },
      ],
      loaded,
    );
    expect(replayed).toBe(loaded);
  });

  it("does not let a reply found on the server replace this tab's own turn", () => {
    const state = run([{ type: "started" }, start("a1", "mine?")]);
    const after = conversationReducer(state, {
      type: "turnAttached",
      turnId: "r9",
      userId: "u-r9",
      history: [],
      prompt: "theirs?",
    });
    expect(after).toBe(state);
  });

  it("replaces a reply it could not follow to the end with the stored history", () => {
    let state = run([
      { type: "started" },
      { type: "turnAttached", turnId: "r1", userId: "u-r1", history: [], prompt: "q?" },
      { type: "delta", turnId: "r1", text: "the whole reply" },
    ]);
    state = conversationReducer(state, {
      type: "turnResynced",
      turnId: "r1",
      items: [
        { role: "user", content: "q?", type: "text" },
        { role: "assistant", content: "the whole reply", type: "text" },
      ],
    });
    expect(state.activeTurn).toBeNull();
    expect(state.messages.map((m) => [m.content, m.status])).toEqual([
      ["q?", "complete"],
      ["the whole reply", "complete"],
    ]);
    expect(state.messages[0]?.id).toBe("u-r1");
  });

  it("ignores empty deltas without making a new state", () => {
    const state = run([start("a1")]);
    expect(conversationReducer(state, { type: "delta", turnId: "a1", text: "" })).toBe(state);
  });
});

describe("chatReducer", () => {
  it("keeps conversations apart", () => {
    let store: ChatStore = {};
    store = chatReducer(store, { appId: "A", ...start("a1", "for A") });
    store = chatReducer(store, { appId: "B", type: "historyLoaded", items: [{ role: "user", content: "for B", type: "text" }] });
    store = chatReducer(store, { appId: "A", type: "delta", turnId: "a1", text: "reply A" });
    expect(store.A?.messages.map((m) => m.content)).toEqual(["for A", "reply A"]);
    expect(store.B?.messages.map((m) => m.content)).toEqual(["for B"]);
  });

  it("forgets a deleted conversation", () => {
    let store: ChatStore = chatReducer({}, { appId: "A", type: "started" });
    store = chatReducer(store, { appId: "A", type: "deleted" });
    expect(store).toEqual({});
  });

  it("returns the same store when nothing changed", () => {
    const store: ChatStore = chatReducer({}, { appId: "A", type: "started" });
    expect(chatReducer(store, { appId: "A", type: "delta", turnId: "nope", text: "x" })).toBe(store);
  });
});
