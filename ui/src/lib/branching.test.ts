import { describe, expect, it } from "vitest";

import { branchTargets, planBranch } from "./branching";
import type { Message } from "./conversation";

function msg(id: string, role: Message["role"], content: string, extra: Partial<Message> = {}): Message {
  return { id, role, content, type: "text", status: "complete", ...extra };
}

/** A stored transcript: every message at its index. */
const stored: Message[] = [
  msg("u0", "user", "first question", { index: 0 }),
  msg("a1", "assistant", "first answer", { index: 1 }),
  msg("u2", "user", "second question", { index: 2 }),
  msg("a3", "assistant", "partial", { index: 3, interrupted: true }),
  msg("a4", "assistant", "Upstream failed", { index: 4, type: "error" }),
];

describe("planBranch", () => {
  it("edits a prompt: keeps what comes before it, asks the new text", () => {
    expect(planBranch(stored, { kind: "edit", index: 2, prompt: "  better question \n" })).toEqual({
      keep: 2,
      prompt: "better question",
      reusePrompt: false,
    });
    expect(planBranch(stored, { kind: "edit", index: 0, prompt: "x" })).toEqual({ keep: 0, prompt: "x", reusePrompt: false });
  });

  it("regenerates a reply: keeps its prompt and asks it again", () => {
    expect(planBranch(stored, { kind: "regenerate", index: 1 })).toEqual({
      keep: 0,
      prompt: "first question",
      reusePrompt: true,
    });
    expect(planBranch(stored, { kind: "regenerate", index: 3 })).toEqual({
      keep: 2,
      prompt: "second question",
      reusePrompt: true,
    });
  });

  it("refuses a blank edit", () => {
    expect(planBranch(stored, { kind: "edit", index: 2, prompt: " \n " })).toBeNull();
  });

  it("refuses what the transcript does not hold as the server has it", () => {
    const local = [
      msg("u0", "user", "q", { index: 0 }),
      // A turn the server never began: no index.
      msg("u1", "user", "refused"),
      msg("a2", "assistant", "", { status: "failed" }),
    ];
    expect(planBranch(local, { kind: "edit", index: 2, prompt: "x" })).toBeNull();
    expect(planBranch(local, { kind: "regenerate", index: 2 })).toBeNull();
    expect(planBranch([], { kind: "regenerate", index: 0 })).toBeNull();
    expect(planBranch(stored, { kind: "edit", index: 9, prompt: "x" })).toBeNull();
  });

  it("plans a Retry of a refused branch from what it left on screen", () => {
    // An edit at 2 was refused: the transcript is the kept items, the new prompt, the failure.
    const afterEdit = [...stored.slice(0, 2), msg("n", "user", "new"), msg("f", "assistant", "", { status: "failed" })];
    expect(planBranch(afterEdit, { kind: "edit", index: 2, prompt: "new" })).toMatchObject({ keep: 2 });
    // A regeneration at 3 was refused: the kept items up to its prompt, then the failure.
    const afterRegenerate = [...stored.slice(0, 3), msg("f", "assistant", "", { status: "failed" })];
    expect(planBranch(afterRegenerate, { kind: "regenerate", index: 3 })).toMatchObject({
      keep: 2,
      prompt: "second question",
    });
  });
});

describe("branchTargets", () => {
  it("offers Edit on prompts and Regenerate on each turn's first reply item", () => {
    expect([...branchTargets(stored)]).toEqual([
      ["u0", "edit"],
      ["a1", "regenerate"],
      ["u2", "edit"],
      // The partial reply starts the failed turn; the error item after it is not a turn start.
      ["a3", "regenerate"],
    ]);
  });

  it("offers nothing from the first message the server's index is not known for", () => {
    const local = [
      ...stored.slice(0, 2),
      msg("u2", "user", "asked", { index: 2 }),
      // Its end frame did not come (a failure): how the server stored it is not known.
      msg("a3", "assistant", "par", { status: "failed" }),
    ];
    expect([...branchTargets(local).keys()]).toEqual(["u0", "a1", "u2"]);
    const streaming = [...stored.slice(0, 2), msg("u2", "user", "q", { index: 2 }), msg("a3", "assistant", "", { status: "streaming" })];
    expect([...branchTargets(streaming).keys()]).toEqual(["u0", "a1", "u2"]);
  });
});
