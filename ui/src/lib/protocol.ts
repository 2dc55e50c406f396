/**
 * This UI's names for the server's types. Every shape comes from openapi.d.ts, generated from
 * the server's OpenAPI document (a test in the Python suite fails when it is stale), so the UI
 * cannot drift from the server.
 */
import type { components } from "./openapi";

type Schemas = components["schemas"];

export type ChatItem = Schemas["ChatItemOut"];
export type ChatItemType = ChatItem["type"];
export type Timings = Schemas["TimingsOut"];
export type ReplyMetadata = Schemas["UIMessageMetadataOut"];
/** Null URLs: the server runs without Burr's tracking UI. */
export type Info = Schemas["InfoOut"];
export type ConversationSummary = Schemas["ConversationOut"];
export type ConversationPage = Schemas["ConversationPage"];
/** Where versions meet: the shown one (0-based), how many, the Burr app id of its branch. */
export type BranchMark = Schemas["BranchMarkOut"];

/** The Burr tracking UI page of one conversation, from the info route's template. */
export function burrRunUrl(template: string, projectId: string, appId: string): string {
  return template
    .replaceAll("{project_id}", encodeURIComponent(projectId))
    .replaceAll("{app_id}", encodeURIComponent(appId));
}
