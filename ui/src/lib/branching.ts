/**
 * Branches on screen: which messages can be edited or regenerated, and what a branch turn
 * keeps of the transcript. Pure, unit-tested; the reducer and the hook both use it.
 *
 * The server addresses items by their 0-based index in its history. The transcript can hold
 * messages the server does not have as items (a turn refused before it started, a failed reply
 * whose stored form is a partial reply plus an error item), so a message's index is only known
 * when the server said it: `Message.index` is set from /history, from a turn's chat_history
 * frame (the turn's prompt comes right after it) and from its end frame (the reply right after
 * the prompt). A message is addressable when it and everything before it are at their index.
 */
import type { Message } from "./conversation";

/** Edit the prompt at `index` (a user item): a branch whose turn asks `prompt` instead. */
export interface EditRequest {
  kind: "edit";
  index: number;
  prompt: string;
}

/** Regenerate the reply at `index` (an assistant item): a branch that asks its prompt again. */
export interface RegenerateRequest {
  kind: "regenerate";
  index: number;
}

export type BranchRequest = EditRequest | RegenerateRequest;

/** What one turn asks the server: a new prompt at the end (POST …/response) or a branch. */
export type TurnRequest = { kind: "respond"; prompt: string } | BranchRequest;

/** What a branch turn does to the transcript. */
export interface BranchPlan {
  /** Messages kept before the turn's prompt (they are the server's first `keep` items). */
  keep: number;
  /** The turn's prompt text. */
  prompt: string;
  /** The prompt is the message at `keep`, kept as it is (a regeneration asks it again). */
  reusePrompt: boolean;
}

/** Whether the first `count` messages are exactly the server's items 0 … count-1. */
function storedPrefix(messages: readonly Message[], count: number): boolean {
  if (count > messages.length) return false;
  for (let i = 0; i < count; i++) {
    if (messages[i]!.index !== i) return false;
  }
  return true;
}

/**
 * The transcript cut for a branch turn, or null when the transcript does not hold what the
 * request needs (then it is not sent). Also used by Retry of a refused branch turn, whose
 * transcript ends with the refused prompt and reply instead of the items it branched from.
 */
export function planBranch(messages: readonly Message[], request: BranchRequest): BranchPlan | null {
  if (request.kind === "edit") {
    const prompt = request.prompt.trim();
    if (!prompt || !storedPrefix(messages, request.index)) return null;
    return { keep: request.index, prompt, reusePrompt: false };
  }
  // The user item that started the reply's turn: the last one before it.
  let p = Math.min(request.index, messages.length) - 1;
  while (p >= 0 && messages[p]!.role !== "user") p--;
  if (p < 0 || !storedPrefix(messages, p + 1)) return null;
  return { keep: p, prompt: messages[p]!.content, reusePrompt: true };
}

export type BranchAction = "edit" | "regenerate";

/**
 * The branch action each addressable message offers, by message id: every stored prompt can be
 * edited; a turn's reply (its first assistant item, right after the prompt: a reply, a partial
 * one or the error item) can be regenerated.
 */
export function branchTargets(messages: readonly Message[]): ReadonlyMap<string, BranchAction> {
  const targets = new Map<string, BranchAction>();
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i]!;
    if (message.index !== i || message.status === "streaming") break;
    if (message.role === "user") targets.set(message.id, "edit");
    else if (messages[i - 1]?.role === "user") targets.set(message.id, "regenerate");
  }
  return targets;
}
