import { describe, expect, it } from "vitest";

import {
  chatReducer,
  type ChatStore,
  conversationReducer,
  type ConversationAction,
  type ConversationState,
  emptyConversation,
} from "./conversation";
import type { ChatItem, EndValue } from "./protocol";

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
      { type: "historySynced", turnId: "a1", items: [] },
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

const item = (role: "user" | "assistant", content: string, extra: Record<string, unknown> = {}): ChatItem => ({
  role,
  content,
  type: "text",
  ...extra,
});
const mark = (version: number, versions: number, app_id: string) => ({ branch: { version, versions, app_id } });

/** A loaded conversation of two turns, the second prompt having two versions. */
function loaded(): ConversationState {
  return run([
    { type: "historyRequested" },
    {
      type: "historyLoaded",
      items: [
        item("user", "q1"),
        item("assistant", "r1"),
        item("user", "q2 edited", mark(1, 2, "c~1")),
        item("assistant", "r2 for the edit"),
      ],
    },
  ]);
}

describe("branches in the conversation state", () => {
  it("knows each loaded item's index and version mark", () => {
    const state = loaded();
    expect(state.messages.map((m) => m.index)).toEqual([0, 1, 2, 3]);
    expect(state.messages[2]?.branch).toEqual({ version: 1, versions: 2, app_id: "c~1" });
    expect(state.messages.filter((m) => m.branch)).toHaveLength(1);
  });

  it("learns a turn's indices from its frames: the prompt after the history, the reply after it", () => {
    let state = run([{ type: "started" }, start("a1", "q1"), { type: "historySynced", turnId: "a1", items: [] }]);
    expect(state.messages.map((m) => m.index)).toEqual([0, undefined]);
    state = conversationReducer(state, { type: "turnFinished", turnId: "a1", end: end("r1") });
    expect(state.messages.map((m) => m.index)).toEqual([0, 1]);
  });

  it("gives a stopped reply an index only if some of it was written", () => {
    const base = run([{ type: "started" }, start("a1", "q1"), { type: "historySynced", turnId: "a1", items: [] }]);
    const written = run([{ type: "delta", turnId: "a1", text: "par" }, { type: "turnStopped", turnId: "a1" }], base);
    expect(written.messages[1]?.index).toBe(1);
    const nothing = run([{ type: "turnStopped", turnId: "a1" }], base);
    expect(nothing.messages[1]?.index).toBeUndefined();
  });

  it("gives a failed reply no index: the server may store it as a partial reply and an error", () => {
    const error = { kind: "stream" as const, code: "upstream_error", message: "boom", retryable: true };
    const state = run([
      { type: "started" },
      start("a1", "q1"),
      { type: "historySynced", turnId: "a1", items: [] },
      { type: "delta", turnId: "a1", text: "par" },
      { type: "turnFailed", turnId: "a1", error },
    ]);
    expect(state.messages.map((m) => m.index)).toEqual([0, undefined]);
  });

  it("keeps its marks when a chat_history frame carries none, takes those a frame carries", () => {
    let state = loaded();
    const edited = state.messages[2];
    state = run(
      [
        start("a9", "q3"),
        {
          type: "historySynced",
          turnId: "a9",
          items: [item("user", "q1"), item("assistant", "r1"), item("user", "q2 edited"), item("assistant", "r2 for the edit")],
        },
      ],
      state,
    );
    expect(state.messages[2]).toBe(edited);
    expect(state.messages[4]?.index).toBe(4);
    const told = conversationReducer(loaded(), { type: "historyRefreshed", items: [item("user", "q1", mark(0, 3, "c")), item("assistant", "r1")] });
    expect(told.messages[0]?.branch).toEqual({ version: 0, versions: 3, app_id: "c" });
  });

  it("edits a prompt: cuts the transcript there, then streams the new branch's turn", () => {
    let state = conversationReducer(loaded(), {
      type: "branchStarted",
      turnId: "b1",
      userId: "ub1",
      request: { kind: "edit", index: 0, prompt: "q1, better" },
    });
    expect(state.activeTurn).toBe("b1");
    expect(state.messages.map((m) => [m.id, m.content, m.status])).toEqual([
      ["ub1", "q1, better", "complete"],
      ["b1", "", "streaming"],
    ]);
    expect(state.messages[1]?.request).toEqual({ kind: "edit", index: 0, prompt: "q1, better" });
    state = run(
      [
        { type: "historySynced", turnId: "b1", items: [] },
        { type: "delta", turnId: "b1", text: "new r1" },
        { type: "turnFinished", turnId: "b1", end: end("new r1") },
      ],
      state,
    );
    expect(state.messages.map((m) => [m.content, m.index])).toEqual([
      ["q1, better", 0],
      ["new r1", 1],
    ]);
  });

  it("regenerates a reply: keeps its prompt as it is and streams a new reply", () => {
    const before = loaded();
    const state = conversationReducer(before, {
      type: "branchStarted",
      turnId: "b1",
      userId: "unused",
      request: { kind: "regenerate", index: 3 },
    });
    expect(state.messages.slice(0, 3)).toEqual(before.messages.slice(0, 3));
    expect(state.messages[2]).toBe(before.messages[2]);
    expect(state.messages[3]).toMatchObject({ id: "b1", status: "streaming", prompt: "q2 edited", request: { kind: "regenerate", index: 3 } });
    expect(state.messages).toHaveLength(4);
  });

  it("starts no branch the transcript cannot address, nor during a turn", () => {
    const state = loaded();
    const far = { type: "branchStarted" as const, turnId: "b", userId: "u", request: { kind: "edit" as const, index: 7, prompt: "x" } };
    expect(conversationReducer(state, far)).toBe(state);
    const busy = run([start("a1", "more")], state);
    const edit = { ...far, request: { kind: "edit" as const, index: 0, prompt: "x" } };
    expect(conversationReducer(busy, edit)).toBe(busy);
  });

  it("refreshes marks after a branch turn, keeping the messages that did not change", () => {
    let state = conversationReducer(loaded(), {
      type: "branchStarted",
      turnId: "b1",
      userId: "ub1",
      request: { kind: "regenerate", index: 1 },
    });
    state = run(
      [
        { type: "historySynced", turnId: "b1", items: [] },
        { type: "turnFinished", turnId: "b1", end: end("r1 again", "generate_poem") },
      ],
      state,
    );
    const reply = state.messages[1];
    const prompt = state.messages[0];
    state = conversationReducer(state, {
      type: "historyRefreshed",
      items: [item("user", "q1"), item("assistant", "r1 again", mark(1, 2, "c~2"))],
    });
    expect(state.messages[0]).toBe(prompt);
    expect(state.messages[1]).toMatchObject({ id: reply?.id, mode: "generate_poem", branch: { version: 1, versions: 2, app_id: "c~2" } });
  });

  it("refreshes only what comes before a turn that began meanwhile", () => {
    let state = run([start("a9", "q3")], loaded());
    state = conversationReducer(state, {
      type: "historyRefreshed",
      items: [item("user", "q1", mark(0, 2, "c")), item("assistant", "r1"), item("user", "q2 edited", mark(1, 2, "c~1")), item("assistant", "r2 for the edit")],
    });
    expect(state.activeTurn).toBe("a9");
    expect(state.messages.map((m) => m.content)).toEqual(["q1", "r1", "q2 edited", "r2 for the edit", "q3", ""]);
    expect(state.messages[0]?.branch?.versions).toBe(2);
  });

  it("switches versions from the switch's answer: same messages before, the other version after", () => {
    const before = run([{ type: "switchRequested" }], loaded());
    expect(before.switching).toBe(true);
    const state = conversationReducer(before, {
      type: "versionSwitched",
      index: 2,
      items: [
        item("user", "q1"),
        item("assistant", "r1"),
        item("user", "q2", mark(0, 2, "c")),
        // The old version's reply reads like the new one's: still taken from the server.
        item("assistant", "r2 for the edit", { interrupted: true }),
        item("user", "q3"),
        item("assistant", "r3"),
      ],
    });
    expect(state.switching).toBe(false);
    expect(state.messages[0]).toBe(before.messages[0]);
    expect(state.messages[1]).toBe(before.messages[1]);
    expect(state.messages.map((m) => [m.content, m.index, m.branch?.version])).toEqual([
      ["q1", 0, undefined],
      ["r1", 1, undefined],
      ["q2", 2, 0],
      ["r2 for the edit", 3, undefined],
      ["q3", 4, undefined],
      ["r3", 5, undefined],
    ]);
    expect(state.messages[3]).not.toBe(before.messages[3]);
    expect(state.messages[3]?.interrupted).toBe(true);
    // The switched item keeps its key (and its switcher the focus); the rest are new.
    expect(state.messages[2]?.id).toBe(before.messages[2]?.id);
    expect(state.messages[3]?.id).not.toBe(before.messages[3]?.id);
  });

  it("never takes another version's reply for ours, even when both read the same", () => {
    let state = conversationReducer(loaded(), {
      type: "branchStarted",
      turnId: "b1",
      userId: "u",
      request: { kind: "regenerate", index: 3 },
    });
    state = run(
      [
        { type: "historySynced", turnId: "b1", items: [item("user", "q1"), item("assistant", "r1")] },
        { type: "turnFinished", turnId: "b1", end: end("same words", "generate_poem") },
      ],
      state,
    );
    const ours = state.messages[3];
    state = conversationReducer(state, {
      type: "versionSwitched",
      index: 3,
      items: [item("user", "q1"), item("assistant", "r1"), item("user", "q2 edited"), item("assistant", "same words", mark(0, 2, "c~1"))],
    });
    // The badge and timings were the other version's: not shown on this one.
    expect(state.messages[3]).toMatchObject({ content: "same words", id: ours?.id, branch: { version: 0 } });
    expect(state.messages[3]?.mode).toBeUndefined();
    expect(state.messages[3]?.timings).toBeUndefined();
  });

  it("clears the switch when it failed", () => {
    const state = run([{ type: "switchRequested" }, { type: "switchFailed" }], loaded());
    expect(state.switching).toBe(false);
    expect(state.messages).toEqual(loaded().messages.map((m, i) => ({ ...m, id: state.messages[i]!.id })));
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
