import { memo, useEffect, useRef, useState } from "react";

import type { BranchAction } from "../lib/branching";
import type { Failure, Message } from "../lib/conversation";
import { modeLabel } from "../lib/protocol";
import { CopyButton } from "./CopyButton";
import { EditIcon, RetryIcon } from "./icons";
import { Markdown } from "./Markdown";
import { PromptEditor } from "./PromptEditor";
import { VersionSwitcher } from "./VersionSwitcher";

function failureTitle(error: Failure): string {
  switch (error.kind) {
    case "stream":
      return "The reply failed";
    case "http":
      return error.status === 401 ? "Not authorised" : `Request failed (HTTP ${error.status ?? "error"})`;
    case "network":
      return "Connection problem";
    case "protocol":
      return "Unexpected answer from the server";
  }
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function FailureNotice({ error, onRetry }: { error: Failure; onRetry?: () => void }) {
  return (
    <div className="failure" role="alert" data-testid="turn-error" data-code={error.code}>
      <div className="failure-text">
        <strong>{failureTitle(error)}</strong>
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

export interface BranchHandlers {
  /** Edit the prompt at this index: a new branch with `prompt`. */
  onEdit: (index: number, prompt: string) => void;
  /** Regenerate the reply at this index: a new branch asking its prompt again. */
  onRegenerate: (index: number) => void;
  /** Show version `version` (0-based) at this index. */
  onSwitch: (index: number, version: number) => void;
  /** A branch's run in Burr's UI, by its Burr app id; null without Burr's UI. */
  burrUrl: (branchAppId: string) => string | null;
}

interface Props {
  message: Message;
  onRetry?: (turnId: string) => void;
  /** What this message offers (see branchTargets); nothing while the conversation is busy. */
  action?: BranchAction;
  /** A reply streams or a switch is on its way: switchers and editors wait. */
  locked?: boolean;
  branches?: BranchHandlers;
}

export const MessageView = memo(function MessageView(props: Props) {
  return props.message.role === "user" ? <UserMessage {...props} /> : <AssistantMessage {...props} />;
});

function Versions({ message, locked = false, branches }: Props) {
  const mark = message.branch;
  const index = message.index;
  if (!mark || !branches || index === undefined) return null;
  return (
    <VersionSwitcher
      mark={mark}
      locked={locked}
      onSwitch={(version) => branches.onSwitch(index, version)}
      burrUrl={branches.burrUrl(mark.app_id)}
    />
  );
}

function UserMessage(props: Props) {
  const { message, action, locked = false, branches } = props;
  const [editing, setEditing] = useState(false);
  const editButton = useRef<HTMLButtonElement>(null);
  const refocus = useRef(false);
  const index = message.index;
  const canEdit = action === "edit" && !locked && branches !== undefined && index !== undefined;

  // Cancelling gives the keyboard back to the Edit button that opened the editor.
  useEffect(() => {
    if (!editing && refocus.current) {
      refocus.current = false;
      editButton.current?.focus();
    }
  }, [editing]);

  return (
    <article className="message user" aria-label="You said" data-testid="message-user">
      {editing && branches && index !== undefined ? (
        <PromptEditor
          initial={message.content}
          locked={locked}
          onSave={(prompt) => {
            setEditing(false);
            branches.onEdit(index, prompt);
          }}
          onCancel={() => {
            refocus.current = true;
            setEditing(false);
          }}
        />
      ) : (
        <>
          {/* Plain text: user input is never parsed as Markdown or HTML. */}
          <div className="user-bubble" data-testid="user-text">
            {message.content}
          </div>
          {(canEdit || message.branch) && (
            <div className="message-actions">
              <Versions {...props} />
              {canEdit && (
                <button
                  type="button"
                  ref={editButton}
                  className="meta-button"
                  aria-label="Edit message"
                  title="Edit"
                  onClick={() => setEditing(true)}
                  data-testid="edit-prompt"
                >
                  {/* Icon only: the prompt's text stays the message's only text. */}
                  <EditIcon />
                </button>
              )}
            </div>
          )}
        </>
      )}
    </article>
  );
}

function AssistantMessage(props: Props) {
  const { message, onRetry, action, locked = false, branches } = props;
  const streaming = message.status === "streaming";
  const index = message.index;
  const canRegenerate = action === "regenerate" && !locked && branches !== undefined && index !== undefined;
  const hasReply = message.type !== "error" && Boolean(message.content || message.mode);
  const poem = message.mode === "generate_poem";
  const classes = ["message", "assistant", message.status];
  return (
    <article
      className={classes.join(" ")}
      aria-label="Assistant replied"
      aria-busy={streaming}
      data-testid="message-assistant"
      data-status={message.status}
      data-mode={message.mode ?? ""}
    >
      {message.type === "error" && !message.error ? (
        // A failed turn as the server stored it: its message, without a Retry of its own.
        <div className="failure stored" data-testid="stored-error">
          <div className="failure-text">
            <strong>The reply failed</strong>
            <p data-testid="assistant-text">{message.content}</p>
          </div>
        </div>
      ) : message.content ? (
        <div className={`markdown${poem ? " poem" : ""}`} data-testid="assistant-text">
          <Markdown text={message.content} />
        </div>
      ) : streaming ? (
        <div className="typing" role="status" aria-label="Assistant is writing">
          <span />
          <span />
          <span />
        </div>
      ) : null}

      {message.error && (
        <FailureNotice
          error={message.error}
          onRetry={message.prompt && onRetry && !message.retried ? () => onRetry(message.id) : undefined}
        />
      )}

      {!streaming && (hasReply || message.branch || canRegenerate) && (
        <footer className="message-meta">
          <Versions {...props} />
          {message.mode && (
            <span className={`mode-badge mode-${message.mode}`} data-testid="mode-badge" title={`Burr action: ${message.mode}`}>
              {modeLabel(message.mode)}
            </span>
          )}
          {message.interrupted && (
            <span className="status-note" data-testid="interrupted">
              {message.status === "stopped" ? "stopped" : "interrupted"}
            </span>
          )}
          {message.timings && (
            <span className="timings" title="Time to first token · total time">
              {message.timings.first_delta_ms !== null && `${formatMs(message.timings.first_delta_ms)} · `}
              {formatMs(message.timings.total_ms)}
            </span>
          )}
          {hasReply && message.content && (
            <CopyButton className="quiet" text={() => message.content} label="Copy reply" />
          )}
          {canRegenerate ? (
            <button
              type="button"
              className="meta-button"
              aria-label="Regenerate reply"
              onClick={() => branches.onRegenerate(index)}
              data-testid="regenerate"
            >
              <RetryIcon />
              <span>Regenerate</span>
            </button>
          ) : (
            // A reply stopped before the server stored any of it: its prompt is sent again.
            message.status === "stopped" &&
            message.prompt &&
            onRetry &&
            !message.retried && (
              <button type="button" className="button quiet" onClick={() => onRetry(message.id)}>
                <RetryIcon /> Regenerate
              </button>
            )
          )}
        </footer>
      )}
    </article>
  );
}
