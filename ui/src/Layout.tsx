/**
 * The page around every route: the sidebar's conversation list (a drawer on phones), the top
 * bar with the title and the shown branch's run in Burr, the skip link.
 */
import { useInfiniteQuery, useMutation, useQuery } from "@tanstack/react-query";
import { type ReactNode, useCallback, useEffect, useRef, useState } from "react";

import { ExternalIcon, MenuIcon } from "./components/icons";
import { FailureNotice, Notice } from "./components/MessageView";
import { Sidebar } from "./components/Sidebar";
import { signOut } from "./lib/api";
import { forgetChat } from "./lib/chats";
import { describeFailure } from "./lib/messages";
import { conversationsQuery, deleteConversation, infoQuery, refreshConversations } from "./lib/queries";
import { navigate } from "./lib/router";

interface Props {
  currentId?: string | null;
  /** The title when the conversation list has none for the current conversation. */
  title: string;
  /** The shown branch's run in Burr's tracking UI. */
  burrLink?: string | null;
  /** The prompt box, in the place the skip link goes to. */
  composer?: ReactNode;
  children: ReactNode;
}

export function Layout({ currentId = null, title: fallback, burrLink, composer, children }: Props) {
  const { data: info } = useQuery(infoQuery);
  const list = useInfiniteQuery({ ...conversationsQuery(info?.project_id ?? ""), enabled: Boolean(info) });
  const items = list.data?.pages.flatMap((page) => page.items) ?? [];
  const title = items.find((c) => c.app_id === currentId)?.title || fallback;
  const [drawerOpen, setDrawerOpen] = useState(false);
  const menuButton = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    document.title = `${title} · Burr chatbot`;
  }, [title]);

  const remove = useMutation({
    mutationFn: async (appId: string) => {
      forgetChat(appId);
      // The server stops a reply still being written in the conversation before deleting it.
      await deleteConversation(info!.project_id, appId);
      if (appId === currentId) navigate("/", { replace: true });
    },
    onSettled: () => void refreshConversations(),
  });

  const closeDrawer = useCallback(() => {
    setDrawerOpen(false);
    // Give focus back to the button that opened the drawer, if focus was inside it.
    if (document.activeElement?.closest("#sidebar")) requestAnimationFrame(() => menuButton.current?.focus());
  }, []);

  // The drawer exists only at phone width: leaving it (rotation, resize) closes it.
  useEffect(() => {
    const wide = window.matchMedia?.("(min-width: 769px)");
    const onChange = () => wide?.matches && setDrawerOpen(false);
    wide?.addEventListener("change", onChange);
    return () => wide?.removeEventListener("change", onChange);
  }, []);

  return (
    <div className="app">
      <a className="skip-link" href="#composer-area">
        Skip to the message box
      </a>
      <Sidebar
        info={info}
        list={list}
        items={items}
        currentId={currentId}
        open={drawerOpen}
        // Start over: the reloaded page asks for a key again (or signs in again).
        onSignOut={() => void signOut().then((next) => (next ? window.location.assign(next) : window.location.reload()))}
        onClose={closeDrawer}
        onNewChat={() => (navigate("/"), setDrawerOpen(false))}
        onDelete={(appId) => remove.mutateAsync(appId).catch(() => undefined)}
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
        {remove.error && <Notice error={describeFailure(remove.error)} onDismiss={remove.reset} />}
        {children}
        <div id="composer-area" tabIndex={-1}>
          {composer}
        </div>
      </main>
    </div>
  );
}

/** Where a page's data is still coming: its failure with a Retry, or what it waits for. */
export function Pending({ query, waiting }: { query: { error: unknown; refetch: () => unknown }; waiting: string }) {
  return query.error ? (
    <div className="center-panel">
      <FailureNotice error={describeFailure(query.error)} onRetry={() => void query.refetch()} />
    </div>
  ) : (
    <div className="center-panel muted" role="status">
      {waiting}
    </div>
  );
}
