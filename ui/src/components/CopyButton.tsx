import { useEffect, useState } from "react";

import { CheckIcon, CopyIcon } from "./icons";

/**
 * navigator.clipboard exists only in secure contexts (https, localhost); a server reached over
 * plain http on a LAN address falls back to a hidden textarea and execCommand.
 */
async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard here, permission refused or no focus: the fallback.
  }
  const area = Object.assign(document.createElement("textarea"), { value: text, readOnly: true });
  area.style.cssText = "position: fixed; opacity: 0";
  const previous = document.activeElement as HTMLElement | null;
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    // Not supported either.
  }
  area.remove();
  previous?.focus();
  return ok;
}

export function CopyButton({ text, label, className = "" }: { text: () => string; label: string; className?: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  useEffect(() => {
    if (state === "idle") return;
    const timer = setTimeout(() => setState("idle"), 2000);
    return () => clearTimeout(timer);
  }, [state]);
  return (
    <button
      type="button"
      className={`copy-button ${className}`}
      aria-label={label}
      onClick={async () => setState((await copyText(text())) ? "copied" : "failed")}
    >
      {state === "copied" ? <CheckIcon /> : <CopyIcon />}
      <span aria-live="polite">{{ idle: "Copy", copied: "Copied", failed: "Copy failed" }[state]}</span>
    </button>
  );
}
