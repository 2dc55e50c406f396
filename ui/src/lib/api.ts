/**
 * The HTTP client for the chatbot API: JSON error handling and the API key.
 *
 * Every call goes through `request`, which sends `Authorization: Bearer <key>` when a key is
 * stored and, on a 401, asks the user for a key (one dialog shared by all calls that failed at
 * the same time), stores it and tries again; a wrong key is answered by another 401, which asks
 * again. Cancelling the dialog lets the 401 through as an ApiError.
 *
 * A key that works is also traded for the server's session cookie (POST …/session), because
 * Burr's tracking UI, on the same origin, cannot send our header but does send the cookie.
 */
import type { paths } from "./openapi";

export const API_PREFIX = "/api/v0/streaming_chatbot";

type Api = typeof API_PREFIX;
/**
 * The JSON body a documented route answers with 200, read from the generated OpenAPI types: a
 * call names its route's path template, so renaming a route or changing what it answers breaks
 * the type check here rather than the page at run time.
 */
type Ok<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  responses: { 200: { content: { "application/json": infer Body } } };
}
  ? Body
  : never;
/** The JSON body a documented route takes, read from the generated OpenAPI types likewise. */
type In<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  requestBody: { content: { "application/json": infer Body } };
}
  ? Body
  : never;
export const API_KEY_STORAGE_KEY = "chatbot.apiKey";
const SESSION_PATH = `${API_PREFIX}/session`;

/** An HTTP error answer (4xx/5xx), with the server's stable code and human message. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
  get retryable(): boolean {
    return this.status >= 500 || this.status === 408 || this.status === 409 || this.status === 429;
  }
}

export interface KeyStore {
  get(): string | null;
  set(key: string): void;
  clear(): void;
}

/** Why the key is asked for: none stored yet, or the stored one was refused. */
export type KeyPromptReason = "required" | "rejected";

export type KeyPrompter = (reason: KeyPromptReason) => Promise<string | null>;

export function localStorageKeyStore(storage: Storage | undefined = globalThis.localStorage): KeyStore {
  return {
    get() {
      try {
        return storage?.getItem(API_KEY_STORAGE_KEY) || null;
      } catch {
        return null;
      }
    },
    set(key) {
      try {
        storage?.setItem(API_KEY_STORAGE_KEY, key);
      } catch {
        // Storage can be unavailable (private mode, quota); the key then lives for this call only.
      }
    },
    clear() {
      try {
        storage?.removeItem(API_KEY_STORAGE_KEY);
      } catch {
        // Nothing stored, nothing to clear.
      }
    },
  };
}

/** Builds an ApiError from an error answer, whatever its body looks like. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  let code = `http_${response.status}`;
  let message = "";
  let text = "";
  try {
    text = await response.text();
  } catch {
    // The body could not be read; the status line still says what happened.
  }
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body === "object" && body !== null) {
      const record = body as Record<string, unknown>;
      const error = record.error;
      if (typeof error === "object" && error !== null) {
        const e = error as Record<string, unknown>;
        if (typeof e.code === "string") code = e.code;
        if (typeof e.message === "string") message = e.message;
      } else if (typeof record.detail === "string") {
        message = record.detail;
      } else if (Array.isArray(record.detail)) {
        message = record.detail
          .map((d) => (typeof d === "object" && d !== null && "msg" in d ? String(d.msg) : String(d)))
          .join("; ");
      }
    }
  } catch {
    // Not JSON (a proxy's HTML page, say): fall back to the status line below.
  }
  if (!message) {
    message = `The server answered ${response.status}${response.statusText ? ` ${response.statusText}` : ""}.`;
  }
  return new ApiError(response.status, code, message);
}

export interface ApiClientOptions {
  fetch?: typeof fetch;
  keys?: KeyStore;
  promptForKey?: KeyPrompter;
}

export type ApiClient = ReturnType<typeof createApiClient>;

export function createApiClient(options: ApiClientOptions = {}) {
  const doFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const keys = options.keys ?? localStorageKeyStore();
  const promptForKey = options.promptForKey ?? (async () => null);
  let pendingPrompt: Promise<string | null> | null = null;

  function askForKey(reason: KeyPromptReason): Promise<string | null> {
    pendingPrompt ??= promptForKey(reason).finally(() => {
      pendingPrompt = null;
    });
    return pendingPrompt;
  }

  /** Trades a key that just worked for the session cookie; best effort, failures are harmless. */
  function startSessionWith(key: string): void {
    doFetch(SESSION_PATH, { method: "POST", headers: { Authorization: `Bearer ${key}` } }).catch(
      () => {},
    );
  }

  /** fetch() with the API key; answers every status except a 401 the user could fix. */
  async function request(path: string, init: RequestInit = {}): Promise<Response> {
    let entered: string | null = null;
    for (;;) {
      const key = keys.get();
      const headers = new Headers(init.headers);
      if (key) headers.set("Authorization", `Bearer ${key}`);
      const response = await doFetch(path, { ...init, headers });
      if (response.status !== 401) {
        if (entered !== null && entered === key && path !== SESSION_PATH) startSessionWith(entered);
        return response;
      }
      // Another call may have stored a new key while this one was in flight: use it first.
      const latest = keys.get();
      if (latest && latest !== key) continue;
      entered = await askForKey(key ? "rejected" : "required");
      if (entered === null) return response;
      keys.set(entered);
    }
  }

  /** request() that turns an error answer into an ApiError. */
  async function ok(path: string, init?: RequestInit): Promise<Response> {
    const response = await request(path, init);
    if (!response.ok) throw await errorFromResponse(response);
    return response;
  }

  async function json<T>(path: string, init?: RequestInit): Promise<T> {
    const response = await ok(path, init);
    return (await response.json()) as T;
  }

  const seg = encodeURIComponent;
  const postJson = (body: unknown, signal?: AbortSignal): RequestInit => ({
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
  /** A POST answered by a turn's event stream (a prompt, an edit, a regeneration). */
  const streamed = <R extends "response" | "edit" | "regenerate">(
    route: R,
    projectId: string,
    appId: string,
    body: In<`${Api}/${R}/{project_id}/{app_id}`, "post">,
    signal?: AbortSignal,
  ) =>
    ok(`${API_PREFIX}/${route}/${seg(projectId)}/${seg(appId)}`, {
      ...postJson(body, signal),
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    });

  return {
    request,
    /** Forgets the key in this browser and ends the server session (best effort). */
    signOut: async () => {
      keys.clear();
      await doFetch(SESSION_PATH, { method: "DELETE" }).catch(() => undefined);
    },
    /** Starts a browser session (cookie) when the server wants a key; asks for one if needed. */
    startSession: async () => {
      await ok(SESSION_PATH, { method: "POST" });
    },
    info: () => json<Ok<`${Api}/info`, "get">>(`${API_PREFIX}/info`),
    conversations: (projectId: string, limit = 50, offset = 0) =>
      json<Ok<`${Api}/conversations/{project_id}`, "get">>(
        `${API_PREFIX}/conversations/${seg(projectId)}?limit=${limit}&offset=${offset}`,
      ),
    history: (projectId: string, appId: string) =>
      json<Ok<`${Api}/history/{project_id}/{app_id}`, "get">>(
        `${API_PREFIX}/history/${seg(projectId)}/${seg(appId)}`,
      ),
    create: (projectId: string, appId: string) =>
      json<Ok<`${Api}/create/{project_id}/{app_id}`, "post">>(
        `${API_PREFIX}/create/${seg(projectId)}/${seg(appId)}`,
        { method: "POST" },
      ),
    /** Asks the server to stop the reply being written; it keeps what was written so far. */
    stop: async (projectId: string, appId: string) => {
      await request(`${API_PREFIX}/stop/${seg(projectId)}/${seg(appId)}`, { method: "POST" });
    },
    remove: async (projectId: string, appId: string) => {
      await ok(`${API_PREFIX}/conversations/${seg(projectId)}/${seg(appId)}`, { method: "DELETE" });
    },
    /**
     * Reattaches to the reply being written in a conversation: null when none is (204), else
     * the event stream of its frames, from after `lastEventId` when given (only what was missed).
     */
    attach: async (
      projectId: string,
      appId: string,
      lastEventId: string | null,
      signal?: AbortSignal,
    ): Promise<Response | null> => {
      const headers: Record<string, string> = { Accept: "text/event-stream" };
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      const response = await ok(`${API_PREFIX}/stream/${seg(projectId)}/${seg(appId)}`, {
        headers,
        signal,
      });
      return response.status === 204 ? null : response;
    },
    /** Starts a streamed reply; resolves once the answer's headers are in (body still streaming). */
    respond: (projectId: string, appId: string, prompt: string, signal?: AbortSignal) =>
      streamed("response", projectId, appId, { prompt }, signal),
    /** Branches at the prompt `index` with a new prompt; streams the new branch's turn. */
    edit: (projectId: string, appId: string, index: number, prompt: string, signal?: AbortSignal) =>
      streamed("edit", projectId, appId, { index, prompt }, signal),
    /** Branches at the reply `index`, asking its prompt again; streams the new branch's turn. */
    regenerate: (projectId: string, appId: string, index: number, signal?: AbortSignal) =>
      streamed("regenerate", projectId, appId, { index }, signal),
    /**
     * Shows version `version` at item `index`; answers the history now shown (the body of
     * GET …/history), so the page switches without another request.
     */
    switchVersion: (projectId: string, appId: string, index: number, version: number) => {
      const body: In<`${Api}/branches/{project_id}/{app_id}`, "post"> = { index, version };
      return json<Ok<`${Api}/branches/{project_id}/{app_id}`, "post">>(
        `${API_PREFIX}/branches/${seg(projectId)}/${seg(appId)}`,
        postJson(body),
      );
    },
  };
}
