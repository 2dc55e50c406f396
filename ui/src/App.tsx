/**
 * The app: TanStack Query's cache, the API-key dialog, and the page for the route. Before the
 * server's /info is in, every route waits for it (it names the project and Burr's UI).
 */
import { QueryClientProvider, useQuery } from "@tanstack/react-query";
import { useEffect, useSyncExternalStore } from "react";

import { ApiKeyDialog } from "./components/ApiKeyDialog";
import { FailureNotice } from "./components/MessageView";
import { Layout } from "./Layout";
import { keyPrompt } from "./lib/api";
import { describeFailure } from "./lib/messages";
import { infoQuery, queryClient, startSession } from "./lib/queries";
import { navigate, useRoute } from "./lib/router";
import { ConversationPage } from "./pages/ConversationPage";
import { HomePage } from "./pages/HomePage";

function Pages() {
  const route = useRoute();
  const info = useQuery(infoQuery);
  // A server with an API key: ask for it now rather than at the first failing call, and get
  // the session cookie that Burr's tracking UI (same origin, no header of ours) relies on.
  const authRequired = Boolean(info.data?.auth_required);
  useEffect(() => {
    if (authRequired) startSession().catch(() => {});
  }, [authRequired]);

  if (!info.data) {
    return (
      <Layout title="New chat">
        {info.error ? (
          <div className="center-panel">
            <FailureNotice error={describeFailure(info.error)} onRetry={() => void info.refetch()} />
          </div>
        ) : (
          <div className="center-panel muted" role="status">
            Connecting to the server…
          </div>
        )}
      </Layout>
    );
  }
  switch (route.name) {
    case "home":
      return <HomePage info={info.data} />;
    case "conversation":
      return <ConversationPage key={route.appId} info={info.data} appId={route.appId} />;
    case "notFound":
      return (
        <Layout title="Not found">
          <div className="center-panel">
            <h2>Page not found</h2>
            <p>
              <a href="/" onClick={(e) => (e.preventDefault(), navigate("/"))}>
                Start a new chat
              </a>
            </p>
          </div>
        </Layout>
      );
  }
}

function KeyPrompt() {
  const prompt = useSyncExternalStore(keyPrompt.subscribe, keyPrompt.current);
  if (!prompt) return null;
  return <ApiKeyDialog reason={prompt.reason} onSubmit={prompt.answer} onCancel={() => prompt.answer(null)} />;
}

export function App() {
  return (
    <QueryClientProvider client={queryClient}>
      <Pages />
      <KeyPrompt />
    </QueryClientProvider>
  );
}
