/**
 * Server state on TanStack Query: what is cached under which key, and how it is fetched. The
 * cache, its retries and its race handling are the library's; the calls are openapi-fetch's.
 */
import { type InfiniteData, infiniteQueryOptions, QueryClient, queryOptions } from "@tanstack/react-query";

import { api, ApiError, unwrap } from "./api";
import type { ConversationPage, ConversationSummary } from "./protocol";

const PAGE = 50;

export const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // A refusal (404, 401 cancelled, 422) stays one; a server or network failure is tried again.
      retry: (count, error) => count < 2 && !(error instanceof ApiError && error.status < 500),
      refetchOnWindowFocus: false,
    },
  },
});

export const infoQuery = queryOptions({
  queryKey: ["info"],
  queryFn: async () => unwrap(await api.GET("/api/v0/streaming_chatbot/info")),
  staleTime: Infinity,
});

export const conversationsQuery = (projectId: string) =>
  infiniteQueryOptions({
    queryKey: ["conversations", projectId],
    queryFn: async ({ pageParam }) =>
      unwrap(
        await api.GET("/api/v0/streaming_chatbot/conversations/{project_id}", {
          params: { path: { project_id: projectId }, query: { limit: PAGE, offset: pageParam } },
        }),
      ),
    initialPageParam: 0,
    getNextPageParam: (last: ConversationPage, pages) => {
      const seen = pages.reduce((n, page) => n + page.items.length, 0);
      return seen < last.total ? seen : undefined;
    },
  });

export const historyQuery = (projectId: string, appId: string) =>
  queryOptions({
    queryKey: ["history", projectId, appId],
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v0/streaming_chatbot/history/{project_id}/{app_id}", {
          params: { path: { project_id: projectId, app_id: appId } },
        }),
      ),
    staleTime: Infinity,
  });

/** A conversation started here shows in the list at once, before the server lists it. */
export function listStarted(projectId: string, summary: ConversationSummary): void {
  queryClient.setQueryData<InfiniteData<ConversationPage, number>>(conversationsQuery(projectId).queryKey, (data) => {
    if (!data?.pages[0]) return data;
    const [first, ...rest] = data.pages;
    return { ...data, pages: [{ ...first, items: [summary, ...first.items], total: first.total + 1 }, ...rest] };
  });
}

export const refreshConversations = () => queryClient.invalidateQueries({ queryKey: ["conversations"] });

export async function deleteConversation(projectId: string, appId: string): Promise<void> {
  const result = await api.DELETE("/api/v0/streaming_chatbot/conversations/{project_id}/{app_id}", {
    params: { path: { project_id: projectId, app_id: appId } },
  });
  // Already gone (or never created on the server): the result the user asked for.
  if (result.response.status !== 404) unwrap(result);
  queryClient.removeQueries({ queryKey: ["history", projectId, appId] });
}

/** Shows version `version` of item `index`; answers the history now shown. */
export async function switchVersion(projectId: string, appId: string, index: number, version: number) {
  const items = unwrap(
    await api.POST("/api/v0/streaming_chatbot/branches/{project_id}/{app_id}", {
      params: { path: { project_id: projectId, app_id: appId } },
      body: { index, version },
    }),
  );
  queryClient.setQueryData(historyQuery(projectId, appId).queryKey, items);
  // The list's title and turn count follow the branch shown: fresh at its next read.
  void queryClient.invalidateQueries({ queryKey: ["conversations"], refetchType: "none" });
  return items;
}

/** Asks the server to stop the reply being written; false when there is none (409). */
export async function stopReply(projectId: string, appId: string): Promise<boolean> {
  const result = await api.POST("/api/v0/streaming_chatbot/stop/{project_id}/{app_id}", {
    params: { path: { project_id: projectId, app_id: appId } },
  });
  return result.response.ok;
}

export async function startSession(): Promise<void> {
  unwrap(await api.POST("/api/v0/streaming_chatbot/session"));
}
