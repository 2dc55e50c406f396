/**
 * The app: TanStack Query's cache, the API-key dialog, and the page for the route. Before the
 * server's /info is in, every route waits for it (it names the project and Burr's UI).
 */
import { QueryClientProvider, useQuery } from "@tanstack/react-query";
import { useEffect, useSyncExternalStore } from "react";

import { ApiKeyDialog } from "./components/ApiKeyDialog";
import { Layout, Pending } from "./Layout";
import { keyPrompt } from "./lib/api";
import { infoQuery, queryClient, startSession } from "./lib/queries";
import { followLink, useRoute } from "./lib/router";
import { ConversationPage, HomePage } from "./pages";

function Pages() {
  const route = useRoute();
  const info = useQuery(infoQuery);
  // A server with an API key: ask for it now rather than at the first failing call, and get
  // the session cookie that Burr's tracking UI (same origin, no header of ours) relies on.
  // With OpenID Connect the browser signs in at the provider instead (and back to this page).
  const signIn = info.data?.sign_in_url && !info.data.user ? info.data.sign_in_url : null;
  const authRequired = Boolean(info.data?.auth_required) && !info.data?.sign_in_url;
  // Once it has the key, /info also says whose it is (the sidebar shows it).
  useEffect(() => {
    if (authRequired)
      startSession()
        .then(() => queryClient.invalidateQueries({ queryKey: infoQuery.queryKey }))
        .catch(() => {});
  }, [authRequired]);
  useEffect(() => {
    if (signIn) window.location.assign(`${signIn}?next=${encodeURIComponent(window.location.pathname)}`);
  }, [signIn]);

  if (!info.data || signIn) {
    return (
      <Layout title="New chat">
        <Pending query={info} waiting="Connecting to the server…" />
      </Layout>
    );
  }
  if (route.name === "home") return <HomePage info={info.data} />;
  if (route.name === "conversation") return <ConversationPage key={route.appId} info={info.data} appId={route.appId} />;
  return (
    <Layout title="Not found">
      <div className="center-panel">
        <h2>Page not found</h2>
        <p>
          <a href="/" onClick={(e) => followLink(e, "/")}>
            Start a new chat
          </a>
        </p>
      </div>
    </Layout>
  );
}

function KeyPrompt() {
  const prompt = useSyncExternalStore(keyPrompt.subscribe, keyPrompt.current);
  return prompt && <ApiKeyDialog prompt={prompt} />;
}

export function App() {
  return (
    <QueryClientProvider client={queryClient}>
      <Pages />
      <KeyPrompt />
    </QueryClientProvider>
  );
}
