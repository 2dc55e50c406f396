import { type MouseEvent, useEffect, useRef, useState } from "react";

import type { Failure } from "../lib/messages";
import type { ConversationSummary } from "../lib/protocol";
import { conversationPath, isPlainClick, navigate } from "../lib/router";
import { FailureNotice } from "./MessageView";
import { CloseIcon, ExternalIcon, PlusIcon, TrashIcon } from "./icons";

interface Props {
  items: ConversationSummary[];
  loading: boolean;
  error: Failure | null;
  onRetry: () => void;
  /** Set when the server has more than the pages read: reads the next one. */
  onLoadMore?: () => void;
  currentId: string | null;
  open: boolean;
  burrUiUrl: string | null;
  offlineModel: boolean;
  /** Shown when the server wants an API key: forget it in this browser. */
  onSignOut: (() => void) | null;
  onClose: () => void;
  onNewChat: () => void;
  onDelete: (appId: string) => Promise<void>;
}

function ConversationRow({
  conversation,
  current,
  onOpen,
  onDelete,
}: {
  conversation: ConversationSummary;
  current: boolean;
  onOpen: () => void;
  onDelete: (appId: string) => Promise<void>;
}) {
  const [confirming, setConfirming] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const confirmButton = useRef<HTMLButtonElement>(null);
  const title = conversation.title || "Untitled conversation";

  useEffect(() => {
    if (confirming) confirmButton.current?.focus();
  }, [confirming]);

  const follow = (event: MouseEvent<HTMLAnchorElement>) => {
    if (!isPlainClick(event)) return;
    event.preventDefault();
    navigate(conversationPath(conversation.app_id));
    onOpen();
  };

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
            onClick={follow}
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

export function Sidebar(props: Props) {
  const { items: rows, loading, error, onRetry, onLoadMore, currentId, open, burrUiUrl, offlineModel } = props;
  const { onSignOut, onClose, onNewChat, onDelete } = props;
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
          {error && <FailureNotice error={error} onRetry={onRetry} />}
          {rows.length === 0 && !loading && !error && <p className="sidebar-empty">No conversations yet.</p>}
          <ul className="conversation-list" data-testid="conversation-list">
            {rows.map((c) => (
              <ConversationRow
                key={c.app_id}
                conversation={c}
                current={c.app_id === currentId}
                onOpen={onClose}
                onDelete={onDelete}
              />
            ))}
          </ul>
          {onLoadMore && (
            <button type="button" className="button quiet load-more" onClick={onLoadMore} disabled={loading}>
              {loading ? "Loading…" : "Show more"}
            </button>
          )}
        </div>

        <div className="sidebar-footer">
          {offlineModel && (
            <p className="offline-note" title="No API key is configured on the server: replies come from the embedded offline model.">
              <span className="dot" aria-hidden="true" /> Offline model
            </p>
          )}
          {burrUiUrl && (
            <a href={burrUiUrl} target="_blank" rel="noopener" className="burr-ui-link">
              Burr tracking UI <ExternalIcon />
            </a>
          )}
          {onSignOut && (
            <button type="button" className="button quiet small sign-out" onClick={onSignOut}>
              Forget API key
            </button>
          )}
        </div>
      </nav>
      {open && <div className="backdrop" onClick={onClose} aria-hidden="true" />}
    </>
  );
}
