/**
 * Connects the pure pieces (chatReducer, runTurn, followReply, the API client) to React. Holds
 * one AbortController per conversation with a turn in flight; a reply keeps streaming into its
 * own conversation while the user looks at another one. A conversation opened while the server
 * is writing a reply in it (a reload mid-reply, another tab) shows that reply still growing.
 */
import { useCallback, useReducer, useRef } from "react";

import { ApiError, type ApiClient } from "../lib/api";
import { type ChatAction, chatReducer, type ConversationAction } from "../lib/conversation";
import { newId } from "../lib/ids";
import { describeFailure } from "../lib/outcome";
import { followReply, type FollowResult } from "../lib/resume";
import { runTurn } from "../lib/turn";

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

  /**
   * The reply could not be followed to its end (the server no longer has it: it finished a
   * while ago, or the server restarted): the stored history has what became of it.
   */
  const settleFromHistory = useCallback(
    async (appId: string, turnId: string, result: FollowResult) => {
      if (result !== "gone" || !projectId) return;
      const conversation = (action: ConversationAction) => dispatch({ ...action, appId });
      try {
        const items = await api.history(projectId, appId);
        conversation({ type: "turnResynced", turnId, items });
      } catch (error) {
        conversation({ type: "turnFailed", turnId, error: describeFailure(error) });
      }
    },
    [api, projectId],
  );

  /** Shows the reply the server is writing in a conversation as a turn, and follows it. */
  const follow = useCallback(
    async (appId: string, first: Response) => {
      if (!projectId || controllers.current.has(appId)) {
        void first.body?.cancel().catch(() => undefined);
        return;
      }
      const controller = new AbortController();
      controllers.current.set(appId, controller);
      const turnId = newId();
      let result: FollowResult = "none";
      try {
        result = await followReply({
          api,
          projectId,
          appId,
          turnId,
          userId: newId(),
          signal: controller.signal,
          dispatch: batchedDispatch(appId, dispatch),
          first,
        });
        await settleFromHistory(appId, turnId, result);
      } finally {
        controllers.current.delete(appId);
        if (result !== "none") onSettled();
      }
    },
    [api, projectId, onSettled, settleFromHistory],
  );

  const startTurn = useCallback(
    async (appId: string, prompt: string, replaces?: string) => {
      if (!projectId || controllers.current.has(appId)) return;
      const state = storeRef.current[appId];
      if (state?.activeTurn) return;
      const controller = new AbortController();
      controllers.current.set(appId, controller);
      const turnId = newId();
      const userId = newId();
      dispatch({ appId, type: "turnStarted", turnId, userId, prompt, replaces });
      try {
        const result = await runTurn({
          api,
          projectId,
          appId,
          prompt,
          turnId,
          userId,
          create: !state?.created,
          signal: controller.signal,
          dispatch: batchedDispatch(appId, dispatch),
        });
        await settleFromHistory(appId, turnId, result);
      } finally {
        controllers.current.delete(appId);
        onSettled();
      }
    },
    [api, projectId, onSettled, settleFromHistory],
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
        // Asked before the conversation is shown, so a reply being written appears with it.
        const running = await api.attach(projectId, appId, null).catch(() => null);
        dispatch({ appId, type: "historyLoaded", items });
        if (running) void follow(appId, running);
      } catch (error) {
        dispatch({
          appId,
          type: "historyFailed",
          error: describeFailure(error),
          missing: error instanceof ApiError && error.status === 404,
        });
      }
    },
    [api, projectId, follow],
  );

  const forget = useCallback((appId: string) => {
    controllers.current.get(appId)?.abort();
    dispatch({ appId, type: "deleted" });
  }, []);

  return { store, startTurn, startConversation, stop, retry, loadHistory, forget };
}
