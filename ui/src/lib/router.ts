/**
 * The two client routes, `/` (a conversation not created yet) and `/c/<app_id>`, on the
 * History API; the server answers index.html for any non-API path, so a reload lands back
 * here. Small enough that a routing library would add more than it saves.
 */
import { type MouseEvent, useSyncExternalStore } from "react";

export type Route = { name: "home" } | { name: "conversation"; appId: string } | { name: "notFound" };

/** The ids the server accepts. */
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export function parseRoute(pathname: string): Route {
  if (pathname === "/" || pathname === "" || pathname === "/index.html") return { name: "home" };
  const match = /^\/c\/([^/]+)\/?$/.exec(pathname);
  try {
    const appId = decodeURIComponent(match?.[1] ?? "");
    if (ID_PATTERN.test(appId)) return { name: "conversation", appId };
  } catch {
    // A malformed escape: not a path of ours.
  }
  return { name: "notFound" };
}

export const conversationPath = (appId: string) => `/c/${encodeURIComponent(appId)}`;

const NAVIGATE_EVENT = "chatbot:navigate";

export function navigate(path: string, { replace = false } = {}): void {
  if (path === window.location.pathname) return;
  window.history[replace ? "replaceState" : "pushState"](null, "", path);
  window.dispatchEvent(new Event(NAVIGATE_EVENT));
}

/** For <a> elements: follows a plain left click in the app (true), leaves others to the browser. */
export function followLink(event: MouseEvent, path: string): boolean {
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return false;
  event.preventDefault();
  navigate(path);
  return true;
}

function subscribe(onChange: () => void): () => void {
  for (const name of ["popstate", NAVIGATE_EVENT]) window.addEventListener(name, onChange);
  return () => ["popstate", NAVIGATE_EVENT].forEach((name) => window.removeEventListener(name, onChange));
}

/** The route of the page shown, following pushes, replaces and the browser's back and forward. */
export function useRoute(): Route {
  return parseRoute(useSyncExternalStore(subscribe, () => window.location.pathname));
}
