/**
 * The scrolling transcript. Follows the newest text while the reader is at the bottom; once
 * they scroll up it stays put and offers a "jump to latest" button. A new prompt, or switching
 * conversation, always goes back to the bottom. Empty, it offers example prompts.
 */
import { useLayoutEffect, useRef, useState } from "react";

import type { Row } from "../lib/messages";
import { ArrowDownIcon } from "./icons";
import { type BranchHandlers, MessageView } from "./MessageView";

const STICKY_PX = 64;
const SUGGESTIONS = [
  "Write a short poem about autumn rain",
  "Write a Python function that checks if a string is a palindrome",
  "What is a state machine, in two sentences?",
];

interface Props {
  conversationKey: string;
  messages: Row[];
  /** Sends an example prompt. */
  onPick: (prompt: string) => void;
  onRetry?: () => void;
  /** A reply streams or a version switch is on its way: no edit, regenerate, switch or example. */
  locked?: boolean;
  branches?: BranchHandlers;
}

export function MessageList({ conversationKey, messages, onPick, onRetry, locked = false, branches }: Props) {
  const scroller = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const [away, setAway] = useState(false);
  const last = useRef({ count: 0, key: conversationKey });

  const toBottom = () => {
    stick.current = true;
    scroller.current!.scrollTop = scroller.current!.scrollHeight;
    setAway(false);
  };

  useLayoutEffect(() => {
    const newTurn = messages.length > last.current.count && messages.at(-1)?.status === "streaming";
    if (last.current.key !== conversationKey || newTurn || stick.current) toBottom();
    last.current = { count: messages.length, key: conversationKey };
  }, [conversationKey, messages]);

  const onScroll = () => {
    const el = scroller.current!;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight <= STICKY_PX;
    setAway(!stick.current);
  };

  return (
    <div className="transcript-wrap">
      <div
        className="transcript"
        ref={scroller}
        onScroll={onScroll}
        role="log"
        aria-label="Conversation"
        // Screen readers get one announcement per reply (see ChatScreen), not one per token.
        aria-live="off"
        tabIndex={0}
        data-testid="transcript"
      >
        <div className="transcript-inner">
          {messages.length > 0 ? (
            messages.map((m) => <MessageView key={m.id} {...m} onRetry={onRetry} locked={locked} branches={branches} />)
          ) : (
            <div className="empty-state" data-testid="empty-state">
              <h2>What can I help with?</h2>
              <p>Every prompt is routed by a Burr state machine: poem, code, question, or a request for more detail.</p>
              <ul className="suggestions" aria-label="Example prompts">
                {SUGGESTIONS.map((s) => (
                  <li key={s}>
                    <button type="button" className="suggestion" onClick={() => onPick(s)} disabled={locked}>
                      {s}
                    </button>
                  </li>
                ))}
              </ul>
            </div>
          )}
        </div>
      </div>
      {away && messages.length > 0 && (
        <button type="button" className="jump" onClick={toBottom} aria-label="Scroll to the latest message">
          <ArrowDownIcon />
        </button>
      )}
    </div>
  );
}
