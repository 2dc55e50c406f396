/**
 * The inline editor of a sent prompt: Enter saves (a new branch with the new prompt),
 * Shift+Enter adds a line, Escape or Cancel closes it. Saving the same text is not offered:
 * that is what Regenerate is for.
 */
import { type FormEvent, type KeyboardEvent, useEffect, useId, useRef, useState } from "react";

interface Props {
  initial: string;
  /** A reply streams: the edit cannot be sent now. */
  locked: boolean;
  onSave: (prompt: string) => void;
  onCancel: () => void;
}

const MAX_HEIGHT_PX = 320;

export function PromptEditor({ initial, locked, onSave, onCancel }: Props) {
  const [text, setText] = useState(initial);
  const area = useRef<HTMLTextAreaElement>(null);
  const hint = useId();
  const prompt = text.trim();
  const canSave = !locked && prompt !== "" && prompt !== initial.trim();

  useEffect(() => {
    const el = area.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${Math.min(el.scrollHeight, MAX_HEIGHT_PX)}px`;
  }, [text]);

  // Opened by the Edit button: the keyboard goes to the text, after its last character.
  useEffect(() => {
    const el = area.current;
    if (!el) return;
    el.focus();
    el.setSelectionRange(el.value.length, el.value.length);
  }, []);

  const save = () => {
    if (canSave) onSave(prompt);
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.nativeEvent.isComposing) return;
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      save();
    } else if (event.key === "Escape") {
      // Handled here: Escape elsewhere on the page stops a streaming reply.
      event.preventDefault();
      event.stopPropagation();
      onCancel();
    }
  };

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    save();
  };

  return (
    <form className="prompt-editor" onSubmit={onSubmit} aria-label="Edit your message">
      <textarea
        ref={area}
        value={text}
        rows={1}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={onKeyDown}
        aria-label="Edited message"
        aria-describedby={hint}
        data-testid="edit-input"
      />
      <div className="prompt-editor-bar">
        <span id={hint} className="prompt-editor-hint">
          Enter to save as a new version, Escape to cancel.
        </span>
        <button type="button" className="button quiet small" onClick={onCancel} data-testid="edit-cancel">
          Cancel
        </button>
        <button type="submit" className="button primary small" disabled={!canSave} data-testid="edit-save">
          Save
        </button>
      </div>
    </form>
  );
}
