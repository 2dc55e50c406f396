/**
 * The HTTP side of the UI: one `fetch` that carries the API key, and openapi-fetch over the
 * types generated from the server's OpenAPI document, so a call's path, parameters and answer
 * are the server's own. The chat stream goes through the AI SDK's transport with the same fetch.
 */
import createClient from "openapi-fetch";

import type { paths } from "./openapi";

const API_KEY_STORAGE_KEY = "chatbot.apiKey";
const SESSION_PATH = "/api/v0/streaming_chatbot/session";
const SIGN_OUT_PATH = "/auth/logout";

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
}

/** The server's error body (`{"error": {"code", "message"}}`, parsed or not) as an ApiError. */
export function apiError(status: number, body: unknown): ApiError {
  const parsed = typeof body === "string" ? attempt(() => JSON.parse(body) as unknown) : body;
  const error = (parsed as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const code = typeof error?.code === "string" ? error.code : `http_${status}`;
  const message = typeof error?.message === "string" ? error.message : `The server answered ${status}.`;
  return new ApiError(status, code, message);
}

function attempt<T>(action: () => T): T | undefined {
  try {
    return action();
  } catch {
    return undefined;
  }
}

/** Kept in localStorage; without storage (private mode, say) it lasts for this request only. */
const keys = {
  get: () => attempt(() => localStorage.getItem(API_KEY_STORAGE_KEY)) ?? null,
  set: (key: string) => attempt(() => localStorage.setItem(API_KEY_STORAGE_KEY, key)),
  clear: () => attempt(() => localStorage.removeItem(API_KEY_STORAGE_KEY)),
};

/** Why the key is asked for: none stored yet, or the stored one was refused. */
export type KeyPromptReason = "required" | "rejected";
export type KeyPrompt = { reason: KeyPromptReason; answer: (key: string | null) => void };

// The dialog's state: an external store the page subscribes to. Every call that meets a 401
// meanwhile waits for the same answer.
let prompt: KeyPrompt | null = null;
let asking: Promise<string | null> | null = null;
const listeners = new Set<() => void>();
const changed = () => listeners.forEach((listener) => listener());
export const keyPrompt = {
  current: () => prompt,
  subscribe: (listener: () => void) => (listeners.add(listener), () => void listeners.delete(listener)),
};

function askForKey(reason: KeyPromptReason): Promise<string | null> {
  asking ??= new Promise<string | null>((resolve) => {
    const answer = (key: string | null) => {
      prompt = asking = null;
      changed();
      resolve(key);
    };
    prompt = { reason, answer };
    changed();
  });
  return asking;
}

/**
 * fetch() with `Authorization: Bearer <key>`. A 401 asks the user for a key, stores it and
 * sends the request again (a wrong key meets another 401 and is asked for again); a key that
 * works is also traded for the server's session cookie, which Burr's UI (same origin) relies on.
 */
export async function authFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const send = (key: string | null) => {
    // openapi-fetch passes a Request (cloned: it may be sent again), the AI SDK a URL and init.
    const request = input instanceof Request ? input.clone() : null;
    const headers = new Headers(request ? request.headers : init?.headers);
    if (key) headers.set("Authorization", `Bearer ${key}`);
    return request ? fetch(new Request(request, { headers })) : fetch(input, { ...init, headers });
  };
  let entered: string | null = null;
  for (;;) {
    const key = keys.get();
    const response = await send(key);
    if (response.status !== 401) {
      if (entered && response.ok) {
        void fetch(SESSION_PATH, { method: "POST", headers: { Authorization: `Bearer ${entered}` } }).catch(() => {});
      }
      return response;
    }
    const latest = keys.get();
    if (latest && latest !== key) continue; // another call stored a new key meanwhile
    entered = await askForKey(key ? "rejected" : "required");
    if (entered === null) return response;
    keys.set(entered);
  }
}

export const api = createClient<paths>({ fetch: authFetch });

/** The data of an openapi-fetch answer, or its error as an ApiError. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || !result.response.ok) throw apiError(result.response.status, result.error);
  return result.data as T;
}

/** Forgets the key in this browser and ends the server session (best effort), or the
 * OpenID sign-in's session. */
export async function signOut(): Promise<string | null> {
  keys.clear();
  await fetch(SESSION_PATH, { method: "DELETE" }).catch(() => undefined);
  const signedOut = await fetch(SIGN_OUT_PATH, { method: "POST" }).catch(() => null);
  if (!signedOut?.ok) return null;
  // Where the OpenID provider ends its own session (then returns to this site).
  const { logout_url } = (await signedOut.json()) as { logout_url: string | null };
  return logout_url;
}
