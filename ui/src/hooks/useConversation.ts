/**
 * A conversation on screen: the AI SDK's `useChat` over its chat (resuming a reply still being
 * written when the page opens), the version switch as a TanStack mutation, and what the page
 * does with them: send, stop (on the server), retry, edit, regenerate, switch.
 */
import { type Chat, useChat } from "@ai-sdk/react";
import { useMutation } from "@tanstack/react-query";
import { useCallback, useEffect, useMemo } from "react";

import { stopChat } from "../lib/chats";
import { branchTargets, type ChatMessage, describeFailure, lastPrompt, switchedTo, toRows } from "../lib/messages";
import { switchVersion } from "../lib/queries";

const NONE = new Map();

export function useConversation(chat: Chat<ChatMessage>, projectId: string) {
  const { messages, status, error, sendMessage, regenerate, setMessages } = useChat({ chat, resume: true, experimental_throttle: 40 });
  const busy = status === "submitted" || status === "streaming";
  const switching = useMutation({
    mutationFn: ({ index, version }: { index: number; version: number }) => switchVersion(projectId, chat.id, index, version),
    onSuccess: (items, { index }) => setMessages((current) => switchedTo(current, index, items)),
  });
  const locked = busy || switching.isPending;
  const targets = useMemo(() => (locked ? NONE : branchTargets(messages)), [locked, messages]);
  const rows = useMemo(() => toRows(messages, status, error, targets), [messages, status, error, targets]);
  const stop = useCallback(() => stopChat(chat, projectId), [projectId, chat]);

  useEffect(() => {
    if (!busy) return;
    const onKey = (event: KeyboardEvent) => event.key === "Escape" && !event.defaultPrevented && void stop();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [busy, stop]);

  const { mutate, reset } = switching;
  return {
    messages,
    rows,
    busy,
    locked,
    switchError: switching.error && { failure: describeFailure(switching.error), dismiss: reset },
    stop,
    send: useCallback((text: string) => void sendMessage({ text }), [sendMessage]),
    /** Sends the failed (or stopped) turn's prompt again; a prompt the server never got is replaced. */
    retry: useCallback(() => {
      const prompt = lastPrompt(chat.messages);
      if (prompt === undefined) return;
      if (chat.messages.at(-1)?.role === "user") setMessages(chat.messages.slice(0, -1));
      void sendMessage({ text: prompt });
    }, [chat, sendMessage, setMessages]),
    edit: useCallback((id: string, text: string) => void sendMessage({ text, messageId: id }), [sendMessage]),
    regenerate: useCallback((id: string) => void regenerate({ messageId: id }), [regenerate]),
    switchTo: useCallback((index: number, version: number) => mutate({ index, version }), [mutate]),
  };
}
