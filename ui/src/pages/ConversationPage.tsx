/**
 * `/c/<app_id>`: a conversation. Its chat is this tab's if it has one (a reply may be streaming
 * into it), else it starts from the stored history; either way a reply still being written on
 * the server is resumed into it.
 */
import type { Chat } from "@ai-sdk/react";
import { useQuery } from "@tanstack/react-query";
import { useMemo } from "react";

import { Composer } from "../components/Composer";
import { EmptyState } from "../components/EmptyState";
import { MessageList } from "../components/MessageList";
import { type BranchHandlers, FailureNotice } from "../components/MessageView";
import { useConversation } from "../hooks/useConversation";
import { Layout } from "../Layout";
import { ApiError } from "../lib/api";
import { chatFor, existingChat } from "../lib/chats";
import { type ChatMessage, describeFailure, fromHistory, type Row, shownBranch, textOf } from "../lib/messages";
import { burrRunUrl, type Info } from "../lib/protocol";
import { historyQuery } from "../lib/queries";
import { navigate } from "../lib/router";

const TITLE_CHARS = 60;

export function shortTitle(prompt: string): string {
  const text = prompt.trim();
  return text.length > TITLE_CHARS ? `${text.slice(0, TITLE_CHARS - 1)}…` : text;
}

export function ConversationPage({ info, appId }: { info: Info; appId: string }) {
  const known = existingChat(appId);
  const history = useQuery({ ...historyQuery(info.project_id, appId), enabled: !known });
  const chat = known ?? (history.data ? chatFor(info.project_id, appId, fromHistory(history.data)) : undefined);
  if (chat) return <ChatScreen info={info} chat={chat} />;

  let body;
  if (history.error instanceof ApiError && history.error.status === 404) {
    body = (
      <div className="center-panel" data-testid="conversation-missing">
        <h2>Conversation not found</h2>
        <p>It may have been deleted.</p>
        <button type="button" className="button primary" onClick={() => navigate("/")}>
          Start a new chat
        </button>
      </div>
    );
  } else if (history.error) {
    body = (
      <div className="center-panel">
        <FailureNotice error={describeFailure(history.error)} onRetry={() => void history.refetch()} />
      </div>
    );
  } else {
    body = (
      <div className="center-panel muted" role="status">
        Loading conversation…
      </div>
    );
  }
  return (
    <Layout currentId={appId} title="Conversation">
      {body}
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
  const conversation = useConversation(chat, info.project_id);
  const { messages, rows, busy, locked, send, stop, retry, edit, regenerate, switchTo } = conversation;
  const template = info.burr_app_url_template;
  const branches = useMemo<BranchHandlers>(
    () => ({
      onEdit: edit,
      onRegenerate: regenerate,
      onSwitch: switchTo,
      burrUrl: (branchAppId) => (template ? burrRunUrl(template, info.project_id, branchAppId) : null),
    }),
    [edit, regenerate, switchTo, template, info.project_id],
  );
  const first = messages.find((m) => m.role === "user");
  const burrLink = template && messages.length > 0 ? burrRunUrl(template, info.project_id, shownBranch(messages, appId)) : null;

  return (
    <Layout
      currentId={appId}
      title={first ? shortTitle(textOf(first)) : "New chat"}
      burrLink={burrLink}
      composer={<Composer key={appId} busy={busy} disabled={locked && !busy} onSend={send} onStop={() => void stop()} />}
    >
      {conversation.switchError && (
        <div className="notice">
          <FailureNotice error={conversation.switchError} />
          <button type="button" className="button quiet small" onClick={conversation.dismissSwitchError}>
            Dismiss
          </button>
        </div>
      )}
      <MessageList
        conversationKey={appId}
        messages={rows}
        onRetry={retry}
        locked={locked}
        branches={branches}
        empty={<EmptyState onPick={send} disabled={busy} />}
      />
      <div className="sr-only" role="status" aria-live="polite">
        {announcement(busy, rows.at(-1))}
      </div>
    </Layout>
  );
}
