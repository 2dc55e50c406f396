// @vitest-environment jsdom
import { act, cleanup, renderHook, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import { API_PREFIX, createApiClient, type KeyStore } from "../lib/api";
import type { ChatItem } from "../lib/protocol";
import { useChat } from "./useChat";

afterEach(cleanup);

const noKeys: KeyStore = { get: () => null, set: () => {}, clear: () => {} };
const sse = (obj: unknown) => `data: ${JSON.stringify(obj)}\n\n`;
const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
const item = (role: "user" | "assistant", content: string, branch?: ChatItem["branch"]): ChatItem =>
  branch ? { role, content, type: "text", branch } : { role, content, type: "text" };

/**
 * A scripted server: answers by "METHOD path" (without the prefix and the ids), records every
 * request, and fails any request it has no answer for.
 */
function fakeServer(routes: Record<string, (body: unknown) => Response>) {
  const seen: string[] = [];
  const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const path = String(input).slice(API_PREFIX.length).replace(/\/proj\/chat(\?.*)?$/, "");
    const key = `${init?.method ?? "GET"} ${path}`;
    seen.push(key);
    const answer = routes[key];
    if (!answer) return json({ error: { code: "unexpected", message: key } }, 500);
    return answer(init?.body ? JSON.parse(String(init.body)) : undefined);
  });
  return { fetch, seen };
}

const stored = [item("user", "q1"), item("assistant", "r1")];

async function openChat(routes: Record<string, (body: unknown) => Response>) {
  const server = fakeServer({
    "GET /history": () => json(stored),
    "GET /stream": () => new Response(null, { status: 204 }),
    ...routes,
  });
  const api = createApiClient({ fetch: server.fetch, keys: noKeys });
  const onSettled = vi.fn();
  const hook = renderHook(() => useChat(api, "proj", onSettled));
  await act(() => hook.result.current.loadHistory("chat"));
  server.seen.length = 0;
  const state = () => hook.result.current.store.chat!;
  return { hook, server, state, onSettled };
}

describe("useChat branches", () => {
  it("switches from the switch's answer alone: no history or list reload", async () => {
    const switched = [item("user", "q1 (first version)", { version: 0, versions: 2, app_id: "chat" }), item("assistant", "r1 old")];
    const bodies: unknown[] = [];
    const { hook, server, state, onSettled } = await openChat({
      "POST /branches": (body) => {
        bodies.push(body);
        return json(switched);
      },
    });
    await act(() => hook.result.current.switchVersion("chat", 0, 0));
    expect(server.seen).toEqual(["POST /branches"]);
    expect(bodies).toEqual([{ index: 0, version: 0 }]);
    expect(onSettled).not.toHaveBeenCalled();
    expect(state().messages.map((m) => [m.content, m.branch?.version])).toEqual([
      ["q1 (first version)", 0],
      ["r1 old", undefined],
    ]);
    expect(state().switching).toBe(false);
  });

  it("passes a refused switch on and leaves the transcript as it was", async () => {
    const { hook, state } = await openChat({
      "POST /branches": () => json({ error: { code: "conversation_busy", message: "Busy." } }, 409),
    });
    const before = state().messages;
    await act(async () => {
      await expect(hook.result.current.switchVersion("chat", 0, 1)).rejects.toMatchObject({ status: 409 });
    });
    expect(state().messages).toBe(before);
    expect(state().switching).toBe(false);
  });

  it("streams an edit, then reads the history once for the new version marks", async () => {
    const afterEdit = [item("user", "q1, better", { version: 1, versions: 2, app_id: "chat~1" }), item("assistant", "r1 new")];
    const bodies: unknown[] = [];
    let histories = 0;
    const { hook, server, state, onSettled } = await openChat({
      "GET /history": () => json(histories++ === 0 ? stored : afterEdit),
      "POST /edit": (body) => {
        bodies.push(body);
        return new Response(
          sse({ type: "chat_history", value: [] }) +
            sse({ type: "delta", value: "r1 " }) +
            sse({ type: "delta", value: "new" }) +
            sse({ type: "end", value: { item: item("assistant", "r1 new"), mode: "answer_question", timings: { first_delta_ms: 1, total_ms: 2 } } }),
          { headers: { "Content-Type": "text/event-stream" } },
        );
      },
    });
    await act(() => hook.result.current.startBranch("chat", { kind: "edit", index: 0, prompt: "q1, better" }));
    await waitFor(() => expect(state().messages[0]?.branch?.version).toBe(1));
    expect(server.seen).toEqual(["POST /edit", "GET /history"]);
    expect(bodies).toEqual([{ index: 0, prompt: "q1, better" }]);
    expect(onSettled).toHaveBeenCalledTimes(1);
    expect(state().messages.map((m) => [m.content, m.index, m.mode])).toEqual([
      ["q1, better", 0, undefined],
      ["r1 new", 1, "answer_question"],
    ]);
  });

  it("shows a refused regeneration with Retry, which asks for the same branch again", async () => {
    let refusals = 1;
    let histories = 0;
    const regenerated = [item("user", "q1"), item("assistant", "r1 again", { version: 1, versions: 2, app_id: "chat~1" })];
    const { hook, server, state } = await openChat({
      "GET /history": () => json(histories++ === 0 ? stored : regenerated),
      "POST /regenerate": () =>
        refusals-- > 0
          ? json({ error: { code: "conversation_busy", message: "A reply is being written." } }, 409)
          : new Response(
              sse({ type: "chat_history", value: [] }) +
                sse({ type: "end", value: { item: item("assistant", "r1 again"), mode: "answer_question", timings: { first_delta_ms: 1, total_ms: 2 } } }),
              { headers: { "Content-Type": "text/event-stream" } },
            ),
    });
    await act(() => hook.result.current.startBranch("chat", { kind: "regenerate", index: 1 }));
    // Nothing was branched: no history to read again.
    expect(server.seen).toEqual(["POST /regenerate"]);
    const failed = state().messages[1]!;
    expect(failed).toMatchObject({ status: "failed", error: { code: "conversation_busy" } });
    expect(state().messages[0]?.content).toBe("q1");
    await act(async () => hook.result.current.retry("chat", failed.id));
    await waitFor(() => expect(server.seen).toEqual(["POST /regenerate", "POST /regenerate", "GET /history"]));
    await waitFor(() => expect(state().messages[1]?.branch?.version).toBe(1));
    expect(state().messages.map((m) => [m.content, m.status])).toEqual([
      ["q1", "complete"],
      ["r1 again", "complete"],
    ]);
  });
});
