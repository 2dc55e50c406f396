// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import { PromptEditor } from "./PromptEditor";

afterEach(cleanup);

function setup(locked = false) {
  const onSave = vi.fn();
  const onCancel = vi.fn();
  render(<PromptEditor initial="old prompt" locked={locked} onSave={onSave} onCancel={onCancel} />);
  const input = screen.getByRole("textbox", { name: "Edited message" }) as HTMLTextAreaElement;
  return { onSave, onCancel, input, save: screen.getByRole("button", { name: "Save" }) };
}

describe("PromptEditor", () => {
  it("opens with the old text, focused", () => {
    const { input } = setup();
    expect(input.value).toBe("old prompt");
    expect(document.activeElement).toBe(input);
  });

  it("saves the new text with Enter, trimmed; Shift+Enter is a new line", () => {
    const { input, onSave } = setup();
    fireEvent.change(input, { target: { value: "  new prompt \n" } });
    fireEvent.keyDown(input, { key: "Enter", shiftKey: true });
    expect(onSave).not.toHaveBeenCalled();
    fireEvent.keyDown(input, { key: "Enter" });
    expect(onSave).toHaveBeenCalledWith("new prompt");
  });

  it("saves with the Save button", () => {
    const { input, onSave, save } = setup();
    fireEvent.change(input, { target: { value: "new prompt" } });
    fireEvent.click(save);
    expect(onSave).toHaveBeenCalledWith("new prompt");
  });

  it("does not save blank or unchanged text, nor while locked", () => {
    const { input, onSave, save } = setup();
    expect((save as HTMLButtonElement).disabled).toBe(true);
    fireEvent.keyDown(input, { key: "Enter" });
    fireEvent.change(input, { target: { value: "   " } });
    fireEvent.keyDown(input, { key: "Enter" });
    expect(onSave).not.toHaveBeenCalled();
    cleanup();
    const locked = setup(true);
    fireEvent.change(locked.input, { target: { value: "new" } });
    fireEvent.keyDown(locked.input, { key: "Enter" });
    expect(locked.onSave).not.toHaveBeenCalled();
  });

  it("cancels with Escape, which goes no further (Escape elsewhere stops a reply)", () => {
    const { input, onCancel } = setup();
    const outside = vi.fn();
    window.addEventListener("keydown", outside);
    fireEvent.keyDown(input, { key: "Escape" });
    window.removeEventListener("keydown", outside);
    expect(onCancel).toHaveBeenCalledTimes(1);
    expect(outside).not.toHaveBeenCalled();
  });

  it("cancels with the Cancel button", () => {
    const { onCancel, onSave } = setup();
    fireEvent.click(screen.getByRole("button", { name: "Cancel" }));
    expect(onCancel).toHaveBeenCalledTimes(1);
    expect(onSave).not.toHaveBeenCalled();
  });
});
