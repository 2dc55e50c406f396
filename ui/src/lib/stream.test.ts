import { describe, expect, it } from "vitest";

import type { Frame } from "./protocol";
import { createFrameDecoder, parseFrame, readFrames, StreamProtocolError } from "./stream";

const enc = new TextEncoder();

function decodeChunks(chunks: (string | Uint8Array)[]): Frame[] {
  const frames: Frame[] = [];
  const decoder = createFrameDecoder((f) => frames.push(f));
  for (const chunk of chunks) decoder.push(typeof chunk === "string" ? enc.encode(chunk) : chunk);
  decoder.end();
  return frames;
}

function frame(obj: unknown, eol = "\n"): string {
  return `data: ${JSON.stringify(obj)}${eol}${eol}`;
}

const endValue = {
  item: { role: "assistant", content: "Hi there", type: "text" },
  mode: "answer_question",
  timings: { first_delta_ms: 12.5, total_ms: 40 },
};

describe("parseFrame", () => {
  it("parses the four frame types", () => {
    expect(parseFrame('{"type":"delta","value":"a"}')).toEqual({ type: "delta", value: "a" });
    expect(
      parseFrame('{"type":"chat_history","value":[{"role":"user","content":"q","type":"text"}]}'),
    ).toEqual({ type: "chat_history", value: [{ role: "user", content: "q", type: "text" }] });
    expect(parseFrame(JSON.stringify({ type: "end", value: endValue }))).toEqual({
      type: "end",
      value: endValue,
    });
    expect(
      parseFrame('{"type":"error","value":{"code":"upstream_error","message":"boom","retryable":true}}'),
    ).toEqual({ type: "error", value: { code: "upstream_error", message: "boom", retryable: true } });
  });

  it("keeps the interrupted flag of history items", () => {
    const parsed = parseFrame(
      '{"type":"chat_history","value":[{"role":"assistant","content":"par","type":"text","interrupted":true}]}',
    );
    expect(parsed).toEqual({
      type: "chat_history",
      value: [{ role: "assistant", content: "par", type: "text", interrupted: true }],
    });
  });

  it("parses the frames of a reattached stream: the prompt and the step", () => {
    expect(parseFrame('{"type":"prompt","value":"Again?"}')).toEqual({ type: "prompt", value: "Again?" });
    expect(parseFrame('{"type":"step","value":"generate_poem"}')).toEqual({ type: "step", value: "generate_poem" });
    expect(() => parseFrame('{"type":"prompt","value":null}')).toThrow(StreamProtocolError);
  });

  it("ignores unknown frame types", () => {
    expect(parseFrame('{"type":"usage","value":{"tokens":3}}')).toBeNull();
  });

  it("rejects invalid JSON and malformed known frames", () => {
    expect(() => parseFrame("{not json")).toThrow(StreamProtocolError);
    expect(() => parseFrame('{"value":"x"}')).toThrow(StreamProtocolError);
    expect(() => parseFrame('{"type":"delta","value":3}')).toThrow(StreamProtocolError);
    expect(() => parseFrame('{"type":"end","value":{"mode":"x"}}')).toThrow(StreamProtocolError);
  });
});

describe("createFrameDecoder", () => {
  it("decodes several frames in one chunk, in order", () => {
    const chunk = frame({ type: "chat_history", value: [] }) + frame({ type: "delta", value: "a" }) +
      frame({ type: "delta", value: "b" });
    expect(decodeChunks([chunk])).toEqual([
      { type: "chat_history", value: [] },
      { type: "delta", value: "a" },
      { type: "delta", value: "b" },
    ]);
  });

  it("joins a frame split across chunks at every possible byte", () => {
    const text = frame({ type: "delta", value: "hello" }) + frame({ type: "end", value: endValue });
    for (let cut = 1; cut < text.length; cut++) {
      const frames = decodeChunks([text.slice(0, cut), text.slice(cut)]);
      expect(frames.map((f) => f.type), `cut at ${cut}`).toEqual(["delta", "end"]);
    }
  });

  it("decodes a multi-byte UTF-8 character split across chunks", () => {
    const bytes = enc.encode(frame({ type: "delta", value: "é🙂" }));
    const emojiStart = bytes.indexOf(0xf0);
    expect(emojiStart).toBeGreaterThan(0);
    // Split inside the 4-byte emoji, and inside the 2-byte é just before it.
    const parts = [
      bytes.slice(0, emojiStart - 1),
      bytes.slice(emojiStart - 1, emojiStart + 2),
      bytes.slice(emojiStart + 2),
    ];
    expect(decodeChunks(parts)).toEqual([{ type: "delta", value: "é🙂" }]);
  });

  it("decodes byte-by-byte delivery", () => {
    const bytes = enc.encode(frame({ type: "delta", value: "naïve — ok" }));
    const chunks = Array.from(bytes, (b) => Uint8Array.of(b));
    expect(decodeChunks(chunks)).toEqual([{ type: "delta", value: "naïve — ok" }]);
  });

  it("passes each frame's SSE id, and none for a frame without one", () => {
    const seen: [string, string | undefined][] = [];
    const decoder = createFrameDecoder((f, id) => seen.push([f.type, id]));
    decoder.push(
      enc.encode(
        frame({ type: "chat_history", value: [] }) +
          "id: r1.0\n" + frame({ type: "prompt", value: "q" }) +
          "id: r1.2\r\n" + frame({ type: "delta", value: "a" }, "\r\n"),
      ),
    );
    decoder.end();
    expect(seen).toEqual([
      ["chat_history", undefined],
      ["prompt", "r1.0"],
      ["delta", "r1.2"],
    ]);
  });

  it("skips comment and keep-alive lines", () => {
    const text = ": ping\n\n" + frame({ type: "delta", value: "a" }) + ": ping\n\n:\n\n" +
      frame({ type: "delta", value: "b" });
    expect(decodeChunks([text])).toEqual([
      { type: "delta", value: "a" },
      { type: "delta", value: "b" },
    ]);
  });

  it("ignores unknown frame types between known ones", () => {
    const text = frame({ type: "delta", value: "a" }) + frame({ type: "telemetry", value: 1 }) +
      frame({ type: "delta", value: "b" });
    expect(decodeChunks([text]).map((f) => f.type)).toEqual(["delta", "delta"]);
  });

  it("accepts CRLF line endings, also split between \\r and \\n", () => {
    const text = frame({ type: "delta", value: "a" }, "\r\n") + ": ping\r\n\r\n" +
      frame({ type: "delta", value: "b" }, "\r\n");
    const cut = text.indexOf("\r") + 1;
    expect(decodeChunks([text.slice(0, cut), text.slice(cut)])).toEqual([
      { type: "delta", value: "a" },
      { type: "delta", value: "b" },
    ]);
  });

  it("keeps newlines inside delta values", () => {
    expect(decodeChunks([frame({ type: "delta", value: "line 1\nline 2\n\n" })])).toEqual([
      { type: "delta", value: "line 1\nline 2\n\n" },
    ]);
  });

  it("drops an unterminated last frame", () => {
    expect(decodeChunks([frame({ type: "delta", value: "a" }) + 'data: {"type":"delta","value":"b"}'])).toEqual([
      { type: "delta", value: "a" },
    ]);
  });

  it("throws a protocol error for a malformed frame and delivers nothing after it", () => {
    const frames: Frame[] = [];
    const decoder = createFrameDecoder((f) => frames.push(f));
    const text = frame({ type: "delta", value: "a" }) + "data: {oops\n\n" + frame({ type: "delta", value: "b" });
    expect(() => decoder.push(enc.encode(text))).toThrow(StreamProtocolError);
    expect(frames).toEqual([{ type: "delta", value: "a" }]);
  });
});

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(enc.encode(c));
      controller.close();
    },
  });
}

describe("readFrames", () => {
  it("reads every frame of a body", async () => {
    const frames: Frame[] = [];
    await readFrames(
      streamOf([frame({ type: "chat_history", value: [] }), 'data: {"type":"del', 'ta","value":"x"}\n\n']),
      (f) => frames.push(f),
    );
    expect(frames).toEqual([{ type: "chat_history", value: [] }, { type: "delta", value: "x" }]);
  });

  it("returns when the signal aborts while waiting for data", async () => {
    const controller = new AbortController();
    let push!: (text: string) => void;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        push = (text) => c.enqueue(enc.encode(text));
      },
    });
    const frames: Frame[] = [];
    const done = readFrames(body, (f) => {
      frames.push(f);
      controller.abort();
    }, controller.signal);
    push(frame({ type: "delta", value: "a" }));
    await done;
    expect(frames).toEqual([{ type: "delta", value: "a" }]);
  });

  it("rejects when the connection breaks", async () => {
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(enc.encode(frame({ type: "delta", value: "a" })));
        c.error(new TypeError("network error"));
      },
    });
    await expect(readFrames(body, () => {})).rejects.toThrow("network error");
  });
});
