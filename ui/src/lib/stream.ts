/**
 * Turns the bytes of a `text/event-stream` response into typed chat frames. Pure: no React,
 * no fetch, so it is unit-tested on hand-made chunks.
 *
 * Why eventsource-parser rather than hand-rolled line splitting: the SSE grammar has corner
 * cases (LF, CR and CRLF line ends, a leading BOM, comment lines, multi-line `data:` fields, a
 * field split anywhere between two chunks) that this small, dependency-free library implements
 * from the WHATWG spec and that a home-made splitter tends to get subtly wrong. It works on
 * strings, so the bytes are decoded here by one streaming TextDecoder (`stream: true`), which
 * holds back a UTF-8 sequence cut between two chunks until its last byte arrives.
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";

import type { ChatItem, EndValue, Frame, StreamErrorValue } from "./protocol";

/** The server sent something that is not a valid frame of our protocol. */
export class StreamProtocolError extends Error {
  override name = "StreamProtocolError";
}

const KNOWN_TYPES = new Set(["chat_history", "prompt", "step", "delta", "end", "error"]);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isChatItem(value: unknown): value is ChatItem {
  return (
    isObject(value) &&
    (value.role === "user" || value.role === "assistant") &&
    typeof value.content === "string"
  );
}

function normaliseItem(value: ChatItem): ChatItem {
  const type = value.type;
  const item: ChatItem = {
    role: value.role,
    content: value.content,
    type: type === "code" || type === "error" || type === "image" ? type : "text",
  };
  if (value.interrupted === true) item.interrupted = true;
  return item;
}

/**
 * Parses one `data:` payload. Returns null for a frame type this client does not know (the
 * protocol may grow; such frames are ignored); throws StreamProtocolError for invalid JSON or a
 * known frame type with the wrong shape.
 */
export function parseFrame(data: string): Frame | null {
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    throw new StreamProtocolError(`The server sent a frame that is not JSON: ${data.slice(0, 80)}`);
  }
  if (!isObject(raw) || typeof raw.type !== "string") {
    throw new StreamProtocolError("The server sent a frame without a type.");
  }
  if (!KNOWN_TYPES.has(raw.type)) return null;
  const value = raw.value;
  switch (raw.type) {
    case "chat_history":
      if (!Array.isArray(value) || !value.every(isChatItem)) break;
      return { type: "chat_history", value: value.map(normaliseItem) };
    case "delta":
    case "prompt":
    case "step":
      if (typeof value !== "string") break;
      return { type: raw.type, value };
    case "end": {
      if (!isObject(value) || !isChatItem(value.item)) break;
      const timings = isObject(value.timings) ? value.timings : {};
      const end: EndValue = {
        item: normaliseItem(value.item),
        mode: typeof value.mode === "string" ? value.mode : "",
        timings: {
          first_delta_ms: typeof timings.first_delta_ms === "number" ? timings.first_delta_ms : null,
          total_ms: typeof timings.total_ms === "number" ? timings.total_ms : 0,
        },
      };
      return { type: "end", value: end };
    }
    case "error": {
      if (!isObject(value)) break;
      const error: StreamErrorValue = {
        code: typeof value.code === "string" ? value.code : "error",
        message:
          typeof value.message === "string" && value.message
            ? value.message
            : "The server reported an error.",
        retryable: value.retryable === true,
      };
      return { type: "error", value: error };
    }
  }
  throw new StreamProtocolError(`The server sent a malformed "${raw.type}" frame.`);
}

/**
 * Receives each frame, with the SSE `id:` it came with (GET …/stream sends one per frame after
 * the history; a reader that reconnects passes the last one back to get only what it missed).
 */
export type FrameHandler = (frame: Frame, id: string | undefined) => void;

export interface FrameDecoder {
  /** Feeds the next chunk of response bytes; calls onFrame for every frame it completes. */
  push(chunk: Uint8Array): void;
  /** The body ended: decodes any held-back bytes. An unterminated last frame is dropped (SSE rule). */
  end(): void;
}

/**
 * Incremental decoder: bytes in, frames out. Throws StreamProtocolError from push/end when a
 * completed frame is invalid (and stops delivering frames after that).
 */
export function createFrameDecoder(onFrame: FrameHandler): FrameDecoder {
  const text = new TextDecoder("utf-8");
  let failure: StreamProtocolError | null = null;
  const parser = createParser({
    onEvent(message: EventSourceMessage) {
      if (failure) return;
      // Only unnamed (`message`) events carry our frames; a named event is another protocol's.
      if (message.event !== undefined && message.event !== "message") return;
      try {
        const frame = parseFrame(message.data);
        if (frame) onFrame(frame, message.id);
      } catch (error) {
        if (error instanceof StreamProtocolError) failure = error;
        else throw error;
      }
    },
    // Comment lines (": ping" keep-alives) carry nothing for us.
    onComment() {},
  });
  const feed = (chunk: string) => {
    if (failure) throw failure;
    if (chunk) parser.feed(chunk);
    if (failure) throw failure;
  };
  return {
    push(chunk) {
      feed(text.decode(chunk, { stream: true }));
    },
    end() {
      feed(text.decode());
    },
  };
}

/**
 * Reads a whole response body, calling onFrame for each frame as it arrives. Resolves when the
 * body ends or when `signal` aborts (the caller checks `signal.aborted`); rejects with
 * StreamProtocolError for a malformed frame and with the reader's error for a broken connection.
 */
export async function readFrames(
  body: ReadableStream<Uint8Array>,
  onFrame: FrameHandler,
  signal?: AbortSignal,
): Promise<void> {
  const reader = body.getReader();
  const decoder = createFrameDecoder(onFrame);
  // fetch() already rejects pending reads on abort; cancelling also covers other stream sources.
  const onAbort = () => void reader.cancel().catch(() => {});
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    if (signal?.aborted) return;
    for (;;) {
      const { done, value } = await reader.read();
      if (signal?.aborted) return;
      if (done) break;
      decoder.push(value);
    }
    decoder.end();
  } finally {
    signal?.removeEventListener("abort", onAbort);
    reader.releaseLock();
  }
}
