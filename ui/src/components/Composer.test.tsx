// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import { Composer } from "./Composer";

afterEach(cleanup);

function setup(busy = false) {
  const onSend = vi.fn();
  const onStop = vi.fn();
  const utils = render(<Composer busy={busy} onSend={onSend} onStop={onStop} />);
  const box = screen.getByRole("textbox", { name: "Message" }) as HTMLTextAreaElement;
  return { ...utils, onSend, onStop, box };
}

describe("Composer", () => {
  it("sends on Enter and clears the box", () => {
    const { onSend, box } = setup();
    fireEvent.change(box, { target: { value: "  hello  " } });
    fireEvent.keyDown(box, { key: "Enter" });
    expect(onSend).toHaveBeenCalledWith("hello");
    expect(box.value).toBe("");
  });

  it("does not send on Shift+Enter", () => {
    const { onSend, box } = setup();
    fireEvent.change(box, { target: { value: "line" } });
    const notCancelled = fireEvent.keyDown(box, { key: "Enter", shiftKey: true });
    expect(onSend).not.toHaveBeenCalled();
    expect(notCancelled).toBe(true);
  });

  it("does not send blank prompts", () => {
    const { onSend, box } = setup();
    fireEvent.change(box, { target: { value: "   \n " } });
    fireEvent.keyDown(box, { key: "Enter" });
    expect(onSend).not.toHaveBeenCalled();
    expect((screen.getByRole("button", { name: "Send message" }) as HTMLButtonElement).disabled).toBe(true);
  });

  it("while busy: box disabled, stop button instead of send", () => {
    const { onStop, box } = setup(true);
    expect(box.disabled).toBe(true);
    expect(screen.queryByRole("button", { name: "Send message" })).toBeNull();
    fireEvent.click(screen.getByRole("button", { name: "Stop generating" }));
    expect(onStop).toHaveBeenCalled();
  });
});
