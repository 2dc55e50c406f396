/**
 * The prompt box: Enter sends, Shift+Enter adds a line; while a reply streams the box is
 * disabled and the send button becomes a stop button (Escape stops too, see useConversation).
 */
import { type FormEvent, type KeyboardEvent, useEffect, useRef, useState } from "react";

import { SendIcon, StopIcon } from "./icons";

interface Props {
  busy: boolean;
  disabled?: boolean;
  placeholder?: string;
  onSend: (prompt: string) => void;
  onStop: () => void;
}

const MAX_HEIGHT_PX = 220;

export function Composer({ busy, disabled = false, placeholder, onSend, onStop }: Props) {
  const [text, setText] = useState("");
  const area = useRef<HTMLTextAreaElement>(null);
  const wasBusy = useRef(busy);

  // Grow with the text up to a limit, then scroll inside.
  useEffect(() => {
    const el = area.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${Math.min(el.scrollHeight, MAX_HEIGHT_PX)}px`;
  }, [text]);

  // When a reply ends, give the keyboard back to the prompt box (if focus is not elsewhere).
  useEffect(() => {
    const el = area.current;
    if (wasBusy.current && !busy && el) {
      const active = document.activeElement;
      if (!active || active === document.body || active.closest(".composer")) el.focus();
    }
    wasBusy.current = busy;
  }, [busy]);

  // Focus on mount where a physical keyboard is likely (not on phones, where it opens the keyboard).
  useEffect(() => {
    if (window.matchMedia?.("(pointer: fine)").matches) area.current?.focus();
  }, []);

  const submit = () => {
    const prompt = text.trim();
    if (!prompt || busy || disabled) return;
    onSend(prompt);
    setText("");
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      submit();
    }
  };

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    submit();
  };

  return (
    <form className="composer" onSubmit={onSubmit} aria-label="Send a message">
      <div className="composer-box">
        <textarea
          ref={area}
          value={text}
          rows={1}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={onKeyDown}
          placeholder={placeholder ?? "Message the chatbot"}
          aria-label="Message"
          aria-describedby="composer-hint"
          disabled={busy || disabled}
          data-testid="composer-input"
        />
        {busy ? (
          <button type="button" className="icon-button stop" onClick={onStop} aria-label="Stop generating" data-testid="stop">
            <StopIcon />
          </button>
        ) : (
          <button
            type="submit"
            className="icon-button send"
            aria-label="Send message"
            disabled={disabled || !text.trim()}
            data-testid="send"
          >
            <SendIcon />
          </button>
        )}
      </div>
      <p id="composer-hint" className="composer-hint">
        {busy ? "Press Escape or the stop button to stop the reply." : "Enter to send, Shift+Enter for a new line."}
      </p>
    </form>
  );
}
