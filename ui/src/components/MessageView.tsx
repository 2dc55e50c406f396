import { memo } from "react";

import type { Failure, Message } from "../lib/conversation";
import { modeLabel } from "../lib/protocol";
import { CopyButton } from "./CopyButton";
import { RetryIcon } from "./icons";
import { Markdown } from "./Markdown";

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

interface Props {
  message: Message;
  onRetry?: (turnId: string) => void;
}

export const MessageView = memo(function MessageView({ message, onRetry }: Props) {
  if (message.role === "user") {
    return (
      <article className="message user" aria-label="You said" data-testid="message-user">
        {/* Plain text: user input is never parsed as Markdown or HTML. */}
        <div className="user-bubble">{message.content}</div>
      </article>
    );
  }

  const streaming = message.status === "streaming";
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

      {!streaming && message.type !== "error" && (message.content || message.mode) && (
        <footer className="message-meta">
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
          {message.content && (
            <CopyButton className="quiet" text={() => message.content} label="Copy reply" />
          )}
          {message.status === "stopped" && message.prompt && onRetry && !message.retried && (
            <button type="button" className="button quiet" onClick={() => onRetry(message.id)}>
              <RetryIcon /> Regenerate
            </button>
          )}
        </footer>
      )}
    </article>
  );
});
