/**
 * One AI SDK `Chat` per conversation, kept for the page's life: a reply goes on streaming into
 * its conversation while another one is shown, and coming back shows it as it is.
 *
 * The transport is the AI SDK's own, against the server's `/api/chat` (and, to resume, its
 * `GET /api/chat/{id}/stream`). The messages go as the AI SDK sends them (the server keeps the
 * conversation itself and checks them as it checks any AI SDK client's). Once a turn ends, the
 * stored history is read once for what only it knows (every item's index and version marks).
 */
import { Chat } from "@ai-sdk/react";
import { DefaultChatTransport, type UIMessageChunk } from "ai";

import { authFetch } from "./api";
import { type ChatMessage, mergeHistory } from "./messages";
import { historyQuery, queryClient, refreshConversations, stopReply } from "./queries";

const chats = new Map<string, Chat<ChatMessage>>();
/** Chats whose current stream has had its `start` part: the server has begun the turn. */
const begun = new Set<string>();
/** Per chat, who waits for that part (true) or for the request to end without it (false). */
const startWaiters = new Map<string, Array<(began: boolean) => void>>();

function resolveStart(chatId: string, value: boolean): void {
  if (value) begun.add(chatId);
  startWaiters.get(chatId)?.forEach((resolve) => resolve(value));
  startWaiters.delete(chatId);
}

function watchStart(chatId: string, stream: ReadableStream<UIMessageChunk>): ReadableStream<UIMessageChunk> {
  return stream.pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        controller.enqueue(chunk);
        if (chunk.type === "start") resolveStart(chatId, true);
      },
    }),
  );
}

type SendOptions = Parameters<DefaultChatTransport<ChatMessage>["sendMessages"]>[0];
type ReconnectOptions = Parameters<DefaultChatTransport<ChatMessage>["reconnectToStream"]>[0];

class Transport extends DefaultChatTransport<ChatMessage> {
  override async sendMessages(options: SendOptions) {
    begun.delete(options.chatId);
    return watchStart(options.chatId, await super.sendMessages(options));
  }
  override async reconnectToStream(options: ReconnectOptions) {
    begun.delete(options.chatId);
    const stream = await super.reconnectToStream(options);
    return stream && watchStart(options.chatId, stream);
  }
}

const transport = new Transport({
  api: "/api/chat",
  fetch: authFetch,
});

async function settle(chat: Chat<ChatMessage>, projectId: string, failed: boolean): Promise<void> {
  resolveStart(chat.id, false);
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

/**
 * Stops the reply on the server, which keeps what it wrote and ends the stream with `abort`
 * (closing the connection alone would not stop it). Until the server has begun the turn its
 * stop route answers 409, so a stop pressed that early is sent again as soon as the stream's
 * `start` part shows the turn began. Only with no turn to stop at all (it already ended, or
 * the request failed before one began) is the request merely dropped here.
 */
export async function stopChat(chat: Chat<ChatMessage>, projectId: string): Promise<void> {
  const turnBegins = begun.has(chat.id)
    ? Promise.resolve(false)
    : new Promise<boolean>((resolve) => startWaiters.set(chat.id, [...(startWaiters.get(chat.id) ?? []), resolve]));
  const stop = () => stopReply(projectId, chat.id).catch(() => false);
  if ((await stop()) || ((await turnBegins) && (await stop()))) return;
  await chat.stop();
}

export const existingChat = (appId: string) => chats.get(appId);

export function forgetChat(appId: string): void {
  void chats.get(appId)?.stop();
  chats.delete(appId);
}
