/**
 * `/`: a new conversation. Its id is made here; the first prompt creates it on the server, and
 * the page moves to `/c/<id>`, where the reply streams on.
 */
import { Composer } from "../components/Composer";
import { EmptyState } from "../components/EmptyState";
import { MessageList } from "../components/MessageList";
import { Layout } from "../Layout";
import { chatFor } from "../lib/chats";
import { newId } from "../lib/ids";
import type { Info } from "../lib/protocol";
import { listStarted } from "../lib/queries";
import { conversationPath, navigate } from "../lib/router";
import { shortTitle } from "./ConversationPage";

export function HomePage({ info }: { info: Info }) {
  const send = (prompt: string) => {
    const appId = newId();
    const now = new Date().toISOString();
    listStarted(info.project_id, { app_id: appId, title: shortTitle(prompt), turns: 0, created_at: now, updated_at: now });
    void chatFor(info.project_id, appId, []).sendMessage({ text: prompt });
    navigate(conversationPath(appId));
  };
  return (
    <Layout title="New chat" composer={<Composer key="home" busy={false} onSend={send} onStop={() => undefined} />}>
      <MessageList conversationKey="home" messages={[]} empty={<EmptyState onPick={send} disabled={false} />} />
    </Layout>
  );
}
