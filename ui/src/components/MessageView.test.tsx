// @vitest-environment jsdom
import { cleanup, render, screen, fireEvent } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { Message } from "../lib/conversation";
import { MessageView } from "./MessageView";

afterEach(cleanup);

const XSS = '<img src=x onerror="window.__xss = 1">';

function assistant(content: string, extra: Partial<Message> = {}): Message {
  return { id: "a", role: "assistant", content, type: "text", status: "complete", ...extra };
}

describe("MessageView", () => {
  it("shows a user's HTML as text", () => {
    const { container } = render(
      <MessageView message={{ id: "u", role: "user", content: XSS, type: "text", status: "complete" }} />,
    );
    expect(container.querySelector("img")).toBeNull();
    expect(screen.getByText(XSS)).toBeTruthy();
  });

  it("shows raw HTML in a model reply as text, not elements", () => {
    const { container } = render(<MessageView message={assistant(`Here: ${XSS} <script>window.__xss=2</script>`)} />);
    expect(container.querySelector("img")).toBeNull();
    expect(container.querySelector("script")).toBeNull();
    expect(container.textContent).toContain("<img src=x");
  });

  it("drops javascript: links and turns Markdown images into links", () => {
    const { container } = render(
      <MessageView message={assistant("[click](javascript:alert(1)) ![logo](https://example.invalid/x.png)")} />,
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
    const { container } = render(<MessageView message={assistant("Code:\n\n```python\n" + code + "```\n", { mode: "generate_code" })} />);
    expect(container.querySelector("pre code.hljs.language-python")).not.toBeNull();
    expect(container.querySelector("pre code .hljs-keyword")?.textContent).toBe("def");
    fireEvent.click(screen.getByRole("button", { name: "Copy python code" }));
    await vi.waitFor(() => expect(writeText).toHaveBeenCalledWith(code));
  });

  it("keeps a poem's line breaks", () => {
    const { container } = render(
      <MessageView message={assistant("Roses are red,\nviolets are blue.", { mode: "generate_poem" })} />,
    );
    expect(container.querySelectorAll(".markdown.poem br")).toHaveLength(1);
  });

  it("renders GFM tables and strikethrough", () => {
    const { container } = render(<MessageView message={assistant("| a | b |\n|---|---|\n| 1 | 2 |\n\n~~old~~")} />);
    expect(container.querySelector("table td")?.textContent).toBe("1");
    expect(container.querySelector("del")?.textContent).toBe("old");
  });

  it("shows the mode badge and the stop note", () => {
    render(<MessageView message={assistant("partial", { mode: "prompt_for_more", status: "stopped", interrupted: true })} />);
    expect(screen.getByTestId("mode-badge").textContent).toBe("clarify");
    expect(screen.getByTestId("interrupted").textContent).toBe("stopped");
  });

  it("shows a failure with its message and a working Retry", () => {
    const onRetry = vi.fn();
    render(
      <MessageView
        message={assistant("par", {
          status: "failed",
          prompt: "hi",
          error: { kind: "stream", code: "upstream_error", message: "Upstream answered 500", retryable: true },
        })}
        onRetry={onRetry}
      />,
    );
    expect(screen.getByRole("alert").textContent).toContain("Upstream answered 500");
    fireEvent.click(screen.getByRole("button", { name: /retry/i }));
    expect(onRetry).toHaveBeenCalledWith("a");
  });

  it("shows a stored error item as a failure, as text", () => {
    const { container } = render(<MessageView message={assistant(`Upstream failed ${XSS}`, { type: "error" })} />);
    expect(screen.getByTestId("stored-error").textContent).toContain("Upstream failed <img");
    expect(container.querySelector("img")).toBeNull();
    expect(screen.queryByRole("button", { name: /retry/i })).toBeNull();
  });

  it("shows a typing indicator before the first delta", () => {
    render(<MessageView message={assistant("", { status: "streaming" })} />);
    expect(screen.getByRole("status", { name: "Assistant is writing" })).toBeTruthy();
  });
});
