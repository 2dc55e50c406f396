/**
 * The scrolling transcript. Follows the newest text while the reader is at the bottom; once
 * they scroll up it stays put and offers a "jump to latest" button. A new prompt, or switching
 * conversation, always goes back to the bottom.
 */
import { type ReactNode, useLayoutEffect, useRef, useState } from "react";

import type { Row } from "../lib/messages";
import { ArrowDownIcon } from "./icons";
import { type BranchHandlers, MessageView } from "./MessageView";

const STICKY_PX = 64;

interface Props {
  conversationKey: string;
  messages: Row[];
  onRetry?: () => void;
  /** A reply streams or a version switch is on its way: no edit, regenerate or switch. */
  locked?: boolean;
  branches?: BranchHandlers;
  empty?: ReactNode;
}

export function MessageList({ conversationKey, messages, onRetry, locked = false, branches, empty }: Props) {
  const scroller = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const [away, setAway] = useState(false);
  const lastCount = useRef(0);
  const lastKey = useRef(conversationKey);

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight <= STICKY_PX;
    stick.current = atBottom;
    setAway(!atBottom);
  };

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const switched = lastKey.current !== conversationKey;
    const newTurn = messages.length > lastCount.current && messages.at(-1)?.status === "streaming";
    lastKey.current = conversationKey;
    lastCount.current = messages.length;
    if (switched || newTurn) stick.current = true;
    if (stick.current) {
      el.scrollTop = el.scrollHeight;
      setAway(false);
    }
  }, [conversationKey, messages]);

  const jump = () => {
    const el = scroller.current;
    if (!el) return;
    stick.current = true;
    el.scrollTop = el.scrollHeight;
    setAway(false);
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
          {messages.length === 0
            ? empty
            : messages.map((m) => (
                <MessageView key={m.id} {...m} onRetry={onRetry} locked={locked} branches={branches} />
              ))}
        </div>
      </div>
      {away && messages.length > 0 && (
        <button type="button" className="jump" onClick={jump} aria-label="Scroll to the latest message">
          <ArrowDownIcon />
        </button>
      )}
    </div>
  );
}
