/**
 * One AI SDK `Chat` per conversation, kept for the page's life: a reply goes on streaming into
 * its conversation while another one is shown, and coming back shows it as it is.
 *
 * The transport is the AI SDK's own, against the server's `/api/chat` (and, to resume, its
 * `GET /api/chat/{id}/stream`). The server keeps the conversation itself and only counts the
 * earlier messages, so they are sent without their text. Once a turn ends, the stored history
 * is read once for what only it knows (every item's index and version marks).
 */
import { Chat } from "@ai-sdk/react";
import { DefaultChatTransport } from "ai";

import { authFetch } from "./api";
import { type ChatMessage, mergeHistory } from "./messages";
import { historyQuery, queryClient, refreshConversations } from "./queries";

const chats = new Map<string, Chat<ChatMessage>>();

const transport = new DefaultChatTransport<ChatMessage>({
  api: "/api/chat",
  fetch: authFetch,
  prepareSendMessagesRequest: ({ id, messages, trigger, messageId }) => ({
    body: {
      id,
      trigger,
      messageId,
      messages: messages.map((m, i) => (i === messages.length - 1 ? m : { id: m.id, role: m.role, parts: [] })),
    },
  }),
});

async function settle(chat: Chat<ChatMessage>, projectId: string, failed: boolean): Promise<void> {
  void refreshConversations();
  // A failure stays shown as it happened; the stored form comes with the next turn or a reload.
  if (failed) return;
  const query = historyQuery(projectId, chat.id);
  const items = await queryClient.fetchQuery({ ...query, staleTime: 0 }).catch(() => null);
  if (items && chat.status !== "submitted" && chat.status !== "streaming") {
    chat.messages = mergeHistory(chat.messages, items);
  }
}

/** The conversation's chat, created with `messages` (its stored history) the first time. */
export function chatFor(projectId: string, appId: string, messages: ChatMessage[]): Chat<ChatMessage> {
  let chat = chats.get(appId);
  if (!chat) {
    const created = new Chat<ChatMessage>({
      id: appId,
      messages,
      transport,
      onFinish: ({ isError, isAbort }) => void settle(created, projectId, isError || isAbort),
    });
    chats.set(appId, (chat = created));
  }
  return chat;
}

export const existingChat = (appId: string) => chats.get(appId);

export function forgetChat(appId: string): void {
  void chats.get(appId)?.stop();
  chats.delete(appId);
}
