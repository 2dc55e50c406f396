/**
 * Server state on TanStack Query (the cache, its retries and its race handling are the
 * library's) and the other calls, on openapi-fetch.
 */
import { type InfiniteData, infiniteQueryOptions, QueryClient, queryOptions } from "@tanstack/react-query";

import { api, ApiError, unwrap } from "./api";
import type { ConversationPage, ConversationSummary } from "./protocol";

const PAGE = 50;
const inConversation = (project_id: string, app_id: string) => ({ params: { path: { project_id, app_id } } });

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
      unwrap(await api.GET("/api/v0/streaming_chatbot/history/{project_id}/{app_id}", inConversation(projectId, appId))),
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
  const path = "/api/v0/streaming_chatbot/conversations/{project_id}/{app_id}";
  const result = await api.DELETE(path, inConversation(projectId, appId));
  // Already gone (or never created on the server): the result the user asked for.
  if (result.response.status !== 404) unwrap(result);
  queryClient.removeQueries({ queryKey: historyQuery(projectId, appId).queryKey });
}

/** Shows version `version` of item `index`; answers the history now shown. */
export async function switchVersion(projectId: string, appId: string, index: number, version: number) {
  const items = unwrap(
    await api.POST("/api/v0/streaming_chatbot/branches/{project_id}/{app_id}", {
      ...inConversation(projectId, appId),
      body: { index, version },
    }),
  );
  queryClient.setQueryData(historyQuery(projectId, appId).queryKey, items);
  // The list's title and turn count follow the branch shown: fresh at its next read.
  void queryClient.invalidateQueries({ queryKey: ["conversations"], refetchType: "none" });
  return items;
}

/** Asks the server to stop the reply being written; false when it has none (409) or no such conversation (404). */
export async function stopReply(projectId: string, appId: string): Promise<boolean> {
  const path = "/api/v0/streaming_chatbot/stop/{project_id}/{app_id}";
  return (await api.POST(path, inConversation(projectId, appId))).response.ok;
}

export async function startSession(): Promise<void> {
  unwrap(await api.POST("/api/v0/streaming_chatbot/session"));
}
