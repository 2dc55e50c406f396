import type { UseInfiniteQueryResult } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";

import { describeFailure } from "../lib/messages";
import type { ConversationSummary, Info } from "../lib/protocol";
import { conversationPath, followLink } from "../lib/router";
import { CloseIcon, ExternalIcon, PlusIcon, TrashIcon } from "./icons";
import { FailureNotice } from "./MessageView";

interface Props {
  info: Info | undefined;
  /** The conversation list's pages (TanStack Query's infinite query). */
  list: Pick<UseInfiniteQueryResult, "isFetching" | "error" | "refetch" | "hasNextPage" | "fetchNextPage">;
  items: ConversationSummary[];
  currentId: string | null;
  open: boolean;
  /** Shown when the server wants an API key: forget it in this browser. */
  onSignOut: () => void;
  onClose: () => void;
  onNewChat: () => void;
  onDelete: (appId: string) => Promise<void>;
}

type RowProps = { conversation: ConversationSummary; current: boolean; onOpen: () => void; onDelete: Props["onDelete"] };

function ConversationRow({ conversation, current, onOpen, onDelete }: RowProps) {
  const [confirming, setConfirming] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const confirmButton = useRef<HTMLButtonElement>(null);
  const title = conversation.title || "Untitled conversation";

  useEffect(() => {
    if (confirming) confirmButton.current?.focus();
  }, [confirming]);

  return (
    <li className={`conversation${current ? " current" : ""}`} data-testid="conversation-item" data-app-id={conversation.app_id}>
      {confirming ? (
        <div className="confirm-delete" role="group" aria-label={`Delete “${title}”?`}>
          <span className="confirm-text">Delete this chat?</span>
          <button
            ref={confirmButton}
            type="button"
            className="button danger small"
            disabled={deleting}
            onClick={async () => {
              setDeleting(true);
              try {
                await onDelete(conversation.app_id);
              } finally {
                setDeleting(false);
                setConfirming(false);
              }
            }}
          >
            Delete
          </button>
          <button type="button" className="button quiet small" onClick={() => setConfirming(false)}>
            Cancel
          </button>
        </div>
      ) : (
        <>
          <a
            href={conversationPath(conversation.app_id)}
            aria-current={current ? "page" : undefined}
            onClick={(e) => followLink(e, conversationPath(conversation.app_id)) && onOpen()}
            title={title}
          >
            {title}
          </a>
          <button
            type="button"
            className="icon-button row-action"
            aria-label={`Delete conversation “${title}”`}
            onClick={() => setConfirming(true)}
          >
            <TrashIcon />
          </button>
        </>
      )}
    </li>
  );
}

export function Sidebar({ info, list, items, currentId, open, onSignOut, onClose, onNewChat, onDelete }: Props) {
  const loading = list.isFetching;
  const panel = useRef<HTMLElement>(null);

  // On phones the sidebar is a drawer: move focus into it when it opens.
  useEffect(() => {
    if (open) panel.current?.querySelector<HTMLElement>(".new-chat")?.focus();
  }, [open]);

  return (
    <>
      <nav
        id="sidebar"
        ref={panel}
        className={`sidebar${open ? " open" : ""}`}
        aria-label="Conversations"
        onKeyDown={(e) => {
          if (e.key === "Escape" && open) {
            // Closing the drawer is all this Escape does (it must not also stop a reply).
            e.preventDefault();
            onClose();
          }
        }}
      >
        <div className="sidebar-top">
          <button type="button" className="button new-chat" onClick={onNewChat} data-testid="new-chat">
            <PlusIcon /> New chat
          </button>
          <button type="button" className="icon-button drawer-close" aria-label="Close conversations" onClick={onClose}>
            <CloseIcon />
          </button>
        </div>

        <div className="sidebar-scroll">
          <h2 className="sidebar-heading">Recent</h2>
          {list.error && <FailureNotice error={describeFailure(list.error)} onRetry={() => void list.refetch()} />}
          {items.length === 0 && !loading && !list.error && <p className="sidebar-empty">No conversations yet.</p>}
          <ul className="conversation-list" data-testid="conversation-list">
            {items.map((c) => (
              <ConversationRow
                key={c.app_id}
                conversation={c}
                current={c.app_id === currentId}
                onOpen={onClose}
                onDelete={onDelete}
              />
            ))}
          </ul>
          {list.hasNextPage && (
            <button type="button" className="button quiet load-more" onClick={() => void list.fetchNextPage()} disabled={loading}>
              {loading ? "Loading…" : "Show more"}
            </button>
          )}
        </div>

        <div className="sidebar-footer">
          {info?.offline_model && (
            <p className="offline-note" title="No API key is configured on the server: replies come from the embedded offline model.">
              <span className="dot" aria-hidden="true" /> Offline model
            </p>
          )}
          {info?.burr_ui_url && (
            <a href={info.burr_ui_url} target="_blank" rel="noopener" className="burr-ui-link">
              Burr tracking UI <ExternalIcon />
            </a>
          )}
          {info?.user && (
            <p className="signed-in" data-testid="signed-in">
              Signed in as <strong>{info.user.id}</strong>
              {info.user.admin && " (admin)"}
            </p>
          )}
          {info?.auth_required && (
            <button type="button" className="button quiet small sign-out" onClick={onSignOut}>
              {info.sign_in_url ? "Sign out" : "Forget API key"}
            </button>
          )}
        </div>
      </nav>
      {open && <div className="backdrop" onClick={onClose} aria-hidden="true" />}
    </>
  );
}
