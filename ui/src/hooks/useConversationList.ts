/** The sidebar's conversation list: first page, "load more", refresh after changes. */
import { useCallback, useEffect, useRef, useState } from "react";

import type { ApiClient } from "../lib/api";
import type { Failure } from "../lib/conversation";
import type { ConversationSummary } from "../lib/protocol";
import { describeFailure } from "../lib/outcome";

const PAGE = 50;

export interface ConversationList {
  items: ConversationSummary[];
  total: number;
  loading: boolean;
  error: Failure | null;
  refresh: () => void;
  loadMore: () => void;
  removeLocally: (appId: string) => void;
}

export function useConversationList(api: ApiClient, projectId: string | undefined): ConversationList {
  const [items, setItems] = useState<ConversationSummary[]>([]);
  const [total, setTotal] = useState(0);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<Failure | null>(null);
  // Answers can come back out of order; only the newest request may set the list.
  const generation = useRef(0);

  const load = useCallback(
    async (offset: number) => {
      if (!projectId) return;
      const mine = ++generation.current;
      setLoading(true);
      try {
        const page = await api.conversations(projectId, PAGE, offset);
        if (mine !== generation.current) return;
        setItems((previous) => {
          if (offset === 0) return page.items;
          const seen = new Set(previous.map((c) => c.app_id));
          return [...previous, ...page.items.filter((c) => !seen.has(c.app_id))];
        });
        setTotal(page.total);
        setError(null);
      } catch (e) {
        if (mine === generation.current) setError(describeFailure(e));
      } finally {
        if (mine === generation.current) setLoading(false);
      }
    },
    [api, projectId],
  );

  useEffect(() => {
    void load(0);
  }, [load]);

  const refresh = useCallback(() => void load(0), [load]);
  const loadMore = useCallback(() => void load(items.length), [load, items.length]);
  const removeLocally = useCallback((appId: string) => {
    setItems((previous) => previous.filter((c) => c.app_id !== appId));
    setTotal((t) => Math.max(0, t - 1));
  }, []);

  return { items, total, loading, error, refresh, loadMore, removeLocally };
}
