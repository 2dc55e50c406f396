/**
 * Types of the server's HTTP contract (the routes under /api/v0/streaming_chatbot), named for
 * this UI. Every shape comes from openapi.d.ts, which is generated from the server's OpenAPI
 * document (`npm run openapi:types`; a test in the Python suite fails when it is stale), so
 * the UI cannot drift from the server. Only shapes live here; parsing is in stream.ts.
 */
import type { components } from "./openapi";

type Schemas = components["schemas"];

export type ChatItem = Schemas["ChatItemOut"];
export type ChatRole = ChatItem["role"];
export type ChatItemType = ChatItem["type"];
export type Timings = Schemas["TimingsOut"];
/** How a turn ended well: the reply, the Burr action that answered (generate_poem…), timings. */
export type EndValue = Schemas["TurnEndOut"];
/** Why a turn did not complete: a stable code, a sentence, whether sending again may work. */
export type StreamErrorValue = Schemas["TurnErrorOut"];
/**
 * One `data:` of a reply's stream: chat_history, the deltas, then end or error; reattaching
 * (GET …/stream) adds the running turn's prompt and the step (the Burr action) answering.
 */
export type Frame = Schemas["ResumeFrame"];
/** What the chat UI reads at start (null URLs: the server runs without Burr's tracking UI). */
export type Info = Schemas["InfoOut"];
export type ConversationSummary = Schemas["ConversationOut"];
export type ConversationPage = Schemas["ConversationPage"];
/** The body of every error answer of the API. */
export type ErrorBody = Schemas["ErrorOut"];

/**
 * On a /history item where versions meet (an edit or a regeneration made a branch there):
 * which version is shown (0-based, in creation order), how many there are, and the Burr app id
 * of the branch that wrote the shown one.
 */
export type BranchMark = Schemas["BranchMarkOut"];

/** The branch mark of a history item; none on an item with a single version. */
export function branchMark(item: ChatItem): BranchMark | undefined {
  return item.branch ?? undefined;
}

export function sameMark(a: BranchMark | undefined, b: BranchMark | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  return a.version === b.version && a.versions === b.versions && a.app_id === b.app_id;
}

/** Identifiers accepted by the server for projects and conversations. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const MODE_LABELS: Record<string, string> = {
  generate_poem: "poem",
  generate_code: "code",
  answer_question: "question",
  prompt_for_more: "clarify",
  unsafe_response: "unsafe",
};

/** Short badge text for the action that produced a reply; unknown actions show their own name. */
export function modeLabel(mode: string): string {
  return MODE_LABELS[mode] ?? mode.replace(/_/g, " ");
}

/** The Burr tracking UI page of one conversation, from the info route's template. */
export function burrRunUrl(template: string, projectId: string, appId: string): string {
  return template
    .replaceAll("{project_id}", encodeURIComponent(projectId))
    .replaceAll("{app_id}", encodeURIComponent(appId));
}
