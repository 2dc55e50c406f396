/**
 * How a turn ends on screen: the action for its last frame, and the failure for an error thrown
 * on the way (HTTP, network, protocol). Shared by a turn started here (turn.ts) and a reply
 * reattached to (resume.ts).
 */
import { ApiError } from "./api";
import type { ConversationAction, Failure } from "./conversation";
import type { Frame } from "./protocol";
import { StreamProtocolError } from "./stream";

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

/** The action for a turn's last frame. */
export function outcomeAction(
  turnId: string,
  frame: Extract<Frame, { type: "end" | "error" }>,
): ConversationAction {
  if (frame.type === "end") return { type: "turnFinished", turnId, end: frame.value };
  // Stopped from elsewhere (another tab, the API): shown as this tab's own stop would be.
  if (frame.value.code === "reply_stopped") return { type: "turnStopped", turnId };
  return { type: "turnFailed", turnId, error: { kind: "stream", ...frame.value } };
}
