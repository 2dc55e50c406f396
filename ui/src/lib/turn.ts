/**
 * Runs one chat turn: POST the prompt, read the event stream, and report everything that
 * happens as reducer actions. No React here; the hook only supplies dispatch and the signal.
 *
 * Whatever the server or the network does, the turn ends with exactly one of turnFinished,
 * turnFailed or turnStopped (the reducer ignores anything for a turn that already ended).
 */
import { ApiError, type ApiClient } from "./api";
import type { ConversationAction, Failure } from "./conversation";
import { readFrames, StreamProtocolError } from "./stream";

export interface TurnOptions {
  api: Pick<ApiClient, "respond" | "create">;
  projectId: string;
  appId: string;
  prompt: string;
  turnId: string;
  /** Call the create route first (a conversation started in this tab). */
  create: boolean;
  signal: AbortSignal;
  dispatch: (action: ConversationAction) => void;
}

export function describeFailure(error: unknown): Failure {
  if (error instanceof ApiError) {
    return {
      kind: "http",
      code: error.code,
      message: error.message,
      retryable: error.retryable,
      status: error.status,
    };
  }
  if (error instanceof StreamProtocolError) {
    return { kind: "protocol", code: "bad_frame", message: error.message, retryable: true };
  }
  const detail = error instanceof Error && error.message ? ` (${error.message})` : "";
  return {
    kind: "network",
    code: "network_error",
    message: `Could not reach the server${detail}. Check your connection and retry.`,
    retryable: true,
  };
}

export async function runTurn(options: TurnOptions): Promise<void> {
  const { api, projectId, appId, prompt, turnId, signal, dispatch } = options;
  let ended = false;
  const finish = (action: ConversationAction) => {
    if (ended) return;
    ended = true;
    dispatch(action);
  };
  try {
    if (options.create) {
      await api.create(projectId, appId);
      dispatch({ type: "created" });
    }
    if (signal.aborted) return finish({ type: "turnStopped", turnId });
    const response = await api.respond(projectId, appId, prompt, signal);
    const contentType = response.headers.get("Content-Type") ?? "";
    if (!response.body || !contentType.includes("text/event-stream")) {
      throw new StreamProtocolError(
        `The server answered with ${contentType || "no content type"} instead of an event stream.`,
      );
    }
    await readFrames(
      response.body,
      (frame) => {
        if (ended) return;
        switch (frame.type) {
          case "chat_history":
            dispatch({ type: "historySynced", turnId, items: frame.value });
            break;
          case "delta":
            dispatch({ type: "delta", turnId, text: frame.value });
            break;
          case "end":
            finish({ type: "turnFinished", turnId, end: frame.value });
            break;
          case "error":
            finish({
              type: "turnFailed",
              turnId,
              error: { kind: "stream", ...frame.value },
            });
            break;
        }
      },
      signal,
    );
    if (signal.aborted) return finish({ type: "turnStopped", turnId });
    finish({
      type: "turnFailed",
      turnId,
      error: {
        kind: "network",
        code: "stream_incomplete",
        message: "The connection closed before the reply finished.",
        retryable: true,
      },
    });
  } catch (error) {
    if (signal.aborted) return finish({ type: "turnStopped", turnId });
    finish({ type: "turnFailed", turnId, error: describeFailure(error) });
  }
}
