// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import { VersionSwitcher } from "./VersionSwitcher";

afterEach(cleanup);

const mark = (version: number, versions: number) => ({ version, versions, app_id: "chat~2" });

describe("VersionSwitcher", () => {
  it("shows the version 1-based and switches to its neighbours", () => {
    const onSwitch = vi.fn();
    render(<VersionSwitcher mark={mark(1, 3)} locked={false} onSwitch={onSwitch} burrUrl={null} />);
    expect(screen.getByTestId("branch-position").textContent).toBe("2 / 3");
    expect(screen.getByText("Version 2 of 3")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Previous version" }));
    fireEvent.click(screen.getByRole("button", { name: "Next version" }));
    expect(onSwitch.mock.calls).toEqual([[0], [2]]);
  });

  it("goes nowhere past either end, and keeps the buttons focusable there", () => {
    const onSwitch = vi.fn();
    const { rerender } = render(<VersionSwitcher mark={mark(0, 2)} locked={false} onSwitch={onSwitch} burrUrl={null} />);
    const previous = screen.getByRole("button", { name: "Previous version" });
    expect(previous.getAttribute("aria-disabled")).toBe("true");
    expect(previous.hasAttribute("disabled")).toBe(false);
    fireEvent.click(previous);
    rerender(<VersionSwitcher mark={mark(1, 2)} locked={false} onSwitch={onSwitch} burrUrl={null} />);
    fireEvent.click(screen.getByRole("button", { name: "Next version" }));
    expect(onSwitch).not.toHaveBeenCalled();
  });

  it("does not switch while locked", () => {
    const onSwitch = vi.fn();
    render(<VersionSwitcher mark={mark(1, 3)} locked onSwitch={onSwitch} burrUrl={null} />);
    for (const name of ["Previous version", "Next version"]) {
      const button = screen.getByRole("button", { name });
      expect(button.getAttribute("aria-disabled")).toBe("true");
      fireEvent.click(button);
    }
    expect(onSwitch).not.toHaveBeenCalled();
  });

  it("links the shown version's run in Burr, when there is a Burr UI", () => {
    const { rerender } = render(
      <VersionSwitcher mark={mark(1, 2)} locked={false} onSwitch={() => {}} burrUrl="/burr/project/p/p/chat~2" />,
    );
    const link = screen.getByRole("link", { name: /View in Burr/ });
    expect(link.getAttribute("href")).toBe("/burr/project/p/p/chat~2");
    expect(link.getAttribute("target")).toBe("_blank");
    rerender(<VersionSwitcher mark={mark(1, 2)} locked={false} onSwitch={() => {}} burrUrl={null} />);
    expect(screen.queryByRole("link")).toBeNull();
  });
});
