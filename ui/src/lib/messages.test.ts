import { APICallError } from "ai";
import { describe, expect, it } from "vitest";

import {
  branchTargets,
  type ChatMessage,
  describeFailure,
  fromHistory,
  lastPrompt,
  mergeHistory,
  shownBranch,
  switchedTo,
  textOf,
  toRows,
} from "./messages";
import type { ChatItem } from "./protocol";

const item = (role: ChatItem["role"], content: string, extra: Partial<ChatItem> = {}): ChatItem => ({
  role,
  content,
  type: "text",
  ...extra,
});

function message(id: string, role: ChatMessage["role"], text: string, metadata?: ChatMessage["metadata"]): ChatMessage {
  return { id, role, parts: [{ type: "text", text }], metadata };
}

const HISTORY = [item("user", "q1"), item("assistant", "a1"), item("user", "q2"), item("assistant", "a2")];

describe("fromHistory", () => {
  it("numbers the items and carries their marks", () => {
    const marked = item("user", "q", { branch: { version: 1, versions: 2, app_id: "c~1" } });
    const messages = fromHistory([item("user", "p"), item("assistant", "r", { interrupted: true }), marked], 4);
    expect(messages.map((m) => m.metadata?.index)).toEqual([4, 5, 6]);
    expect(messages[1]!.metadata?.interrupted).toBe(true);
    expect(messages[2]!.metadata?.branch?.app_id).toBe("c~1");
    expect(textOf(messages[2]!)).toBe("q");
    expect(new Set(messages.map((m) => m.id)).size).toBe(3);
  });
});

describe("mergeHistory", () => {
  it("keeps our messages (keys, mode, timings) where the history agrees, with its marks", () => {
    const live = message("r2", "assistant", "a2", { outcome: "completed", mode: "generate_poem" });
    const local = [...fromHistory(HISTORY.slice(0, 2)), message("u2", "user", "q2"), live];
    const merged = mergeHistory(local, HISTORY);
    expect(merged.map((m) => m.id)).toEqual([local[0]!.id, local[1]!.id, "u2", "r2"]);
    expect(merged[3]!.metadata).toMatchObject({ index: 3, mode: "generate_poem", outcome: "completed" });
  });

  it("takes a resumed turn's prompt from the history, keeping the resumed reply", () => {
    const resumed = message("r2", "assistant", "a2", { prompt: "q2", outcome: "stopped" });
    const merged = mergeHistory([...fromHistory(HISTORY.slice(0, 2)), resumed], [
      ...HISTORY.slice(0, 3),
      item("assistant", "a2", { interrupted: true }),
    ]);
    expect(merged.map(textOf)).toEqual(["q1", "a1", "q2", "a2"]);
    expect(merged[3]).toMatchObject({ id: "r2", metadata: { index: 3, interrupted: true, outcome: "stopped" } });
    expect(merged[2]!.metadata?.index).toBe(2);
  });

  it("replaces what differs with the stored items, and drops a live failure's error", () => {
    const failed = message("f", "assistant", "half", {
      outcome: "failed",
      error: { code: "upstream_stream_cut", message: "cut", retryable: true },
    });
    const merged = mergeHistory([message("u", "user", "q"), failed, message("u2", "user", "again")], [
      item("user", "q"),
      item("assistant", "half", { interrupted: true }),
      item("assistant", "The upstream cut the reply.", { type: "error" }),
      item("user", "again"),
    ]);
    expect(merged.map((m) => m.metadata?.index)).toEqual([0, 1, 2, 3]);
    expect(merged[1]!.metadata?.error).toBeUndefined();
    expect(merged[1]!.metadata?.outcome).toBeUndefined();
    expect(merged[2]!.metadata?.type).toBe("error");
    expect(merged[3]!.id).toBe("u2");
  });

  it("keeps a reply stopped before any text, which the server does not store", () => {
    const stopped = message("s", "assistant", "", { outcome: "stopped" });
    const merged = mergeHistory([message("u", "user", "q"), stopped], [item("user", "q")]);
    expect(merged.map((m) => m.id)).toEqual(["u", "s"]);
  });
});

describe("switchedTo", () => {
  it("shows the other version from the index on, the switched message keeping its key", () => {
    const local = fromHistory(HISTORY);
    const other = [item("user", "q1"), item("assistant", "a1"), item("user", "q2 edited", { branch: { version: 1, versions: 2, app_id: "c~1" } }), item("assistant", "b2")];
    const shown = switchedTo(local, 2, other);
    expect(shown.map(textOf)).toEqual(["q1", "a1", "q2 edited", "b2"]);
    expect(shown.slice(0, 3).map((m) => m.id)).toEqual(local.slice(0, 3).map((m) => m.id));
    expect(shown[3]!.id).not.toBe(local[3]!.id);
    expect(shown[2]!.metadata?.branch?.version).toBe(1);
  });
});

describe("branchTargets", () => {
  it("offers edit on stored prompts and regenerate on each turn's first reply", () => {
    const stored = fromHistory([...HISTORY.slice(0, 2), item("user", "q2"), item("assistant", "part", { interrupted: true }), item("assistant", "failed", { type: "error" })]);
    const targets = branchTargets(stored);
    expect(stored.map((m) => targets.get(m.id))).toEqual(["edit", "regenerate", "edit", "regenerate", undefined]);
  });

  it("stops at the first message the history has not numbered", () => {
    const messages = [...fromHistory(HISTORY.slice(0, 2)), message("u", "user", "new"), message("r", "assistant", "reply")];
    expect([...branchTargets(messages).values()]).toEqual(["edit", "regenerate"]);
  });
});

describe("shownBranch", () => {
  it("is the branch of the last version mark, else the conversation", () => {
    expect(shownBranch(fromHistory(HISTORY), "c")).toBe("c");
    const marked = fromHistory([
      item("user", "q", { branch: { version: 1, versions: 2, app_id: "c~1" } }),
      item("assistant", "r", { branch: { version: 2, versions: 3, app_id: "c~3" } }),
      item("user", "q2"),
    ]);
    expect(shownBranch(marked, "c")).toBe("c~3");
  });
});

describe("toRows", () => {
  const stored = fromHistory(HISTORY.slice(0, 2));

  it("shows a placeholder reply until the stream's first part, then the reply as streaming", () => {
    const asked = [...stored, message("u", "user", "q2")];
    expect(toRows(asked, "submitted", undefined).at(-1)).toMatchObject({ role: "assistant", status: "streaming", text: "" });
    const rows = toRows([...asked, message("r", "assistant", "gro", { prompt: "q2" })], "streaming", undefined);
    expect(rows.map((r) => r.status)).toEqual(["complete", "complete", "complete", "streaming"]);
    expect(rows).toHaveLength(4);
  });

  it("shows a resumed reply's prompt, from its metadata, before it", () => {
    const rows = toRows([...stored, message("r", "assistant", "so far", { prompt: "q2" })], "streaming", undefined);
    expect(rows.map((r) => [r.role, r.text, r.status])).toEqual([
      ["user", "q1", "complete"],
      ["assistant", "a1", "complete"],
      ["user", "q2", "complete"],
      ["assistant", "so far", "streaming"],
    ]);
  });

  it("shows a refused request where its reply would be, with the server's code and a retry", () => {
    const refused = new APICallError({
      message: "busy",
      url: "/api/chat",
      requestBodyValues: {},
      statusCode: 409,
      responseBody: JSON.stringify({ error: { code: "conversation_busy", message: "A reply is being written." } }),
    });
    const row = toRows([...stored, message("u", "user", "q2")], "error", refused).at(-1);
    expect(row).toMatchObject({ role: "assistant", status: "failed", retry: true });
    expect(row?.error).toEqual({ kind: "http", code: "conversation_busy", message: "A reply is being written.", status: 409 });
  });

  it("tells a failed reply by its own error, a stopped one by its outcome", () => {
    const error = { code: "upstream_error", message: "Upstream answered 500", retryable: true };
    const failed = toRows([...stored, message("u", "user", "q2"), message("r", "assistant", "", { prompt: "q2", outcome: "failed", mode: null, error })], "error", new Error("Upstream answered 500"));
    expect(failed.at(-1)).toMatchObject({ status: "failed", retry: true, error: { kind: "stream", code: "upstream_error" } });
    const stopped = toRows([...stored, message("u", "user", "q2"), message("r", "assistant", "part", { prompt: "q2", outcome: "stopped", mode: "answer_question" })], "ready", undefined);
    expect(stopped.at(-1)).toMatchObject({ status: "stopped", interrupted: true, mode: "answer_question", retry: false });
  });

  it("offers branch actions only when nothing streams", () => {
    const targets = branchTargets(stored);
    expect(toRows(stored, "ready", undefined, targets).map((r) => r.action)).toEqual(["edit", "regenerate"]);
    expect(toRows(stored, "submitted", undefined, targets).map((r) => r.action)).toEqual([undefined, undefined, undefined]);
  });
});

describe("describeFailure", () => {
  it("names a lost connection", () => {
    expect(describeFailure(new TypeError("Failed to fetch"))).toMatchObject({ kind: "network", code: "network_error" });
  });

  it("reads an HTTP answer that is not the server's JSON", () => {
    const error = new APICallError({ message: "x", url: "/api/chat", requestBodyValues: {}, statusCode: 502, responseBody: "<html>" });
    expect(describeFailure(error)).toMatchObject({ kind: "http", code: "http_502", status: 502 });
  });
});

describe("lastPrompt", () => {
  it("is the last prompt sent, or the prompt a resumed reply answers", () => {
    expect(lastPrompt([...fromHistory(HISTORY.slice(0, 2)), message("u", "user", "again")])).toBe("again");
    expect(lastPrompt([message("r", "assistant", "", { prompt: "resumed" })])).toBe("resumed");
  });
});
