/**
 * Connects the pure pieces (chatReducer, runTurn, followReply, the API client) to React. Holds
 * one AbortController per conversation with a turn in flight; a reply keeps streaming into its
 * own conversation while the user looks at another one. A conversation opened while the server
 * is writing a reply in it (a reload mid-reply, another tab) shows that reply still growing.
 *
 * Branches: an edit or a regeneration is a turn like a prompt (same engine, same stop and
 * retry); once it ends, /history is read once for the new version marks. Switching versions is
 * one request, whose answer is the history shown from then on.
 */
import { useCallback, useReducer, useRef } from "react";

import { ApiError, type ApiClient } from "../lib/api";
import { type BranchRequest, planBranch, type TurnRequest } from "../lib/branching";
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
  const switching = useRef(new Set<string>());

  /**
   * Reads the history again for its version marks (after a branch turn, which adds a version
   * somewhere). Best effort: without it the marks show at the next load.
   */
  const refreshVersions = useCallback(
    async (appId: string) => {
      if (!projectId) return;
      try {
        const items = await api.history(projectId, appId);
        dispatch({ appId, type: "historyRefreshed", items });
      } catch {
        // The transcript is right as it is; only the switchers wait for the next load.
      }
    },
    [api, projectId],
  );

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
        // The reply may be a branch's (an edit made in another tab): its marks come after it.
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
      if (result === "ended") void refreshVersions(appId);
    },
    [api, projectId, onSettled, settleFromHistory, refreshVersions],
  );

  /** Whether a turn may start in a conversation now (none in flight, no switch on its way). */
  const idle = useCallback(
    (appId: string) =>
      Boolean(projectId) &&
      !controllers.current.has(appId) &&
      !switching.current.has(appId) &&
      !storeRef.current[appId]?.activeTurn,
    [projectId],
  );

  /** Runs one turn, a prompt's or a branch's, through the one engine (runTurn). */
  const drive = useCallback(
    async (appId: string, request: TurnRequest, begin: ConversationAction & { turnId: string; userId: string }) => {
      if (!projectId) return;
      const controller = new AbortController();
      controllers.current.set(appId, controller);
      const { turnId, userId } = begin;
      const created = Boolean(storeRef.current[appId]?.created);
      dispatch({ ...begin, appId });
      const batched = batchedDispatch(appId, dispatch);
      // The server began the turn (its chat_history frame came): a branch now exists.
      let serverStarted = false;
      let result: FollowResult = "none";
      try {
        result = await runTurn({
          api,
          projectId,
          appId,
          request,
          turnId,
          userId,
          create: !created,
          signal: controller.signal,
          dispatch: (action) => {
            if (action.type === "historySynced" || action.type === "turnAttached") serverStarted = true;
            batched(action);
          },
        });
        await settleFromHistory(appId, turnId, result);
      } finally {
        controllers.current.delete(appId);
        onSettled();
      }
      // "gone" was settled from the history, marks included.
      if (request.kind !== "respond" && serverStarted && result === "ended") void refreshVersions(appId);
    },
    [api, projectId, onSettled, settleFromHistory, refreshVersions],
  );

  const startTurn = useCallback(
    async (appId: string, prompt: string, replaces?: string) => {
      if (!idle(appId)) return;
      const begin = { type: "turnStarted", turnId: newId(), userId: newId(), prompt, replaces } as const;
      await drive(appId, { kind: "respond", prompt }, begin);
    },
    [drive, idle],
  );

  /** Edits a prompt or regenerates a reply: a new branch, streamed like a prompt's turn. */
  const startBranch = useCallback(
    async (appId: string, request: BranchRequest) => {
      const state = storeRef.current[appId];
      if (!idle(appId) || !state?.created || !planBranch(state.messages, request)) return;
      const begin = { type: "branchStarted", turnId: newId(), userId: newId(), request } as const;
      await drive(appId, request, begin);
    },
    [drive, idle],
  );

  /**
   * Shows another version at item `index`. The answer is the history shown from then on, so
   * nothing else is fetched. Rejects with the failure (the caller shows it).
   */
  const switchVersion = useCallback(
    async (appId: string, index: number, version: number) => {
      if (!projectId || !idle(appId)) return;
      switching.current.add(appId);
      dispatch({ appId, type: "switchRequested" });
      try {
        const items = await api.switchVersion(projectId, appId, index, version);
        dispatch({ appId, type: "versionSwitched", index, items });
      } catch (error) {
        dispatch({ appId, type: "switchFailed" });
        throw error;
      } finally {
        switching.current.delete(appId);
      }
    },
    [api, projectId, idle],
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
      // A branch the server never began is asked for again; once begun, the branch exists
      // and is shown, so its prompt is sent again like any failed turn's.
      if (message?.request && !message.serverStarted) void startBranch(appId, message.request);
      else if (message?.prompt) void startTurn(appId, message.prompt, turnId);
    },
    [startTurn, startBranch],
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

  return { store, startTurn, startConversation, startBranch, switchVersion, stop, retry, loadHistory, forget };
}
