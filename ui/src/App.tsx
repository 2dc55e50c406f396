import { useCallback, useEffect, useMemo, useRef, useState } from "react";

import { ApiKeyDialog } from "./components/ApiKeyDialog";
import { Composer } from "./components/Composer";
import { EmptyState } from "./components/EmptyState";
import { ExternalIcon, MenuIcon } from "./components/icons";
import { MessageList } from "./components/MessageList";
import { type BranchHandlers, FailureNotice } from "./components/MessageView";
import { Sidebar } from "./components/Sidebar";
import { useChat } from "./hooks/useChat";
import { useConversationList } from "./hooks/useConversationList";
import { useInfo } from "./hooks/useInfo";
import { ApiError, createApiClient, type KeyPromptReason } from "./lib/api";
import type { ConversationState, Failure } from "./lib/conversation";
import { burrRunUrl, type ConversationSummary } from "./lib/protocol";
import { conversationPath, navigate, parseRoute, usePathname } from "./lib/router";
import { describeFailure } from "./lib/outcome";

interface KeyPrompt {
  reason: KeyPromptReason;
  resolve: (key: string | null) => void;
}

const TITLE_CHARS = 60;

function firstPrompt(state: ConversationState | undefined): string | null {
  const first = state?.messages.find((m) => m.role === "user")?.content.trim();
  if (!first) return null;
  return first.length > TITLE_CHARS ? `${first.slice(0, TITLE_CHARS - 1)}…` : first;
}

/** One sentence for screen readers when a reply ends (the transcript itself is not live). */
function announcement(state: ConversationState | undefined): string {
  const last = state?.messages.at(-1);
  if (!last || last.role !== "assistant") return "";
  switch (last.status) {
    case "streaming":
      return "The assistant is replying.";
    case "complete":
      return "The assistant finished replying.";
    case "stopped":
      return "Reply stopped.";
    case "failed":
      return `The reply failed: ${last.error?.message ?? "error"}`;
  }
}

export function App() {
  const [keyPrompt, setKeyPrompt] = useState<KeyPrompt | null>(null);
  const api = useMemo(
    () =>
      createApiClient({
        promptForKey: (reason) => new Promise((resolve) => setKeyPrompt({ reason, resolve })),
      }),
    [],
  );
  const { info, error: infoError, retry: retryInfo } = useInfo(api);
  const projectId = info?.project_id;
  const list = useConversationList(api, projectId);
  const chat = useChat(api, projectId, list.refresh);
  const storeRef = useRef(chat.store);
  storeRef.current = chat.store;
  const route = parseRoute(usePathname());
  const currentId = route.name === "conversation" ? route.appId : null;
  const current = currentId ? chat.store[currentId] : undefined;
  const busy = Boolean(current?.activeTurn);
  // A version switch on its way: nothing else may change the conversation meanwhile.
  const switching = Boolean(current?.switching);
  const [drawerOpen, setDrawerOpen] = useState(false);
  const [notice, setNotice] = useState<Failure | null>(null);
  const [startedHere, setStartedHere] = useState<string[]>([]);

  // A server with an API key: ask for it now rather than at the first failing call, and get
  // the session cookie that Burr's tracking UI (same origin, no header of ours) relies on.
  const authRequired = Boolean(info?.auth_required);
  useEffect(() => {
    if (authRequired) api.startSession().catch(() => {});
  }, [api, authRequired]);

  // Open a conversation: its history comes from the server unless this tab already has it.
  const { loadHistory } = chat;
  const historyStatus = current?.history;
  useEffect(() => {
    if (currentId && projectId && (historyStatus === undefined || historyStatus === "idle")) {
      void loadHistory(currentId);
    }
  }, [currentId, projectId, historyStatus, loadHistory]);

  const summary = list.items.find((c) => c.app_id === currentId);
  const title =
    route.name === "notFound"
      ? "Not found"
      : summary?.title || firstPrompt(current) || "New chat";
  useEffect(() => {
    document.title = `${title} · Burr chatbot`;
  }, [title]);

  // Escape stops the reply streaming into the conversation on screen.
  const { stop } = chat;
  useEffect(() => {
    if (!busy || !currentId || keyPrompt) return;
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape" && !event.defaultPrevented) stop(currentId);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [busy, currentId, keyPrompt, stop]);

  const { startConversation, startTurn, startBranch, switchVersion, retry } = chat;
  const send = useCallback(
    (prompt: string) => {
      if (currentId) {
        void startTurn(currentId, prompt);
        return;
      }
      const appId = startConversation(prompt);
      setStartedHere((ids) => [appId, ...ids]);
      navigate(conversationPath(appId));
    },
    [currentId, startConversation, startTurn],
  );

  const onRetry = useCallback(
    (turnId: string) => {
      if (currentId) retry(currentId, turnId);
    },
    [currentId, retry],
  );

  // Stable while the conversation is the same, so messages that did not change do not re-render.
  const template = info?.burr_app_url_template ?? null;
  const branches = useMemo<BranchHandlers | undefined>(() => {
    if (!currentId || !projectId) return undefined;
    return {
      onEdit: (index, prompt) => void startBranch(currentId, { kind: "edit", index, prompt }),
      onRegenerate: (index) => void startBranch(currentId, { kind: "regenerate", index }),
      onSwitch: (index, version) => {
        switchVersion(currentId, index, version).catch((error: unknown) => setNotice(describeFailure(error)));
      },
      burrUrl: (branchAppId) => (template ? burrRunUrl(template, projectId, branchAppId) : null),
    };
  }, [currentId, projectId, template, startBranch, switchVersion]);

  const menuButton = useRef<HTMLButtonElement>(null);
  const closeDrawer = useCallback(() => {
    setDrawerOpen(false);
    // Give focus back to the button that opened the drawer, if focus was inside it.
    if (document.activeElement?.closest("#sidebar")) {
      requestAnimationFrame(() => menuButton.current?.focus());
    }
  }, []);

  // The drawer exists only at phone width: leaving it (rotation, resize) closes it.
  useEffect(() => {
    const wide = window.matchMedia?.("(min-width: 769px)");
    if (!wide) return;
    const onChange = () => {
      if (wide.matches) setDrawerOpen(false);
    };
    wide.addEventListener("change", onChange);
    return () => wide.removeEventListener("change", onChange);
  }, []);

  const newChat = useCallback(() => {
    navigate("/");
    setDrawerOpen(false);
  }, []);

  const { forget } = chat;
  const { removeLocally, refresh: refreshList } = list;
  const deleteConversation = useCallback(
    async (appId: string) => {
      if (!projectId) return;
      stop(appId);
      try {
        // The server stops a reply still being written in this conversation before deleting it.
        await api.remove(projectId, appId);
      } catch (error) {
        // Already gone (or never created on the server): the result the user asked for.
        if (!(error instanceof ApiError && error.status === 404)) {
          setNotice(describeFailure(error));
          return;
        }
      }
      forget(appId);
      removeLocally(appId);
      setStartedHere((ids) => ids.filter((id) => id !== appId));
      if (appId === currentId) navigate("/", { replace: true });
      refreshList();
    },
    [api, projectId, stop, forget, removeLocally, refreshList, currentId],
  );

  const pending: ConversationSummary[] = startedHere.flatMap((appId) => {
    const state = chat.store[appId];
    if (!state) return [];
    const now = new Date().toISOString();
    const title = firstPrompt(state) ?? "New chat";
    return [{ app_id: appId, title, turns: 0, created_at: now, updated_at: now }];
  });


  const burrLink =
    info?.burr_app_url_template && currentId && current?.created
      ? burrRunUrl(info.burr_app_url_template, info.project_id, currentId)
      : null;
  const ready = Boolean(projectId);

  let body: React.ReactNode;
  if (!ready) {
    body = infoError ? (
      <div className="center-panel">
        <FailureNotice error={infoError} onRetry={retryInfo} />
      </div>
    ) : (
      <div className="center-panel muted" role="status">
        Connecting to the server…
      </div>
    );
  } else if (route.name === "notFound") {
    body = (
      <div className="center-panel">
        <h2>Page not found</h2>
        <p>
          <a href="/" onClick={(e) => (e.preventDefault(), newChat())}>
            Start a new chat
          </a>
        </p>
      </div>
    );
  } else if (current?.history === "missing") {
    body = (
      <div className="center-panel" data-testid="conversation-missing">
        <h2>Conversation not found</h2>
        <p>It may have been deleted.</p>
        <button type="button" className="button primary" onClick={newChat}>
          Start a new chat
        </button>
      </div>
    );
  } else if (current?.history === "failed" && current.historyError && currentId) {
    body = (
      <div className="center-panel">
        <FailureNotice error={current.historyError} onRetry={() => void loadHistory(currentId)} />
      </div>
    );
  } else if (currentId && current?.history !== "loaded") {
    body = (
      <div className="center-panel muted" role="status">
        Loading conversation…
      </div>
    );
  } else {
    body = (
      <MessageList
        conversationKey={currentId ?? "home"}
        messages={current?.messages ?? []}
        onRetry={onRetry}
        locked={busy || switching}
        branches={branches}
        empty={<EmptyState onPick={send} disabled={busy} />}
      />
    );
  }

  const showComposer = ready && route.name !== "notFound" && current?.history !== "missing";

  return (
    <div className="app">
      <a className="skip-link" href="#composer-area">
        Skip to the message box
      </a>
      <Sidebar
        list={list}
        pending={pending}
        currentId={currentId}
        open={drawerOpen}
        burrUiUrl={info?.burr_ui_url ?? null}
        offlineModel={Boolean(info?.offline_model)}
        onSignOut={
          authRequired
            ? () => {
                // Start over: the reloaded page asks for a key again.
                void api.signOut().then(() => window.location.reload());
              }
            : null
        }
        onClose={closeDrawer}
        onNewChat={newChat}
        onDelete={deleteConversation}
      />
      {/* While the phone drawer is open, the page behind it is out of reach (focus and clicks). */}
      <main className="main" aria-labelledby="page-title" inert={drawerOpen}>
        <header className="topbar">
          <button
            type="button"
            ref={menuButton}
            className="icon-button menu-button"
            aria-label="Open conversations"
            aria-expanded={drawerOpen}
            aria-controls="sidebar"
            onClick={() => setDrawerOpen(true)}
          >
            <MenuIcon />
          </button>
          <h1 id="page-title" className="page-title" data-testid="page-title">
            {title}
          </h1>
          {info?.offline_model && (
            <span className="pill" title="Replies come from the embedded offline model">
              offline
            </span>
          )}
          {burrLink && (
            <a className="burr-run-link" href={burrLink} target="_blank" rel="noopener" data-testid="burr-link">
              <span className="long">View run in Burr</span>
              <span className="short">Burr</span>
              <ExternalIcon />
            </a>
          )}
        </header>

        {notice && (
          <div className="notice">
            <FailureNotice error={notice} />
            <button type="button" className="button quiet small" onClick={() => setNotice(null)}>
              Dismiss
            </button>
          </div>
        )}

        {body}

        <div id="composer-area" tabIndex={-1}>
          {showComposer && (
            <Composer
              key={currentId ?? "home"}
              busy={busy}
              disabled={!ready || switching || (currentId !== null && current?.history !== "loaded")}
              onSend={send}
              onStop={() => currentId && stop(currentId)}
            />
          )}
        </div>
        <div className="sr-only" role="status" aria-live="polite">
          {announcement(current)}
        </div>
      </main>
      {keyPrompt && (
        <ApiKeyDialog
          reason={keyPrompt.reason}
          onSubmit={(key) => {
            keyPrompt.resolve(key);
            setKeyPrompt(null);
          }}
          onCancel={() => {
            keyPrompt.resolve(null);
            setKeyPrompt(null);
          }}
        />
      )}
    </div>
  );
}
