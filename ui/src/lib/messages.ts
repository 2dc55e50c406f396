/**
 * The transcript as the AI SDK holds it (UIMessage), and what the page shows of it. Pure,
 * unit-tested.
 *
 * A message's metadata carries what the route tells about a reply (how it ended, the mode the
 * graph chose, timings, the prompt it answers) and, once the stored history was read, where
 * the message is in it (its item index, its version mark), which edit, regenerate and the
 * version switcher address.
 */
import { APICallError, type ChatStatus, generateId, type UIMessage } from "ai";

import { ApiError, apiError } from "./api";
import type { BranchMark, ChatItem, ChatItemType, ReplyMetadata, Timings } from "./protocol";

export interface MessageMeta extends Partial<ReplyMetadata> {
  /** The prompt a reply answers (the stream's start says it). */
  prompt?: string;
  /** Its index in the server's history, once the history said so. */
  index?: number;
  branch?: BranchMark;
  type?: ChatItemType;
  interrupted?: boolean;
}

export type ChatMessage = UIMessage<MessageMeta, { route: { mode: string } }>;

export function textOf(message: ChatMessage): string {
  return message.parts.map((part) => (part.type === "text" ? part.text : "")).join("");
}

const marks = ({ type, interrupted, branch }: ChatItem, index: number): MessageMeta => ({
  index,
  type,
  ...(interrupted && { interrupted }),
  ...(branch && { branch }),
});

/** History items as messages; `offset` is the first one's index. */
export function fromHistory(items: readonly ChatItem[], offset = 0): ChatMessage[] {
  return items.map((item, i) => ({
    id: generateId(),
    role: item.role,
    parts: [{ type: "text", text: item.content }],
    metadata: marks(item, offset + i),
  }));
}

const same = (message: ChatMessage | undefined, item: ChatItem) =>
  message?.role === item.role && textOf(message) === item.content;

/** Ours, with the server's marks; a live failure is now told by the stored items. */
function keep(message: ChatMessage, item: ChatItem, index: number): ChatMessage {
  const { error: _error, ...rest } = message.metadata ?? {};
  const outcome = rest.outcome === "failed" ? undefined : rest.outcome;
  return { ...message, metadata: { ...rest, outcome, ...marks(item, index) } };
}

/**
 * The stored history, keeping our message where both agree (at the start and at the end):
 * its key, its mode badge and timings. A reply stopped before any text is not stored (its
 * turn is only its prompt) and stays shown.
 */
export function mergeHistory(local: readonly ChatMessage[], items: readonly ChatItem[]): ChatMessage[] {
  let head = 0;
  while (head < items.length && same(local[head], items[head]!)) head++;
  let tail = 0;
  const fromEnd = (list: readonly unknown[]) => list.length - 1 - tail;
  while (tail < Math.min(items.length, local.length) - head && same(local[fromEnd(local)], items[fromEnd(items)]!)) tail++;
  const cut = items.length - tail;
  const merged = [
    ...items.slice(0, head).map((item, i) => keep(local[i]!, item, i)),
    ...fromHistory(items.slice(head, cut), head),
    ...items.slice(cut).map((item, i) => keep(local[local.length - tail + i]!, item, cut + i)),
  ];
  const last = local.at(-1);
  if (last?.role === "assistant" && last.metadata?.outcome === "stopped" && !textOf(last) && merged.at(-1)?.role === "user") {
    merged.push(last);
  }
  return merged;
}

/**
 * After a version switch at `index`: before it both versions agree; from it on, the other
 * version as the server has it. The switched message keeps its key, so the switcher pressed
 * keeps the focus.
 */
export function switchedTo(local: readonly ChatMessage[], index: number, items: readonly ChatItem[]): ChatMessage[] {
  const cut = Math.min(index, items.length);
  const before = items.slice(0, cut).map((item, i) => (same(local[i], item) ? keep(local[i]!, item, i) : fromHistory([item], i)[0]!));
  const after = fromHistory(items.slice(cut), cut);
  const previous = local[cut];
  if (previous && after[0] && previous.role === after[0].role) after[0] = { ...after[0], id: previous.id };
  return [...before, ...after];
}

export type BranchAction = "edit" | "regenerate";

/**
 * What each stored message offers, by id: every prompt can be edited; a turn's reply (the
 * first assistant item after its prompt) can be regenerated. Only messages at their index.
 */
export function branchTargets(messages: readonly ChatMessage[]): ReadonlyMap<string, BranchAction> {
  const targets = new Map<string, BranchAction>();
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i]!;
    if (message.metadata?.index !== i) break;
    if (message.role === "user") targets.set(message.id, "edit");
    else if (messages[i - 1]?.role === "user") targets.set(message.id, "regenerate");
  }
  return targets;
}

/** The Burr app id of the branch shown: the one that wrote the last version mark, else the original. */
export function shownBranch(messages: readonly ChatMessage[], appId: string): string {
  return messages.findLast((m) => m.metadata?.branch)?.metadata?.branch?.app_id ?? appId;
}

export interface Failure {
  kind: "stream" | "http" | "network";
  code: string;
  message: string;
  status?: number;
}

/** A failure in the user's words: the reply's own error, an HTTP answer, or no connection. */
export function describeFailure(error: unknown, meta?: MessageMeta): Failure {
  if (meta?.error) return { kind: "stream", code: meta.error.code, message: meta.error.message };
  const http = APICallError.isInstance(error)
    ? apiError(error.statusCode ?? 0, error.responseBody ?? "")
    : error instanceof ApiError
      ? error
      : null;
  if (http) return { kind: "http", code: http.code, message: http.message, status: http.status };
  const detail = error instanceof Error && error.message ? ` (${error.message})` : "";
  return { kind: "network", code: "network_error", message: `Could not reach the server${detail}. Check your connection and retry.` };
}

export type RowStatus = "complete" | "streaming" | "stopped" | "failed";

/** One message on screen. Flat, so a memoised view re-renders only the rows that changed. */
export interface Row {
  id: string;
  role: "user" | "assistant";
  text: string;
  type: ChatItemType;
  status: RowStatus;
  mode?: string;
  timings?: Timings | null;
  interrupted?: boolean;
  error?: Failure;
  /** The failed or stopped last turn can be sent again. */
  retry?: boolean;
  index?: number;
  branch?: BranchMark;
  action?: BranchAction;
}

const modeOf = (message: ChatMessage) =>
  message.metadata?.mode ?? message.parts.find((part) => part.type === "data-route")?.data.mode;

/**
 * The rows for the chat's messages and status: the reply being written shows as streaming
 * (with a placeholder before its first part), a reply reattached to after a reload gets its
 * prompt from its metadata, and a request that failed shows where its reply would be.
 */
export function toRows(
  messages: readonly ChatMessage[],
  status: ChatStatus,
  error: Error | undefined,
  targets: ReadonlyMap<string, BranchAction> = new Map(),
): Row[] {
  const busy = status === "submitted" || status === "streaming";
  const last = messages.at(-1);
  const live =
    busy && last?.role === "assistant" && last.metadata?.index === undefined && !last.metadata?.outcome ? last : undefined;
  const rows: Row[] = [];
  messages.forEach((message, i) => {
    const meta = message.metadata ?? {};
    if (message.role === "system") return;
    if (message.role === "assistant" && meta.prompt !== undefined && messages[i - 1]?.role !== "user") {
      rows.push({ id: `${message.id}:prompt`, role: "user", text: meta.prompt, type: "text", status: "complete" });
    }
    const row: Row = {
      id: message.id,
      role: message.role,
      text: textOf(message),
      type: meta.type ?? "text",
      status: "complete",
      mode: modeOf(message),
      timings: meta.timings,
      interrupted: meta.interrupted || meta.outcome === "stopped" || meta.outcome === "interrupted",
      index: meta.index,
      branch: meta.branch,
      action: busy ? undefined : targets.get(message.id),
    };
    if (message === live) row.status = "streaming";
    else if (message === last && message.role === "assistant" && status === "error") {
      Object.assign(row, { status: "failed", error: describeFailure(error, meta), retry: true });
    } else if (meta.outcome === "failed") Object.assign(row, { status: "failed", error: describeFailure(null, meta) });
    else if (meta.outcome === "stopped") Object.assign(row, { status: "stopped", retry: message === last && !row.text });
    rows.push(row);
  });
  const placeholder = (extra: Partial<Row>): Row => ({ id: "pending-reply", role: "assistant", text: "", type: "text", status: "streaming", ...extra });
  if (busy && !live) rows.push(placeholder({}));
  else if (status === "error" && last?.role === "user") {
    rows.push(placeholder({ status: "failed", error: describeFailure(error), retry: true }));
  }
  return rows;
}

/** The prompt a retry sends again: the last user message's text, or the last reply's prompt. */
export function lastPrompt(messages: readonly ChatMessage[]): string | undefined {
  const last = messages.findLast((m) => m.role === "user" || m.metadata?.prompt !== undefined);
  return last && (last.role === "user" ? textOf(last) : last.metadata?.prompt);
}
