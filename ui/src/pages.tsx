/**
 * The pages: `/`, a new conversation, and `/c/<app_id>`, a conversation. A conversation's chat
 * is this tab's if it has one (a reply may be streaming into it), else it starts from the
 * stored history; either way a reply still being written on the server is resumed into it.
 */
import type { Chat } from "@ai-sdk/react";
import { useQuery } from "@tanstack/react-query";
import { generateId } from "ai";
import { useMemo } from "react";

import { Composer } from "./components/Composer";
import { MessageList } from "./components/MessageList";
import { type BranchHandlers, Notice } from "./components/MessageView";
import { useConversation } from "./hooks/useConversation";
import { Layout, Pending } from "./Layout";
import { ApiError } from "./lib/api";
import { chatFor, existingChat } from "./lib/chats";
import { type ChatMessage, fromHistory, type Row, shownBranch, textOf } from "./lib/messages";
import { burrRunUrl, type Info } from "./lib/protocol";
import { historyQuery, listStarted } from "./lib/queries";
import { conversationPath, navigate } from "./lib/router";

const TITLE_CHARS = 60;

function shortTitle(prompt: string): string {
  const text = prompt.trim();
  return text.length > TITLE_CHARS ? `${text.slice(0, TITLE_CHARS - 1)}…` : text;
}

export function HomePage({ info }: { info: Info }) {
  const send = (prompt: string) => {
    // randomUUID exists only in secure contexts (https, localhost), not on a LAN address over http.
    const appId = crypto.randomUUID?.() ?? generateId();
    const now = new Date().toISOString();
    listStarted(info.project_id, { app_id: appId, title: shortTitle(prompt), turns: 0, created_at: now, updated_at: now });
    void chatFor(info.project_id, appId, []).sendMessage({ text: prompt });
    navigate(conversationPath(appId));
  };
  return (
    <Layout title="New chat" composer={<Composer key="home" busy={false} onSend={send} onStop={() => undefined} />}>
      <MessageList conversationKey="home" messages={[]} onPick={send} />
    </Layout>
  );
}

export function ConversationPage({ info, appId }: { info: Info; appId: string }) {
  const known = existingChat(appId);
  const history = useQuery({ ...historyQuery(info.project_id, appId), enabled: !known });
  const chat = known ?? (history.data ? chatFor(info.project_id, appId, fromHistory(history.data)) : undefined);
  if (chat) return <ChatScreen info={info} chat={chat} />;
  return (
    <Layout currentId={appId} title="Conversation">
      {history.error instanceof ApiError && history.error.status === 404 ? (
        <div className="center-panel" data-testid="conversation-missing">
          <h2>Conversation not found</h2>
          <p>It may have been deleted.</p>
          <button type="button" className="button primary" onClick={() => navigate("/")}>
            Start a new chat
          </button>
        </div>
      ) : (
        <Pending query={history} waiting="Loading conversation…" />
      )}
    </Layout>
  );
}

/** One sentence for screen readers when a reply ends (the transcript itself is not live). */
function announcement(busy: boolean, last: Row | undefined): string {
  if (busy) return "The assistant is replying.";
  if (last?.role !== "assistant") return "";
  if (last.status === "failed") return `The reply failed: ${last.error?.message ?? "error"}`;
  return last.status === "stopped" ? "Reply stopped." : "The assistant finished replying.";
}

function ChatScreen({ info, chat }: { info: Info; chat: Chat<ChatMessage> }) {
  const appId = chat.id;
  const { messages, rows, busy, locked, send, stop, retry, edit, regenerate, switchTo, switchError } = useConversation(
    chat,
    info.project_id,
  );
  const template = info.burr_app_url_template;
  const runUrl = useMemo(
    () => (template ? (branchAppId: string) => burrRunUrl(template, info.project_id, branchAppId) : () => null),
    [template, info.project_id],
  );
  const branches = useMemo<BranchHandlers>(
    () => ({ onEdit: edit, onRegenerate: regenerate, onSwitch: switchTo, burrUrl: runUrl }),
    [edit, regenerate, switchTo, runUrl],
  );
  const first = messages.find((m) => m.role === "user");

  return (
    <Layout
      currentId={appId}
      title={first ? shortTitle(textOf(first)) : "New chat"}
      burrLink={messages.length > 0 ? runUrl(shownBranch(messages, appId)) : null}
      composer={<Composer key={appId} busy={busy} disabled={locked && !busy} onSend={send} onStop={() => void stop()} />}
    >
      {switchError && <Notice error={switchError.failure} onDismiss={switchError.dismiss} />}
      <MessageList conversationKey={appId} messages={rows} onPick={send} onRetry={retry} locked={locked} branches={branches} />
      <div className="sr-only" role="status" aria-live="polite">
        {announcement(busy, rows.at(-1))}
      </div>
    </Layout>
  );
}
