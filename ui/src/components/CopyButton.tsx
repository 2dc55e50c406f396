import { useEffect, useState } from "react";

import { copyText } from "./clipboard";
import { CheckIcon, CopyIcon } from "./icons";

export function CopyButton({ text, label, className }: { text: () => string; label: string; className?: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  useEffect(() => {
    if (state === "idle") return;
    const timer = setTimeout(() => setState("idle"), 2000);
    return () => clearTimeout(timer);
  }, [state]);
  return (
    <button
      type="button"
      className={`copy-button ${className ?? ""}`}
      aria-label={label}
      onClick={async () => setState((await copyText(text())) ? "copied" : "failed")}
    >
      {state === "copied" ? <CheckIcon /> : <CopyIcon />}
      <span aria-live="polite">{state === "copied" ? "Copied" : state === "failed" ? "Copy failed" : "Copy"}</span>
    </button>
  );
}
