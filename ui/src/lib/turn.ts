/**
 * Runs one chat turn: POST the prompt (or the edit, or the regeneration: a branch turn streams
 * exactly like a prompt's), read the event stream, and report everything that happens as
 * reducer actions. No React here; the hook only supplies dispatch and the signal.
 *
 * Whatever the server or the network does, the turn ends with exactly one of turnFinished,
 * turnFailed or turnStopped (the reducer ignores anything for a turn that already ended).
 */
import type { ApiClient } from "./api";
import type { TurnRequest } from "./branching";
import type { ConversationAction, Failure } from "./conversation";
import { describeFailure, outcomeAction } from "./outcome";
import { followReply, type FollowResult } from "./resume";
import { readFrames, StreamProtocolError } from "./stream";

export interface TurnOptions {
  api: Pick<ApiClient, "respond" | "edit" | "regenerate" | "create" | "attach">;
  projectId: string;
  appId: string;
  request: TurnRequest;
  /** Ids of the turn's messages (the reply, and its prompt). */
  turnId: string;
  userId: string;
  /** Call the create route first (a conversation started in this tab). */
  create: boolean;
  signal: AbortSignal;
  dispatch: (action: ConversationAction) => void;
}

const INCOMPLETE: Failure = {
  kind: "network",
  code: "stream_incomplete",
  message: "The connection closed before the reply finished.",
  retryable: true,
};

/** Sends the turn's request; resolves once the answer's headers are in (body still streaming). */
function openTurn(
  api: TurnOptions["api"],
  projectId: string,
  appId: string,
  request: TurnRequest,
  signal: AbortSignal,
): Promise<Response> {
  switch (request.kind) {
    case "respond":
      return api.respond(projectId, appId, request.prompt, signal);
    case "edit":
      return api.edit(projectId, appId, request.index, request.prompt, signal);
    case "regenerate":
      return api.regenerate(projectId, appId, request.index, signal);
  }
}

/**
 * Resolves "ended" once the turn has ended on screen, or "gone" when its stream dropped and the
 * reply could not be followed any more (see followReply): the caller then loads the history.
 */
export async function runTurn(options: TurnOptions): Promise<FollowResult> {
  const { api, projectId, appId, request, turnId, signal, dispatch } = options;
  let ended = false;
  // The server began the turn (chat_history came): it writes the reply even if we drop.
  let started = false;
  const finish = (action: ConversationAction): FollowResult => {
    if (!ended) {
      ended = true;
      dispatch(action);
    }
    return "ended";
  };
  /** The connection dropped mid-reply: follow the reply through GET …/stream instead. */
  const reattach = () =>
    followReply({
      api,
      projectId,
      appId,
      turnId,
      userId: options.userId,
      signal,
      dispatch,
      shown: true,
    });
  try {
    if (options.create) {
      await api.create(projectId, appId);
      dispatch({ type: "created" });
    }
    if (signal.aborted) return finish({ type: "turnStopped", turnId });
    const response = await openTurn(api, projectId, appId, request, signal);
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
            started = true;
            dispatch({ type: "historySynced", turnId, items: frame.value });
            break;
          case "delta":
            dispatch({ type: "delta", turnId, text: frame.value });
            break;
          case "end":
          case "error":
            finish(outcomeAction(turnId, frame));
            break;
        }
      },
      signal,
    );
    if (ended) return "ended";
    if (signal.aborted) return finish({ type: "turnStopped", turnId });
    return started ? await reattach() : finish({ type: "turnFailed", turnId, error: INCOMPLETE });
  } catch (error) {
    if (signal.aborted) return finish({ type: "turnStopped", turnId });
    if (started && !ended && !(error instanceof StreamProtocolError)) return await reattach();
    return finish({ type: "turnFailed", turnId, error: describeFailure(error) });
  }
}
