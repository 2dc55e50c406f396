/** GET /info once at start: which project to use, where Burr's UI is, whether the model is offline. */
import { useCallback, useEffect, useState } from "react";

import type { ApiClient } from "../lib/api";
import type { Failure } from "../lib/conversation";
import type { Info } from "../lib/protocol";
import { describeFailure } from "../lib/outcome";

export function useInfo(api: ApiClient) {
  const [info, setInfo] = useState<Info | null>(null);
  const [error, setError] = useState<Failure | null>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let cancelled = false;
    api.info().then(
      (value) => {
        if (cancelled) return;
        setInfo(value);
        setError(null);
      },
      (e: unknown) => {
        if (!cancelled) setError(describeFailure(e));
      },
    );
    return () => {
      cancelled = true;
    };
  }, [api, attempt]);

  const retry = useCallback(() => {
    setError(null);
    setAttempt((n) => n + 1);
  }, []);

  return { info, error, retry };
}
