import react from "@vitejs/plugin-react";
import type { Plugin } from "vite";
import { defineConfig } from "vitest/config";

/**
 * Defence in depth for the built page: scripts, styles and connections only from our own
 * origin, no plugins, images only local. The renderer already never turns model or user text
 * into HTML; this makes a slip there inert too. Build only: the dev server injects inline code.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
].join("; ");

function contentSecurityPolicy(): Plugin {
  return {
    name: "chatbot-csp",
    apply: "build",
    transformIndexHtml: (html) =>
      html.replace(
        '<meta charset="UTF-8" />',
        `<meta charset="UTF-8" />\n    <meta http-equiv="Content-Security-Policy" content="${CONTENT_SECURITY_POLICY}" />`,
      ),
  };
}

// During `npm run dev`, API and Burr UI calls go to a locally running `chatbot serve`.
const backend = process.env.CHATBOT_DEV_BACKEND ?? "http://127.0.0.1:7241";

export default defineConfig({
  // The server mounts ui/dist at the site root and falls back to index.html for client routes.
  base: "/",
  plugins: [react(), contentSecurityPolicy()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    // One same-origin bundle; most of it is highlight.js's common languages, which engineers'
    // code replies need, then the AI SDK's client (with the schemas it checks the stream's parts
    // against). Served locally, so the size is acceptable without code splitting.
    chunkSizeWarningLimit: 900,
  },
  server: {
    proxy: {
      "/api": { target: backend, changeOrigin: false },
      "/burr": { target: backend, changeOrigin: false },
    },
  },
  test: {
    include: ["src/**/*.test.{ts,tsx}"],
    // Pure modules run in node; component tests opt into jsdom with a file-level comment.
    environment: "node",
    restoreMocks: true,
  },
});
