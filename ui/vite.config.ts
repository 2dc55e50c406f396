import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// During `npm run dev`, API and Burr UI calls go to a locally running `chatbot serve`.
const backend = process.env.CHATBOT_DEV_BACKEND ?? "http://127.0.0.1:7241";

export default defineConfig({
  // The server mounts ui/dist at the site root and falls back to index.html for client routes.
  base: "/",
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
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
