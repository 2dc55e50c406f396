/**
 * Renders model text as GitHub-flavoured Markdown, safely: react-markdown builds React elements
 * (never innerHTML), raw HTML in the text is shown as text, and its default URL filter drops
 * `javascript:` and other unsafe links. Images become links so a reply cannot make the browser
 * fetch third-party URLs.
 *
 * remark-breaks is on for every reply, not only poems: chat replies use single newlines as
 * line breaks too.
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
  properties?: { className?: unknown };
  children?: HastLike[];
}

const hastText = (node: HastLike | undefined): string =>
  node?.type === "text" ? (node.value ?? "") : (node?.children ?? []).map(hastText).join("");

function codeLanguage(node: HastLike | undefined): string | null {
  const classes = node?.children?.find((c) => c.tagName === "code")?.properties?.className;
  const language = Array.isArray(classes) ? classes.find((c) => String(c).startsWith("language-")) : undefined;
  return language ? String(language).slice("language-".length) : null;
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
