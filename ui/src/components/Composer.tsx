/**
 * The prompt box: Enter sends, Shift+Enter adds a line; while a reply streams the box is
 * disabled and the send button becomes a stop button (Escape stops too, see useConversation).
 */
import { type KeyboardEvent, type RefObject, useEffect, useRef, useState } from "react";

import { SendIcon, StopIcon } from "./icons";

/** Grows a text box with its text up to `max` px; past that it scrolls inside. */
export function useAutoGrow(area: RefObject<HTMLTextAreaElement | null>, text: string, max: number): void {
  useEffect(() => {
    const el = area.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${Math.min(el.scrollHeight, max)}px`;
  }, [area, text, max]);
}

/** Enter, but not Shift+Enter (a new line) nor the Enter that ends an IME composition. */
export const isSubmitKey = (event: KeyboardEvent) => event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing;

interface Props {
  busy: boolean;
  disabled?: boolean;
  onSend: (prompt: string) => void;
  onStop: () => void;
}

export function Composer({ busy, disabled = false, onSend, onStop }: Props) {
  const [text, setText] = useState("");
  const area = useRef<HTMLTextAreaElement>(null);
  const wasBusy = useRef(busy);
  useAutoGrow(area, text, 220);

  // When a reply ends, give the keyboard back to the prompt box (if focus is not elsewhere).
  useEffect(() => {
    const active = document.activeElement;
    if (wasBusy.current && !busy && (!active || active === document.body || active.closest(".composer"))) area.current?.focus();
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

  return (
    <form className="composer" onSubmit={(e) => (e.preventDefault(), submit())} aria-label="Send a message">
      <div className="composer-box">
        <textarea
          ref={area}
          value={text}
          rows={1}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={(e) => isSubmitKey(e) && (e.preventDefault(), submit())}
          placeholder="Message the chatbot"
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
          <button type="submit" className="icon-button send" aria-label="Send message" disabled={disabled || !text.trim()} data-testid="send">
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
