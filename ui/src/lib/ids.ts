/**
 * New conversation and message ids. crypto.randomUUID exists only in secure contexts (https,
 * localhost); served over plain http on a LAN address the page falls back to getRandomValues,
 * which every context has. Both give ids the server accepts ([A-Za-z0-9_-], at most 64).
 */
export function newId(): string {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === "function") return c.randomUUID();
  const bytes = c.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
