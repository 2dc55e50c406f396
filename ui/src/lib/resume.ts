/**
 * Follows a reply the server is writing, from wherever this tab is: after a reload (nothing of
 * it on screen yet) or after this tab's own stream dropped. No React here, like turn.ts.
 *
 * The server keeps writing a reply whose client went away, and GET …/stream answers its frames:
 * the history and the prompt, then every delta, each with an SSE id. When the connection drops,
 * the request is made again with the last id seen, and the server sends only what came after
 * it, so nothing is shown twice and nothing is lost. A `chat_history` frame means the server
 * replays the turn from its start (a first request, or an id it no longer knows): the turn is
 * then rebuilt, never appended to.
 */
import { ApiError, type ApiClient } from "./api";
import type { ConversationAction } from "./conversation";
import type { ChatItem, Frame } from "./protocol";
import { readFrames, StreamProtocolError } from "./stream";
import { describeFailure, outcomeAction } from "./outcome";

/** Waits before each reconnect, longer each time; progress (a frame) starts over. */
export const RECONNECT_DELAYS_MS: readonly number[] = [250, 500, 1000, 2000, 4000];

export interface FollowOptions {
  api: Pick<ApiClient, "attach">;
  projectId: string;
  appId: string;
  /** Ids of the turn's messages (the reply, and its prompt). */
  turnId: string;
  userId: string;
  signal: AbortSignal;
  dispatch: (action: ConversationAction) => void;
  /** The answer of a GET …/stream already made (the page asks before it shows the conversation). */
  first?: Response;
  /** The turn is on screen already: this tab's own, whose stream dropped. */
  shown?: boolean;
  reconnectDelaysMs?: readonly number[];
  sleep?: (ms: number) => Promise<void>;
}

/**
 * - `none`: no reply is being written; nothing was dispatched.
 * - `ended`: the turn ended on screen (finished, failed or stopped).
 * - `gone`: a reply was on screen but the server no longer has it to follow (it finished a while
 *   ago, or the server restarted); the stored history has it. The turn is still active: the
 *   caller loads the history (turnResynced) or fails the turn.
 */
export type FollowResult = "none" | "ended" | "gone";

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function followReply(options: FollowOptions): Promise<FollowResult> {
  const { api, projectId, appId, turnId, userId, signal, dispatch } = options;
  const delays = options.reconnectDelaysMs ?? RECONNECT_DELAYS_MS;
  const sleep = options.sleep ?? defaultSleep;
  let first = options.first;
  let lastId: string | null = null;
  let shown = options.shown ?? false;
  let ended = false;
  let history: ChatItem[] = [];
  let failures = 0;

  const finish = (action: ConversationAction): FollowResult => {
    if (!ended) {
      ended = true;
      dispatch(action);
    }
    return "ended";
  };
  const stopped = () => (shown ? finish({ type: "turnStopped", turnId }) : "none");

  const onFrame = (frame: Frame, id: string | undefined) => {
    if (ended) return;
    if (id) lastId = id;
    failures = 0;
    switch (frame.type) {
      case "chat_history":
        history = frame.value;
        break;
      case "prompt":
        dispatch({ type: "turnAttached", turnId, userId, history, prompt: frame.value });
        shown = true;
        break;
      case "delta":
        if (shown) dispatch({ type: "delta", turnId, text: frame.value });
        break;
      case "end":
      case "error":
        if (shown) finish(outcomeAction(turnId, frame));
        else ended = true; // a turn we never saw start: nothing to end on screen
        break;
      case "step":
        break;
    }
  };

  for (;;) {
    if (signal.aborted) return stopped();
    try {
      const response = first ?? (await api.attach(projectId, appId, lastId, signal));
      first = undefined;
      if (response === null) return shown ? "gone" : "none";
      const contentType = response.headers.get("Content-Type") ?? "";
      if (!response.body || !contentType.includes("text/event-stream")) {
        throw new StreamProtocolError(
          `The server answered with ${contentType || "no content type"} instead of an event stream.`,
        );
      }
      await readFrames(response.body, onFrame, signal);
      if (ended) return shown ? "ended" : "none";
      if (signal.aborted) return stopped();
      // The body ended before the turn did: the connection dropped; reconnect below.
    } catch (error) {
      if (signal.aborted) return stopped();
      const transient =
        error instanceof ApiError ? error.retryable : !(error instanceof StreamProtocolError);
      if (!transient) {
        return shown ? finish({ type: "turnFailed", turnId, error: describeFailure(error) }) : "none";
      }
    }
    if (failures >= delays.length) return shown ? "gone" : "none";
    await sleep(delays[failures]!);
    failures += 1;
  }
}
