/**
 * Connects the pure pieces (chatReducer, runTurn, the API client) to React. Holds one
 * AbortController per conversation with a turn in flight; a reply keeps streaming into its own
 * conversation while the user looks at another one.
 */
import { useCallback, useReducer, useRef } from "react";

import { ApiError, type ApiClient } from "../lib/api";
import { type ChatAction, chatReducer, type ConversationAction } from "../lib/conversation";
import { newId } from "../lib/ids";
import { describeFailure, runTurn } from "../lib/turn";

/**
 * Coalesces the deltas that arrive within one animation frame into one state update, so a fast
 * stream re-renders the Markdown at most once per frame. Any other action flushes first, so the
 * order of events is kept.
 */
function batchedDispatch(
  appId: string,
  dispatch: (action: ChatAction) => void,
): (action: ConversationAction) => void {
  let pending: { turnId: string; text: string } | null = null;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (!pending) return;
    const { turnId, text } = pending;
    pending = null;
    dispatch({ appId, type: "delta", turnId, text });
  };
  return (action) => {
    if (action.type === "delta") {
      if (pending && pending.turnId !== action.turnId) flush();
      if (pending) pending.text += action.text;
      else pending = { turnId: action.turnId, text: action.text };
      if (!scheduled) {
        scheduled = true;
        requestAnimationFrame(flush);
      }
      return;
    }
    flush();
    dispatch({ ...action, appId });
  };
}

export function useChat(api: ApiClient, projectId: string | undefined, onSettled: () => void) {
  const [store, dispatch] = useReducer(chatReducer, {});
  const storeRef = useRef(store);
  storeRef.current = store;
  const controllers = useRef(new Map<string, AbortController>());

  const startTurn = useCallback(
    async (appId: string, prompt: string, replaces?: string) => {
      if (!projectId || controllers.current.has(appId)) return;
      const state = storeRef.current[appId];
      if (state?.activeTurn) return;
      const controller = new AbortController();
      controllers.current.set(appId, controller);
      const turnId = newId();
      dispatch({ appId, type: "turnStarted", turnId, userId: newId(), prompt, replaces });
      try {
        await runTurn({
          api,
          projectId,
          appId,
          prompt,
          turnId,
          create: !state?.created,
          signal: controller.signal,
          dispatch: batchedDispatch(appId, dispatch),
        });
      } finally {
        controllers.current.delete(appId);
        onSettled();
      }
    },
    [api, projectId, onSettled],
  );

  /** Starts a conversation from the home page: a new id, then the first turn creates it. */
  const startConversation = useCallback(
    (prompt: string): string => {
      const appId = newId();
      dispatch({ appId, type: "started" });
      void startTurn(appId, prompt);
      return appId;
    },
    [startTurn],
  );

  /**
   * Stops a reply: closing the connection alone would not (the server keeps writing a reply
   * whose client went away, so a reload can pick it up), hence the explicit stop request.
   */
  const stop = useCallback(
    (appId: string) => {
      const controller = controllers.current.get(appId);
      if (!controller) return;
      if (projectId) void api.stop(projectId, appId).catch(() => undefined);
      controller.abort();
    },
    [api, projectId],
  );

  const retry = useCallback(
    (appId: string, turnId: string) => {
      const message = storeRef.current[appId]?.messages.find((m) => m.id === turnId);
      if (message?.prompt) void startTurn(appId, message.prompt, turnId);
    },
    [startTurn],
  );

  const loadHistory = useCallback(
    async (appId: string) => {
      if (!projectId) return;
      dispatch({ appId, type: "historyRequested" });
      try {
        const items = await api.history(projectId, appId);
        dispatch({ appId, type: "historyLoaded", items });
      } catch (error) {
        dispatch({
          appId,
          type: "historyFailed",
          error: describeFailure(error),
          missing: error instanceof ApiError && error.status === 404,
        });
      }
    },
    [api, projectId],
  );

  const forget = useCallback((appId: string) => {
    controllers.current.get(appId)?.abort();
    dispatch({ appId, type: "deleted" });
  }, []);

  return { store, startTurn, startConversation, stop, retry, loadHistory, forget };
}
