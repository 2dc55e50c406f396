/**
 * Types of the server's HTTP contract (see shared DESIGN.md and the routes under
 * /api/v0/streaming_chatbot). Only shapes live here; parsing is in stream.ts.
 */

export type ChatRole = "user" | "assistant";
export type ChatItemType = "text" | "code" | "error" | "image";

export interface ChatItem {
  role: ChatRole;
  content: string;
  type: ChatItemType;
  /** Present (true) only on a partial assistant reply kept after a stop or a disconnect. */
  interrupted?: true;
}

export interface Timings {
  first_delta_ms: number | null;
  total_ms: number;
}

export interface EndValue {
  item: ChatItem;
  /** The Burr action that answered: generate_poem, generate_code, answer_question, ... */
  mode: string;
  timings: Timings;
}

export interface StreamErrorValue {
  code: string;
  message: string;
  retryable: boolean;
}

export type Frame =
  | { type: "chat_history"; value: ChatItem[] }
  /** Reattaching (GET …/stream) only: the running turn's prompt, after its history. */
  | { type: "prompt"; value: string }
  /** Reattaching only: the Burr action that is answering. */
  | { type: "step"; value: string }
  | { type: "delta"; value: string }
  | { type: "end"; value: EndValue }
  | { type: "error"; value: StreamErrorValue };

export interface Info {
  project_id: string;
  /** null when the server runs without Burr's tracking UI. */
  burr_ui_url: string | null;
  burr_app_url_template: string | null;
  auth_required: boolean;
  offline_model: boolean;
}

export interface ConversationSummary {
  app_id: string;
  title: string;
  turns: number;
  created_at: string;
  updated_at: string;
}

export interface ConversationPage {
  items: ConversationSummary[];
  total: number;
  limit: number;
  offset: number;
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
