import { describe, expect, it, vi } from "vitest";

import { API_PREFIX, ApiError, createApiClient, errorFromResponse, type KeyPromptReason, type KeyStore } from "./api";

function memoryKeys(initial: string | null = null): KeyStore & { value: string | null } {
  return {
    value: initial,
    get() {
      return this.value;
    },
    set(key) {
      this.value = key;
    },
    clear() {
      this.value = null;
    },
  };
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

/** A server that wants `Bearer good`. */
function authServer() {
  const seen: (string | null)[] = [];
  const fetch = vi.fn(async (_input: RequestInfo | URL, init?: RequestInit) => {
    const auth = new Headers(init?.headers).get("Authorization");
    seen.push(auth);
    if (auth !== "Bearer good") return json({ error: { code: "unauthorized", message: "API key required" } }, 401);
    return json([]);
  });
  return { fetch, seen };
}

describe("errorFromResponse", () => {
  it("reads the server's JSON error", async () => {
    const error = await errorFromResponse(
      json({ error: { code: "conversation_busy", message: "A reply is already streaming." } }, 409),
    );
    expect(error).toBeInstanceOf(ApiError);
    expect([error.status, error.code, error.message, error.retryable]).toEqual([
      409,
      "conversation_busy",
      "A reply is already streaming.",
      true,
    ]);
  });

  it("falls back to the status line for a non-JSON body", async () => {
    const error = await errorFromResponse(new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway" }));
    expect(error.message).toBe("The server answered 502 Bad Gateway.");
    expect(error.code).toBe("http_502");
  });

  it("reads FastAPI's detail list", async () => {
    const error = await errorFromResponse(json({ detail: [{ msg: "field required" }] }, 422));
    expect(error.message).toBe("field required");
    expect(error.retryable).toBe(false);
  });
});

describe("createApiClient stop", () => {
  it("asks the server to stop the reply, since closing the stream would not", async () => {
    const fetch = vi.fn(async (_input: RequestInfo | URL, _init?: RequestInit) =>
      json({ app_id: "a", item: null }),
    );
    const api = createApiClient({ fetch, keys: memoryKeys() });
    await api.stop("p", "a");
    expect(fetch.mock.calls[0]?.[0]).toBe(`${API_PREFIX}/stop/p/a`);
    expect((fetch.mock.calls[0]?.[1] as RequestInit).method).toBe("POST");
  });
});

describe("createApiClient auth", () => {
  it("sends the stored key as a bearer token", async () => {
    const { fetch, seen } = authServer();
    const api = createApiClient({ fetch, keys: memoryKeys("good") });
    await api.history("p", "a");
    expect(seen).toEqual(["Bearer good"]);
    expect(fetch.mock.calls[0]?.[0]).toBe(`${API_PREFIX}/history/p/a`);
  });

  it("asks for a key on 401, stores it and retries", async () => {
    const { fetch, seen } = authServer();
    const keys = memoryKeys();
    const promptForKey = vi.fn(async (_reason: KeyPromptReason) => "good");
    const api = createApiClient({ fetch, keys, promptForKey });
    await expect(api.history("p", "a")).resolves.toEqual([]);
    expect(promptForKey).toHaveBeenCalledWith("required");
    expect(keys.value).toBe("good");
    expect(seen.slice(0, 2)).toEqual([null, "Bearer good"]);
  });

  it("trades a key the user entered for a session cookie, once it works", async () => {
    const { fetch } = authServer();
    const api = createApiClient({ fetch, keys: memoryKeys(), promptForKey: async () => "good" });
    await api.history("p", "a");
    await vi.waitFor(() => expect(fetch).toHaveBeenCalledTimes(3));
    const [url, init] = fetch.mock.calls[2] as unknown as [string, RequestInit];
    expect([url, init.method, new Headers(init.headers).get("Authorization")]).toEqual([
      `${API_PREFIX}/session`,
      "POST",
      "Bearer good",
    ]);
  });

  it("does not start a session for a stored key that simply works", async () => {
    const { fetch } = authServer();
    const api = createApiClient({ fetch, keys: memoryKeys("good") });
    await api.history("p", "a");
    await new Promise((r) => setTimeout(r, 0));
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it("asks again when the key is wrong", async () => {
    const { fetch } = authServer();
    const answers = ["bad", "good"];
    const promptForKey = vi.fn(async (_reason: KeyPromptReason) => answers.shift() ?? null);
    const api = createApiClient({ fetch, keys: memoryKeys(), promptForKey });
    await api.history("p", "a");
    expect(promptForKey.mock.calls.map((c) => c[0])).toEqual(["required", "rejected"]);
  });

  it("asks once for calls that fail together", async () => {
    const { fetch } = authServer();
    let resolve!: (key: string) => void;
    const promptForKey = vi.fn(() => new Promise<string | null>((r) => (resolve = r)));
    const api = createApiClient({ fetch, keys: memoryKeys(), promptForKey });
    const calls = Promise.all([api.history("p", "a"), api.history("p", "b"), api.info()]);
    await vi.waitFor(() => expect(promptForKey).toHaveBeenCalled());
    await new Promise((r) => setTimeout(r, 0));
    resolve("good");
    await calls;
    expect(promptForKey).toHaveBeenCalledTimes(1);
  });

  it("gives up with the 401 as an ApiError when the user cancels", async () => {
    const { fetch } = authServer();
    const api = createApiClient({ fetch, keys: memoryKeys(), promptForKey: async () => null });
    await expect(api.history("p", "a")).rejects.toMatchObject({ status: 401, code: "unauthorized" });
  });
});

describe("signOut", () => {
  it("forgets the key and ends the server session", async () => {
    const fetch = vi.fn(async () => new Response(null, { status: 204 }));
    const keys = memoryKeys("good");
    await createApiClient({ fetch, keys }).signOut();
    expect(keys.value).toBeNull();
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect([url, init.method]).toEqual([`${API_PREFIX}/session`, "DELETE"]);
  });
});

describe("createApiClient routes", () => {
  it("posts the prompt as JSON and asks for an event stream", async () => {
    const fetch = vi.fn(async () => new Response("", { status: 200, headers: { "Content-Type": "text/event-stream" } }));
    const api = createApiClient({ fetch, keys: memoryKeys() });
    await api.respond("proj", "app-1", "hi <b>", undefined);
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe(`${API_PREFIX}/response/proj/app-1`);
    expect(init.method).toBe("POST");
    expect(JSON.parse(String(init.body))).toEqual({ prompt: "hi <b>" });
    expect(new Headers(init.headers).get("Content-Type")).toBe("application/json");
  });

  it("posts an edit and a regeneration like a prompt: JSON in, an event stream out", async () => {
    const fetch = vi.fn(async () => new Response("", { status: 200, headers: { "Content-Type": "text/event-stream" } }));
    const api = createApiClient({ fetch, keys: memoryKeys() });
    const signal = new AbortController().signal;
    await api.edit("proj", "app-1", 2, "better", signal);
    await api.regenerate("proj", "app-1", 3, signal);
    const calls = fetch.mock.calls as unknown as [string, RequestInit][];
    expect(calls.map(([url, init]) => [url, init.method, JSON.parse(String(init.body))])).toEqual([
      [`${API_PREFIX}/edit/proj/app-1`, "POST", { index: 2, prompt: "better" }],
      [`${API_PREFIX}/regenerate/proj/app-1`, "POST", { index: 3 }],
    ]);
    for (const [, init] of calls) {
      expect(new Headers(init.headers).get("Accept")).toBe("text/event-stream");
      expect(new Headers(init.headers).get("Content-Type")).toBe("application/json");
      expect(init.signal).toBe(signal);
    }
  });

  it("switches a version and answers the history shown from then on", async () => {
    const history = [{ role: "user", content: "q", type: "text", branch: { version: 0, versions: 2, app_id: "app-1" } }];
    const fetch = vi.fn(async () => json(history));
    const api = createApiClient({ fetch, keys: memoryKeys() });
    expect(await api.switchVersion("proj", "app-1", 0, 0)).toEqual(history);
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect([url, init.method, JSON.parse(String(init.body))]).toEqual([
      `${API_PREFIX}/branches/proj/app-1`,
      "POST",
      { index: 0, version: 0 },
    ]);
  });

  it("turns a refused switch into an ApiError", async () => {
    const fetch = vi.fn(async () =>
      json({ error: { code: "conversation_busy", message: "A reply is being written." } }, 409),
    );
    const api = createApiClient({ fetch, keys: memoryKeys() });
    await expect(api.switchVersion("proj", "app-1", 0, 1)).rejects.toMatchObject({ status: 409, code: "conversation_busy" });
  });

  it("lists, creates and deletes conversations", async () => {
    const fetch = vi.fn(async (_url: RequestInfo | URL, init?: RequestInit) =>
      init?.method === "DELETE" ? new Response(null, { status: 204 }) : json("x"),
    );
    const api = createApiClient({ fetch, keys: memoryKeys() });
    await api.conversations("p", 50, 100);
    await api.create("p", "x");
    await api.remove("p", "x");
    expect(fetch.mock.calls.map((c) => [c[1]?.method ?? "GET", c[0]])).toEqual([
      ["GET", `${API_PREFIX}/conversations/p?limit=50&offset=100`],
      ["POST", `${API_PREFIX}/create/p/x`],
      ["DELETE", `${API_PREFIX}/conversations/p/x`],
    ]);
  });
});
