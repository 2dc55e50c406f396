/**
 * Types of the server's HTTP contract (the routes under /api/v0/streaming_chatbot), named for
 * this UI. Every shape comes from openapi.d.ts, which is generated from the server's OpenAPI
 * document (`npm run openapi:types`; a test in the Python suite fails when it is stale), so
 * the UI cannot drift from the server.
 */
import type { components } from "./openapi";

type Schemas = components["schemas"];

export type ChatItem = Schemas["ChatItemOut"];
export type ChatItemType = ChatItem["type"];
export type Timings = Schemas["TimingsOut"];
/** Why a turn did not complete: a stable code, a sentence, whether sending again may work. */
export type TurnError = Schemas["TurnErrorOut"];
/** How a reply ended, as the AI SDK route's message metadata tells it. */
export type ReplyMetadata = Schemas["UIMessageMetadataOut"];
/** What the chat UI reads at start (null URLs: the server runs without Burr's tracking UI). */
export type Info = Schemas["InfoOut"];
export type ConversationSummary = Schemas["ConversationOut"];
export type ConversationPage = Schemas["ConversationPage"];

/**
 * On a /history item where versions meet (an edit or a regeneration made a branch there):
 * which version is shown (0-based, in creation order), how many there are, and the Burr app id
 * of the branch that wrote the shown one.
 */
export type BranchMark = Schemas["BranchMarkOut"];

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
