/**
 * The inline editor of a sent prompt: Enter saves (a new branch with the new prompt),
 * Shift+Enter adds a line, Escape or Cancel closes it. Saving the same text is not offered:
 * that is what Regenerate is for.
 */
import { useEffect, useId, useRef, useState } from "react";

import { isSubmitKey, useAutoGrow } from "./Composer";

interface Props {
  initial: string;
  /** A reply streams: the edit cannot be sent now. */
  locked: boolean;
  onSave: (prompt: string) => void;
  onCancel: () => void;
}

export function PromptEditor({ initial, locked, onSave, onCancel }: Props) {
  const [text, setText] = useState(initial);
  const area = useRef<HTMLTextAreaElement>(null);
  const hint = useId();
  const prompt = text.trim();
  const canSave = !locked && prompt !== "" && prompt !== initial.trim();
  const save = () => canSave && onSave(prompt);
  useAutoGrow(area, text, 320);

  // Opened by the Edit button: the keyboard goes to the text, after its last character.
  useEffect(() => {
    const el = area.current!;
    el.focus();
    el.setSelectionRange(el.value.length, el.value.length);
  }, []);

  return (
    <form className="prompt-editor" onSubmit={(e) => (e.preventDefault(), save())} aria-label="Edit your message">
      <textarea
        ref={area}
        value={text}
        rows={1}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => {
          if (isSubmitKey(e)) {
            e.preventDefault();
            save();
          } else if (e.key === "Escape" && !e.nativeEvent.isComposing) {
            // Handled here: Escape elsewhere on the page stops a streaming reply.
            e.preventDefault();
            e.stopPropagation();
            onCancel();
          }
        }}
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
