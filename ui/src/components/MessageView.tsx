import { memo, useEffect, useRef, useState } from "react";

import type { Failure, Row } from "../lib/messages";
import { CopyButton } from "./CopyButton";
import { EditIcon, RetryIcon } from "./icons";
import { Markdown } from "./Markdown";
import { PromptEditor } from "./PromptEditor";
import { VersionSwitcher } from "./VersionSwitcher";

const MODE_LABELS: Record<string, string> = {
  generate_poem: "poem",
  generate_code: "code",
  answer_question: "question",
  prompt_for_more: "clarify",
  unsafe_response: "unsafe",
};

const formatMs = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

const FAILURE_TITLES = { stream: "The reply failed", network: "Connection problem" };

export function FailureNotice({ error, onRetry }: { error: Failure; onRetry?: () => void }) {
  const title =
    error.kind !== "http" ? FAILURE_TITLES[error.kind] : error.status === 401 ? "Not authorised" : `Request failed (HTTP ${error.status ?? "error"})`;
  return (
    <div className="failure" role="alert" data-testid="turn-error" data-code={error.code}>
      <div className="failure-text">
        <strong>{title}</strong>
        <p>{error.message}</p>
        <code className="failure-code">{error.code}</code>
      </div>
      {onRetry && (
        <button type="button" className="button secondary" onClick={onRetry}>
          <RetryIcon /> Retry
        </button>
      )}
    </div>
  );
}

/** A failure above the transcript, until dismissed. */
export function Notice({ error, onDismiss }: { error: Failure; onDismiss: () => void }) {
  return (
    <div className="notice">
      <FailureNotice error={error} />
      <button type="button" className="button quiet small" onClick={onDismiss}>
        Dismiss
      </button>
    </div>
  );
}

export interface BranchHandlers {
  onEdit: (id: string, prompt: string) => void;
  onRegenerate: (id: string) => void;
  /** Show version `version` (0-based) at item `index`. */
  onSwitch: (index: number, version: number) => void;
  /** A branch's run in Burr's UI, by its Burr app id; null without Burr's UI. */
  burrUrl: (branchAppId: string) => string | null;
}

type Props = Row & {
  onRetry?: () => void;
  /** A reply streams or a switch is on its way: switchers and editors wait. */
  locked?: boolean;
  branches?: BranchHandlers;
};

export const MessageView = memo(function MessageView(props: Props) {
  return props.role === "user" ? <UserMessage {...props} /> : <AssistantMessage {...props} />;
});

function Versions({ branch, index, locked = false, branches }: Props) {
  if (!branch || !branches || index === undefined) return null;
  const onSwitch = (version: number) => branches.onSwitch(index, version);
  return <VersionSwitcher mark={branch} locked={locked} onSwitch={onSwitch} burrUrl={branches.burrUrl(branch.app_id)} />;
}

function UserMessage(props: Props) {
  const { id, text, branch, action, locked = false, branches } = props;
  const [editing, setEditing] = useState(false);
  const editButton = useRef<HTMLButtonElement>(null);
  const refocus = useRef(false);
  const canEdit = action === "edit" && !locked && branches !== undefined;

  // Cancelling gives the keyboard back to the Edit button that opened the editor.
  useEffect(() => {
    if (!editing && refocus.current) {
      refocus.current = false;
      editButton.current?.focus();
    }
  }, [editing]);

  if (editing && branches) {
    const onSave = (prompt: string) => (setEditing(false), branches.onEdit(id, prompt));
    const onCancel = () => ((refocus.current = true), setEditing(false));
    return (
      <article className="message user" aria-label="You said" data-testid="message-user">
        <PromptEditor initial={text} locked={locked} onSave={onSave} onCancel={onCancel} />
      </article>
    );
  }
  return (
    <article className="message user" aria-label="You said" data-testid="message-user">
      {/* Plain text: user input is never parsed as Markdown or HTML. */}
      <div className="user-bubble" data-testid="user-text">
        {text}
      </div>
      {(canEdit || branch) && (
        <div className="message-actions">
          <Versions {...props} />
          {canEdit && (
            // Icon only: the prompt's text stays the message's only text.
            <button
              type="button"
              ref={editButton}
              className="meta-button"
              aria-label="Edit message"
              title="Edit"
              onClick={() => setEditing(true)}
              data-testid="edit-prompt"
            >
              <EditIcon />
            </button>
          )}
        </div>
      )}
    </article>
  );
}

function AssistantMessage(props: Props) {
  const { id, text, type, status, mode, timings, interrupted, error, retry, branch, onRetry, action, locked, branches } = props;
  const streaming = status === "streaming";
  const canRegenerate = action === "regenerate" && !locked && branches !== undefined;
  const hasReply = type !== "error" && Boolean(text || mode);
  // A reply stopped before the server stored any of it: its prompt is sent again.
  const resend = retry && !error && !canRegenerate ? onRetry : undefined;
  return (
    <article
      className={`message assistant ${status}`}
      aria-label="Assistant replied"
      aria-busy={streaming}
      data-testid="message-assistant"
      data-status={status}
      data-mode={mode ?? ""}
    >
      {type === "error" && !error ? (
        // A failed turn as the server stored it: its message, without a Retry of its own.
        <div className="failure stored" data-testid="stored-error">
          <div className="failure-text">
            <strong>The reply failed</strong>
            <p data-testid="assistant-text">{text}</p>
          </div>
        </div>
      ) : text ? (
        <div className={`markdown${mode === "generate_poem" ? " poem" : ""}`} data-testid="assistant-text">
          <Markdown text={text} />
        </div>
      ) : (
        streaming && (
          <div className="typing" role="status" aria-label="Assistant is writing">
            <span />
            <span />
            <span />
          </div>
        )
      )}

      {error && <FailureNotice error={error} onRetry={retry ? onRetry : undefined} />}

      {!streaming && (hasReply || branch || canRegenerate || resend) && (
        <footer className="message-meta">
          <Versions {...props} />
          {mode && (
            <span className={`mode-badge mode-${mode}`} data-testid="mode-badge" title={`Burr action: ${mode}`}>
              {MODE_LABELS[mode] ?? mode.replace(/_/g, " ")}
            </span>
          )}
          {interrupted && (
            <span className="status-note" data-testid="interrupted">
              {status === "stopped" ? "stopped" : "interrupted"}
            </span>
          )}
          {timings && (
            <span className="timings" title="Time to first token · total time">
              {timings.first_delta_ms !== null && `${formatMs(timings.first_delta_ms)} · `}
              {formatMs(timings.total_ms)}
            </span>
          )}
          {hasReply && text && <CopyButton className="quiet" text={() => text} label="Copy reply" />}
          {canRegenerate && (
            <button type="button" className="meta-button" aria-label="Regenerate reply" onClick={() => branches.onRegenerate(id)} data-testid="regenerate">
              <RetryIcon />
              <span>Regenerate</span>
            </button>
          )}
          {resend && (
            <button type="button" className="button quiet" onClick={resend}>
              <RetryIcon /> Regenerate
            </button>
          )}
        </footer>
      )}
    </article>
  );
}
