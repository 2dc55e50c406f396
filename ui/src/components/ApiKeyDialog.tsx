/**
 * Asks for the server's API key after a 401. A native modal <dialog> gives the focus trap,
 * Escape-to-cancel and the inert background for free.
 */
import { useEffect, useRef, useState } from "react";

import type { KeyPrompt } from "../lib/api";

export function ApiKeyDialog({ prompt: { reason, answer } }: { prompt: KeyPrompt }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [key, setKey] = useState("");

  useEffect(() => {
    const el = dialog.current!;
    if (!el.open) el.showModal();
    return () => el.close();
  }, []);

  return (
    <dialog
      ref={dialog}
      className="key-dialog"
      aria-labelledby="key-dialog-title"
      aria-describedby="key-dialog-text"
      onCancel={(e) => (e.preventDefault(), answer(null))}
      data-testid="api-key-dialog"
    >
      <form onSubmit={(e) => (e.preventDefault(), key.trim() && answer(key.trim()))}>
        <h2 id="key-dialog-title">API key required</h2>
        <p id="key-dialog-text">
          {reason === "rejected"
            ? "The server refused that API key. Enter a valid one."
            : "This server needs an API key. It is kept in this browser only."}
        </p>
        <label htmlFor="api-key-input">API key</label>
        <input
          id="api-key-input"
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={key}
          onChange={(e) => setKey(e.target.value)}
          autoFocus
          aria-invalid={reason === "rejected"}
        />
        <div className="dialog-actions">
          <button type="button" className="button quiet" onClick={() => answer(null)}>
            Cancel
          </button>
          <button type="submit" className="button primary" disabled={!key.trim()}>
            Save key
          </button>
        </div>
      </form>
    </dialog>
  );
}
