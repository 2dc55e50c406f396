const SUGGESTIONS = [
  "Write a short poem about autumn rain",
  "Write a Python function that checks if a string is a palindrome",
  "What is a state machine, in two sentences?",
];

export function EmptyState({ onPick, disabled }: { onPick: (prompt: string) => void; disabled: boolean }) {
  return (
    <div className="empty-state" data-testid="empty-state">
      <h2>What can I help with?</h2>
      <p>Every prompt is routed by a Burr state machine: poem, code, question, or a request for more detail.</p>
      <ul className="suggestions" aria-label="Example prompts">
        {SUGGESTIONS.map((s) => (
          <li key={s}>
            <button type="button" className="suggestion" onClick={() => onPick(s)} disabled={disabled}>
              {s}
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}
