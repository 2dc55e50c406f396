/**
 * Renders model text as GitHub-flavoured Markdown, safely: react-markdown builds React elements
 * (never innerHTML), raw HTML in the text is shown as text, and its default URL filter drops
 * `javascript:` and other unsafe links. Images become links so a reply cannot make the browser
 * fetch third-party URLs.
 *
 * remark-breaks is on for every reply, not only poems: the mode is known only at the end frame,
 * and turning single newlines into line breaks then would make a streamed poem jump from one
 * run-on paragraph to verses as it finishes. Chat replies use single newlines as line breaks.
 */
import { memo } from "react";
import ReactMarkdown, { type Components } from "react-markdown";
import rehypeHighlight from "rehype-highlight";
import remarkBreaks from "remark-breaks";
import remarkGfm from "remark-gfm";

import { CopyButton } from "./CopyButton";

interface HastLike {
  type: string;
  value?: string;
  tagName?: string;
  properties?: Record<string, unknown>;
  children?: HastLike[];
}

function hastText(node: HastLike | undefined): string {
  if (!node) return "";
  if (node.type === "text") return node.value ?? "";
  return (node.children ?? []).map(hastText).join("");
}

function codeLanguage(node: HastLike | undefined): string | null {
  const code = node?.children?.find((c) => c.tagName === "code");
  const classes = code?.properties?.className;
  if (!Array.isArray(classes)) return null;
  for (const c of classes) {
    if (typeof c === "string" && c.startsWith("language-")) return c.slice("language-".length);
  }
  return null;
}

const components: Components = {
  pre({ node, children }) {
    const language = codeLanguage(node as HastLike | undefined);
    return (
      <div className="code-block">
        <div className="code-header">
          <span className="code-language">{language ?? "code"}</span>
          <CopyButton text={() => hastText(node as HastLike | undefined)} label={language ? `Copy ${language} code` : "Copy code"} />
        </div>
        {/* Focusable: a long line scrolls sideways, with the keyboard too. */}
        <pre tabIndex={0}>{children}</pre>
      </div>
    );
  },
  a({ href, children }) {
    return (
      <a href={href} target="_blank" rel="noopener noreferrer nofollow">
        {children}
      </a>
    );
  },
  img({ src, alt }) {
    const text = alt || "image";
    if (typeof src !== "string" || !src) return <span>{text}</span>;
    return (
      <a href={src} target="_blank" rel="noopener noreferrer nofollow" className="image-link">
        [{text}]
      </a>
    );
  },
  table({ children }) {
    return (
      <div className="table-scroll">
        <table>{children}</table>
      </div>
    );
  },
};

const remarkPlugins = [remarkGfm, remarkBreaks];
const rehypePlugins = [rehypeHighlight];

export const Markdown = memo(function Markdown({ text }: { text: string }) {
  return (
    <ReactMarkdown remarkPlugins={remarkPlugins} rehypePlugins={rehypePlugins} components={components}>
      {text}
    </ReactMarkdown>
  );
});
