// @vitest-environment jsdom
import { cleanup, render, screen, fireEvent } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { Row } from "../lib/messages";
import { type BranchHandlers, MessageView } from "./MessageView";

afterEach(cleanup);

const XSS = '<img src=x onerror="window.__xss = 1">';

function assistant(text: string, extra: Partial<Row> = {}): Row {
  return { id: "a", role: "assistant", text, type: "text", status: "complete", ...extra };
}

describe("MessageView", () => {
  it("shows a user's HTML as text", () => {
    const { container } = render(
      <MessageView {...{ id: "u", role: "user", text: XSS, type: "text", status: "complete" }} />,
    );
    expect(container.querySelector("img")).toBeNull();
    expect(screen.getByText(XSS)).toBeTruthy();
  });

  it("shows raw HTML in a model reply as text, not elements", () => {
    const { container } = render(<MessageView {...assistant(`Here: ${XSS} <script>window.__xss=2</script>`)} />);
    expect(container.querySelector("img")).toBeNull();
    expect(container.querySelector("script")).toBeNull();
    expect(container.textContent).toContain("<img src=x");
  });

  it("drops javascript: links and turns Markdown images into links", () => {
    const { container } = render(
      <MessageView {...assistant("[click](javascript:alert(1)) ![logo](https://example.invalid/x.png)")} />,
    );
    expect(container.querySelector("img")).toBeNull();
    const hrefs = Array.from(container.querySelectorAll("a"), (a) => a.getAttribute("href") ?? "");
    expect(hrefs.some((h) => h.toLowerCase().startsWith("javascript"))).toBe(false);
    expect(hrefs).toContain("https://example.invalid/x.png");
  });

  it("highlights fenced code and copies its text", async () => {
    const writeText = vi.fn(async () => {});
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    const code = "def add(a, b):\n    return a + b\n";
    const { container } = render(<MessageView {...assistant("Code:\n\n```python\n" + code + "```\n", { mode: "generate_code" })} />);
    expect(container.querySelector("pre code.hljs.language-python")).not.toBeNull();
    expect(container.querySelector("pre code .hljs-keyword")?.textContent).toBe("def");
    fireEvent.click(screen.getByRole("button", { name: "Copy python code" }));
    await vi.waitFor(() => expect(writeText).toHaveBeenCalledWith(code));
  });

  it("keeps a poem's line breaks", () => {
    const { container } = render(
      <MessageView {...assistant("Roses are red,\nviolets are blue.", { mode: "generate_poem" })} />,
    );
    expect(container.querySelectorAll(".markdown.poem br")).toHaveLength(1);
  });

  it("renders GFM tables and strikethrough", () => {
    const { container } = render(<MessageView {...assistant("| a | b |\n|---|---|\n| 1 | 2 |\n\n~~old~~")} />);
    expect(container.querySelector("table td")?.textContent).toBe("1");
    expect(container.querySelector("del")?.textContent).toBe("old");
  });

  it("shows the mode badge and the stop note", () => {
    render(<MessageView {...assistant("partial", { mode: "prompt_for_more", status: "stopped", interrupted: true })} />);
    expect(screen.getByTestId("mode-badge").textContent).toBe("clarify");
    expect(screen.getByTestId("interrupted").textContent).toBe("stopped");
  });

  it("shows a failure with its message and a working Retry", () => {
    const onRetry = vi.fn();
    render(
      <MessageView
        {...assistant("par", {
          status: "failed",
          retry: true,
          error: { kind: "stream", code: "upstream_error", message: "Upstream answered 500" },
        })}
        onRetry={onRetry}
      />,
    );
    expect(screen.getByRole("alert").textContent).toContain("Upstream answered 500");
    fireEvent.click(screen.getByRole("button", { name: /retry/i }));
    expect(onRetry).toHaveBeenCalled();
  });

  it("shows a stored error item as a failure, as text", () => {
    const { container } = render(<MessageView {...assistant(`Upstream failed ${XSS}`, { type: "error" })} />);
    expect(screen.getByTestId("stored-error").textContent).toContain("Upstream failed <img");
    expect(container.querySelector("img")).toBeNull();
    expect(screen.queryByRole("button", { name: /retry/i })).toBeNull();
  });

  it("shows a typing indicator before the first delta", () => {
    render(<MessageView {...assistant("", { status: "streaming" })} />);
    expect(screen.getByRole("status", { name: "Assistant is writing" })).toBeTruthy();
  });
});

function handlers() {
  return {
    onEdit: vi.fn<BranchHandlers["onEdit"]>(),
    onRegenerate: vi.fn<BranchHandlers["onRegenerate"]>(),
    onSwitch: vi.fn<BranchHandlers["onSwitch"]>(),
    burrUrl: vi.fn<BranchHandlers["burrUrl"]>((appId) => `/burr/project/p/p/${appId}`),
  };
}

function user(text: string, extra: Partial<Row> = {}): Row {
  return { id: "u", role: "user", text, type: "text", status: "complete", index: 2, ...extra };
}

describe("MessageView branches", () => {
  it("edits a prompt inline and sends the new text for its message", () => {
    const branches = handlers();
    render(<MessageView {...user("old")} action="edit" branches={branches} />);
    fireEvent.click(screen.getByRole("button", { name: "Edit message" }));
    const input = screen.getByRole("textbox", { name: "Edited message" });
    expect(screen.queryByText("old", { selector: ".user-bubble" })).toBeNull();
    fireEvent.change(input, { target: { value: "new" } });
    fireEvent.keyDown(input, { key: "Enter" });
    expect(branches.onEdit).toHaveBeenCalledWith("u", "new");
    expect(screen.queryByRole("textbox")).toBeNull();
  });

  it("gives the focus back to Edit when the editor is cancelled", () => {
    render(<MessageView {...user("old")} action="edit" branches={handlers()} />);
    fireEvent.click(screen.getByRole("button", { name: "Edit message" }));
    fireEvent.keyDown(screen.getByRole("textbox", { name: "Edited message" }), { key: "Escape" });
    expect(screen.getByText("old")).toBeTruthy();
    expect(document.activeElement).toBe(screen.getByRole("button", { name: "Edit message" }));
  });

  it("offers no edit or regenerate while locked, or where the message is not addressable", () => {
    const branches = handlers();
    const { rerender } = render(<MessageView {...user("q")} action="edit" locked branches={branches} />);
    expect(screen.queryByRole("button", { name: "Edit message" })).toBeNull();
    rerender(<MessageView {...user("q")} branches={branches} />);
    expect(screen.queryByRole("button", { name: "Edit message" })).toBeNull();
    rerender(<MessageView {...assistant("r", { index: 3 })} action="regenerate" locked branches={branches} />);
    expect(screen.queryByRole("button", { name: "Regenerate reply" })).toBeNull();
  });

  it("regenerates a reply by its id", () => {
    const branches = handlers();
    render(<MessageView {...assistant("r", { index: 3 })} action="regenerate" branches={branches} />);
    fireEvent.click(screen.getByRole("button", { name: "Regenerate reply" }));
    expect(branches.onRegenerate).toHaveBeenCalledWith("a");
  });

  it("regenerates a stored error item too", () => {
    const branches = handlers();
    render(<MessageView {...assistant("Upstream failed", { index: 1, type: "error" })} action="regenerate" branches={branches} />);
    fireEvent.click(screen.getByRole("button", { name: "Regenerate reply" }));
    expect(branches.onRegenerate).toHaveBeenCalledWith("a");
    expect(screen.queryByRole("button", { name: "Copy reply" })).toBeNull();
  });

  it("a stopped reply the server stored is regenerated as a branch, not sent again", () => {
    const branches = handlers();
    const onRetry = vi.fn();
    const stopped = assistant("par", { index: 3, status: "stopped", interrupted: true });
    const { rerender } = render(<MessageView {...stopped} action="regenerate" onRetry={onRetry} branches={branches} />);
    expect(screen.getAllByRole("button", { name: /regenerate/i })).toHaveLength(1);
    fireEvent.click(screen.getByRole("button", { name: /regenerate/i }));
    expect(branches.onRegenerate).toHaveBeenCalledWith("a");
    expect(onRetry).not.toHaveBeenCalled();
    // Nothing of it stored (no branch action, the last turn): its prompt is sent again.
    rerender(<MessageView {...{ ...stopped, text: "", index: undefined, retry: true }} onRetry={onRetry} branches={branches} />);
    fireEvent.click(screen.getByRole("button", { name: /regenerate/i }));
    expect(onRetry).toHaveBeenCalled();
  });

  it("shows the switcher and the branch's Burr link on a versioned prompt and reply", () => {
    const branches = handlers();
    const versioned = user("q", { branch: { version: 1, versions: 2, app_id: "c~1" } });
    const { rerender } = render(<MessageView {...versioned} branches={branches} />);
    expect(screen.getByTestId("branch-position").textContent).toBe("2 / 2");
    fireEvent.click(screen.getByRole("button", { name: "Previous version" }));
    expect(branches.onSwitch).toHaveBeenCalledWith(2, 0);
    expect(screen.getByRole("link", { name: /View in Burr/ }).getAttribute("href")).toBe("/burr/project/p/p/c~1");
    expect(branches.burrUrl).toHaveBeenCalledWith("c~1");

    const reply = assistant("r", { index: 5, branch: { version: 0, versions: 3, app_id: "c" } });
    rerender(<MessageView {...reply} branches={branches} />);
    expect(screen.getByTestId("branch-position").textContent).toBe("1 / 3");
    fireEvent.click(screen.getByRole("button", { name: "Next version" }));
    expect(branches.onSwitch).toHaveBeenLastCalledWith(5, 1);
  });

  it("shows no switcher on a message with one version", () => {
    render(<MessageView {...user("q")} action="edit" branches={handlers()} />);
    expect(screen.queryByTestId("branch-switcher")).toBeNull();
  });
});
