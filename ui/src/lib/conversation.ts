/**
 * Client-side state of the conversations: a pure reducer, unit-tested without React.
 *
 * One ConversationState per app_id, kept in a ChatStore, so a reply keeps streaming into its own
 * conversation while the user looks at another one. Every turn action names the turn (the id of
 * its assistant message): an action for a turn that is no longer streaming (a late delta after a
 * stop, a second terminal frame) changes nothing, whatever order things arrive in.
 */
import { type BranchRequest, planBranch } from "./branching";
import {
  type BranchMark,
  branchMark,
  type ChatItem,
  type ChatItemType,
  type ChatRole,
  type EndValue,
  sameMark,
  type Timings,
} from "./protocol";

export type MessageStatus = "complete" | "streaming" | "stopped" | "failed";

/** Where a failure came from; decides the wording, the Retry button is always offered. */
export type FailureKind = "stream" | "http" | "network" | "protocol";

export interface Failure {
  kind: FailureKind;
  code: string;
  message: string;
  retryable: boolean;
  /** HTTP status, for kind "http". */
  status?: number;
}

export interface Message {
  id: string;
  role: ChatRole;
  content: string;
  type: ChatItemType;
  status: MessageStatus;
  /** A partial reply kept after a stop or a lost connection. */
  interrupted?: boolean;
  /** The Burr action that answered (from the end frame). */
  mode?: string;
  timings?: Timings;
  error?: Failure;
  /** On the assistant message of a turn started here: the prompt, for Retry. */
  prompt?: string;
  /**
   * The server began this turn (its chat_history frame arrived), so it stores the turn even if
   * it failed; a Retry then leaves it in the transcript instead of replacing it.
   */
  serverStarted?: boolean;
  /** A newer turn retried this failed one: no second Retry button. */
  retried?: boolean;
  /** Its index in the server's history, once the server said so (see branching.ts). */
  index?: number;
  /** Versions meet here: which one is shown, of how many (from /history). */
  branch?: BranchMark;
  /** On the assistant message of a branch turn started here: what it asked, for Retry. */
  request?: BranchRequest;
}

export type HistoryStatus = "idle" | "loading" | "loaded" | "missing" | "failed";

export interface ConversationState {
  history: HistoryStatus;
  historyError?: Failure;
  /** True once the server is known to have this conversation (created here, or history loaded). */
  created: boolean;
  messages: Message[];
  /** Id of the assistant message of the turn in flight, if any. */
  activeTurn: string | null;
  /** A version switch is on its way to the server. */
  switching?: boolean;
}

export type ChatStore = Readonly<Record<string, ConversationState>>;

export type ConversationAction =
  /** A conversation started in this tab: nothing to load, not yet created on the server. */
  | { type: "started" }
  | { type: "created" }
  | { type: "historyRequested" }
  | { type: "historyLoaded"; items: ChatItem[] }
  | { type: "historyFailed"; error: Failure; missing: boolean }
  /** A prompt is sent. `replaces` is a failed turn (its assistant id) that this one retries. */
  | { type: "turnStarted"; turnId: string; userId: string; prompt: string; replaces?: string }
  /**
   * An edit or a regeneration is sent: the transcript is cut where the branch starts (see
   * planBranch) and the turn follows, like a prompt's. `userId` names a new prompt message.
   */
  | { type: "branchStarted"; turnId: string; userId: string; request: BranchRequest }
  /** The chat_history frame: the server's history before this turn. */
  | { type: "historySynced"; turnId: string; items: ChatItem[] }
  /**
   * A reply the server is writing, reattached to (after a reload, or this tab's own turn after
   * its connection dropped): its history and prompt, and a reply the following deltas fill.
   * Sent again when the server replays the turn from its start; the reply then starts over.
   */
  | { type: "turnAttached"; turnId: string; userId: string; history: ChatItem[]; prompt: string }
  /** The reply is no longer on the server to follow: the stored history replaces the turn. */
  | { type: "turnResynced"; turnId: string; items: ChatItem[] }
  | { type: "delta"; turnId: string; text: string }
  | { type: "turnFinished"; turnId: string; end: EndValue }
  | { type: "turnFailed"; turnId: string; error: Failure }
  | { type: "turnStopped"; turnId: string }
  /** /history read again after a branch turn: the same items, with their version marks. */
  | { type: "historyRefreshed"; items: ChatItem[] }
  | { type: "switchRequested" }
  /** The server shows another version at item `index`: its history, from the switch's answer. */
  | { type: "versionSwitched"; index: number; items: ChatItem[] }
  | { type: "switchFailed" };

export type ChatAction =
  | (ConversationAction & { appId: string })
  | { type: "deleted"; appId: string };

export function emptyConversation(): ConversationState {
  return { history: "idle", created: false, messages: [], activeTurn: null };
}

let itemCounter = 0;

/**
 * Messages from the server carry no id; give each a stable one for React keys. `offset` is the
 * index of the first item in the server's history.
 */
export function fromChatItems(items: ChatItem[], offset = 0): Message[] {
  return items.map((item, i) => {
    itemCounter += 1;
    const message: Message = {
      id: `h${itemCounter}`,
      role: item.role,
      content: item.content,
      type: item.type,
      status: "complete",
      index: offset + i,
    };
    if (item.interrupted) message.interrupted = true;
    const mark = branchMark(item);
    if (mark) message.branch = mark;
    return message;
  });
}

/**
 * Where version marks come from: /history answers them (an item without one has a single
 * version), a stream's chat_history frame may not carry them (ours are kept then).
 */
export type MarkSource = "history" | "frame";

/**
 * The server's history replaces ours, but where both agree (same role and text at the same
 * place) our message object is kept: it carries what history items do not (mode badge, timings)
 * and keeps its React key, so the transcript does not re-render.
 */
export function mergeHistory(local: Message[], items: ChatItem[], marks: MarkSource = "history"): Message[] {
  const merged: Message[] = [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    const mine = local[i];
    const same =
      mine !== undefined &&
      merged.length === i &&
      mine.role === item.role &&
      mine.content === item.content &&
      mine.status !== "failed" &&
      mine.status !== "streaming";
    if (same) {
      const told = branchMark(item);
      const mark = told ?? (marks === "frame" ? mine.branch : undefined);
      const interrupted = mine.interrupted || Boolean(item.interrupted);
      if (mine.index === i && sameMark(mine.branch, mark) && interrupted === Boolean(mine.interrupted)) {
        merged.push(mine);
      } else {
        const next: Message = { ...mine, index: i };
        if (interrupted) next.interrupted = true;
        if (mark) next.branch = mark;
        else delete next.branch;
        merged.push(next);
      }
    } else {
      // From the first difference on, take the server's items as they are.
      merged.push(...fromChatItems(items.slice(i), i));
      break;
    }
  }
  return merged;
}

/**
 * The index of a turn's reply once it is stored as one item right after its prompt, if the
 * prompt's index is known (a failed turn may store a partial reply and an error item instead).
 */
function replyIndex(messages: Message[], turnId: string): number | undefined {
  const at = messages.findIndex((m) => m.id === turnId);
  const prompt = messages[at - 1];
  return prompt?.role === "user" && prompt.index !== undefined ? prompt.index + 1 : undefined;
}

/**
 * Whether `messages` already end with a stored turn that followed `history` with `prompt`: a
 * reply that finished just before the page loaded is both in the history and, for a short
 * while, on the server to reattach to. Shown once, as stored.
 */
function holdsTurn(messages: Message[], history: ChatItem[], prompt: string): boolean {
  if (messages.length !== history.length + 2) return false;
  const asked = messages[history.length];
  return (
    asked?.role === "user" &&
    asked.content === prompt &&
    messages.at(-1)?.role === "assistant" &&
    history.every((item, i) => messages[i]?.role === item.role && messages[i]?.content === item.content)
  );
}

function updateTurn(
  state: ConversationState,
  turnId: string,
  change: (message: Message) => Message,
  endsTurn: boolean,
): ConversationState {
  const index = state.messages.findIndex((m) => m.id === turnId);
  const target = state.messages[index];
  if (!target || target.status !== "streaming") return state;
  const messages = state.messages.slice();
  messages[index] = change(target);
  return {
    ...state,
    messages,
    activeTurn: endsTurn && state.activeTurn === turnId ? null : state.activeTurn,
  };
}

export function conversationReducer(
  state: ConversationState,
  action: ConversationAction,
): ConversationState {
  switch (action.type) {
    case "started":
      return { ...state, history: "loaded", historyError: undefined };
    case "created":
      return { ...state, created: true };
    case "historyRequested":
      return { ...state, history: "loading", historyError: undefined };
    case "historyLoaded":
      // A turn started while history was loading wins: its chat_history frame resyncs anyway.
      if (state.activeTurn) return { ...state, history: "loaded", created: true };
      return {
        ...state,
        history: "loaded",
        historyError: undefined,
        created: true,
        messages: fromChatItems(action.items),
      };
    case "historyFailed":
      return {
        ...state,
        history: action.missing ? "missing" : "failed",
        historyError: action.error,
      };
    case "turnStarted": {
      if (state.activeTurn) return state;
      let messages = state.messages;
      const index = action.replaces ? messages.findIndex((m) => m.id === action.replaces) : -1;
      const replaced = messages[index];
      if (replaced?.serverStarted) {
        // The server stored the failed turn: it stays (history will show it), marked as retried.
        messages = messages.slice();
        messages[index] = { ...replaced, retried: true };
      } else if (replaced) {
        // The server never saw the turn: drop the failed reply and its prompt, sent again below.
        const previous = messages[index - 1];
        const start = previous?.role === "user" ? index - 1 : index;
        messages = [...messages.slice(0, start), ...messages.slice(index + 1)];
      }
      return {
        ...state,
        activeTurn: action.turnId,
        messages: [
          ...messages,
          {
            id: action.userId,
            role: "user",
            content: action.prompt,
            type: "text",
            status: "complete",
          },
          {
            id: action.turnId,
            role: "assistant",
            content: "",
            type: "text",
            status: "streaming",
            prompt: action.prompt,
          },
        ],
      };
    }
    case "historySynced": {
      if (state.activeTurn !== action.turnId) return state;
      const index = state.messages.findIndex((m) => m.id === action.turnId);
      // The turn is [user prompt, assistant reply] at the end; everything before is history.
      const turnStart = index - 1;
      if (turnStart < 0) return state;
      const [prompt, reply] = state.messages.slice(turnStart);
      if (!prompt || !reply) return state;
      return {
        ...state,
        created: true,
        messages: [
          ...mergeHistory(state.messages.slice(0, turnStart), action.items, "frame"),
          { ...prompt, index: action.items.length },
          { ...reply, serverStarted: true },
        ],
      };
    }
    case "turnAttached": {
      // This tab's own turn wins over one found on the server (it will be refused as busy).
      if (state.activeTurn && state.activeTurn !== action.turnId) return state;
      let before = state.messages;
      let userId = action.userId;
      let promptMark: BranchMark | undefined;
      if (!state.activeTurn && holdsTurn(before, action.history, action.prompt)) return state;
      if (state.activeTurn === action.turnId) {
        // Shown already: rebuild it (same keys), its reply from the start.
        const index = state.messages.findIndex((m) => m.id === action.turnId);
        const prompt = state.messages[index - 1];
        before = state.messages.slice(0, Math.max(index - 1, 0));
        if (prompt?.role === "user") {
          userId = prompt.id;
          promptMark = prompt.branch;
        }
      }
      return {
        ...state,
        history: "loaded",
        historyError: undefined,
        created: true,
        activeTurn: action.turnId,
        messages: [
          ...mergeHistory(before, action.history, "frame"),
          {
            id: userId,
            role: "user",
            content: action.prompt,
            type: "text",
            status: "complete",
            index: action.history.length,
            ...(promptMark ? { branch: promptMark } : {}),
          },
          {
            id: action.turnId,
            role: "assistant",
            content: "",
            type: "text",
            status: "streaming",
            prompt: action.prompt,
            serverStarted: true,
          },
        ],
      };
    }
    case "turnResynced":
      if (state.activeTurn !== action.turnId) return state;
      return {
        ...state,
        activeTurn: null,
        created: true,
        messages: mergeHistory(state.messages, action.items),
      };
    case "delta":
      if (!action.text) return state;
      return updateTurn(state, action.turnId, (m) => ({ ...m, content: m.content + action.text }), false);
    case "turnFinished": {
      const { item, mode, timings } = action.end;
      const index = replyIndex(state.messages, action.turnId);
      return updateTurn(
        state,
        action.turnId,
        (m) => ({
          ...m,
          // The end frame's item is the stored reply; it wins over the concatenated deltas.
          content: item.content,
          type: item.type,
          status: "complete",
          mode,
          timings,
          index,
        }),
        true,
      );
    }
    case "turnFailed":
      return updateTurn(state, action.turnId, (m) => ({ ...m, status: "failed", error: action.error }), true);
    case "turnStopped":
      return updateTurn(
        state,
        action.turnId,
        (m) => ({
          ...m,
          status: "stopped",
          interrupted: true,
          // Stored as a partial reply if any of it was written; else the turn is its prompt.
          index: m.content ? replyIndex(state.messages, action.turnId) : undefined,
        }),
        true,
      );
    case "branchStarted": {
      if (state.activeTurn) return state;
      const plan = planBranch(state.messages, action.request);
      if (!plan) return state;
      const kept = state.messages.slice(0, plan.keep);
      const prompt: Message =
        plan.reusePrompt && state.messages[plan.keep]
          ? state.messages[plan.keep]!
          : { id: action.userId, role: "user", content: plan.prompt, type: "text", status: "complete" };
      return {
        ...state,
        activeTurn: action.turnId,
        messages: [
          ...kept,
          prompt,
          {
            id: action.turnId,
            role: "assistant",
            content: "",
            type: "text",
            status: "streaming",
            prompt: plan.prompt,
            request: action.request,
          },
        ],
      };
    }
    case "historyRefreshed": {
      if (!state.activeTurn) return { ...state, messages: mergeHistory(state.messages, action.items) };
      // A turn began meanwhile: only what comes before it is refreshed.
      const turnStart = state.messages.findIndex((m) => m.id === state.activeTurn) - 1;
      if (turnStart < 0 || action.items.length < turnStart) return state;
      const before = mergeHistory(state.messages.slice(0, turnStart), action.items.slice(0, turnStart));
      return { ...state, messages: [...before, ...state.messages.slice(turnStart)] };
    }
    case "switchRequested":
      return state.activeTurn ? state : { ...state, switching: true };
    case "switchFailed":
      return { ...state, switching: false };
    case "versionSwitched": {
      // A turn started here meanwhile was refused by the server (the switch held the lease).
      if (state.activeTurn) return { ...state, switching: false };
      // Before `index` both versions agree; from it on the other version's items are shown as
      // the server has them (never matched by text to ours: two versions can read the same).
      const cut = Math.min(action.index, action.items.length);
      const before = mergeHistory(state.messages.slice(0, cut), action.items.slice(0, cut));
      const after = fromChatItems(action.items.slice(cut), cut);
      // The switched item keeps its key, so the switcher the user pressed keeps the focus.
      const previous = state.messages[cut];
      if (previous?.index === cut && after[0] && previous.role === after[0].role) {
        after[0] = { ...after[0], id: previous.id };
      }
      return { ...state, switching: false, messages: [...before, ...after] };
    }
  }
}

export function chatReducer(store: ChatStore, action: ChatAction): ChatStore {
  if (action.type === "deleted") {
    if (!(action.appId in store)) return store;
    const next = { ...store };
    delete next[action.appId];
    return next;
  }
  const current = store[action.appId] ?? emptyConversation();
  const next = conversationReducer(current, action);
  if (next === current && action.appId in store) return store;
  return { ...store, [action.appId]: next };
}

export function isStreaming(state: ConversationState | undefined): boolean {
  return Boolean(state?.activeTurn);
}
