/**
 * The two client routes: `/` (a new, not yet created conversation) and `/c/<app_id>`. The
 * server answers index.html for any non-API path, so a reload lands back here. Small enough
 * that a routing library would add more than it saves.
 */
import { useSyncExternalStore } from "react";

import { ID_PATTERN } from "./protocol";

export type Route =
  | { name: "home" }
  | { name: "conversation"; appId: string }
  | { name: "notFound"; path: string };

export function parseRoute(pathname: string): Route {
  if (pathname === "/" || pathname === "" || pathname === "/index.html") return { name: "home" };
  const match = /^\/c\/([^/]+)\/?$/.exec(pathname);
  if (match?.[1]) {
    let appId: string;
    try {
      appId = decodeURIComponent(match[1]);
    } catch {
      return { name: "notFound", path: pathname };
    }
    if (ID_PATTERN.test(appId)) return { name: "conversation", appId };
  }
  return { name: "notFound", path: pathname };
}

export function conversationPath(appId: string): string {
  return `/c/${encodeURIComponent(appId)}`;
}

const NAVIGATE_EVENT = "chatbot:navigate";

export function navigate(path: string, options: { replace?: boolean } = {}): void {
  if (path === window.location.pathname) return;
  if (options.replace) window.history.replaceState(null, "", path);
  else window.history.pushState(null, "", path);
  window.dispatchEvent(new Event(NAVIGATE_EVENT));
}

function subscribe(onChange: () => void): () => void {
  window.addEventListener("popstate", onChange);
  window.addEventListener(NAVIGATE_EVENT, onChange);
  return () => {
    window.removeEventListener("popstate", onChange);
    window.removeEventListener(NAVIGATE_EVENT, onChange);
  };
}

export function usePathname(): string {
  return useSyncExternalStore(subscribe, () => window.location.pathname);
}

/** For <a> elements: follow plain left clicks in-app, leave modified clicks to the browser. */
export function isPlainClick(event: {
  button: number;
  metaKey: boolean;
  ctrlKey: boolean;
  shiftKey: boolean;
  altKey: boolean;
}): boolean {
  return event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey && !event.altKey;
}

/** The route of the page shown, following pushes, replaces and the browser's back and forward. */
export function useRoute(): Route {
  return parseRoute(usePathname());
}
