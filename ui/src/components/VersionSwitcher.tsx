/**
 * `< i / n >` on a message where versions meet (an edit or a regeneration made a branch), and
 * the link to the shown version's run in Burr's tracking UI, where its parent is shown.
 *
 * At either end, and while the conversation is busy, the arrows are aria-disabled rather than
 * disabled: a button that becomes disabled loses the keyboard focus, and after a switch the
 * focus stays where the user pressed.
 */
import type { BranchMark } from "../lib/protocol";
import { ChevronLeftIcon, ChevronRightIcon, ExternalIcon } from "./icons";

interface Props {
  mark: BranchMark;
  /** A reply streams or a switch is on its way: nothing to switch now. */
  locked: boolean;
  onSwitch: (version: number) => void;
  /** The shown version's run in Burr's UI; null when the server has no Burr UI. */
  burrUrl: string | null;
}

export function VersionSwitcher({ mark, locked, onSwitch, burrUrl }: Props) {
  const { version, versions } = mark;
  const step = (to: number) => {
    if (!locked && to >= 0 && to < versions) onSwitch(to);
  };
  const atStart = locked || version === 0;
  const atEnd = locked || version === versions - 1;
  return (
    <div className="versions" role="group" aria-label="Versions" data-testid="branch-switcher">
      <button
        type="button"
        className="version-step"
        aria-label="Previous version"
        aria-disabled={atStart}
        onClick={() => step(version - 1)}
        data-testid="branch-prev"
      >
        <ChevronLeftIcon />
      </button>
      <span className="version-position" aria-live="polite">
        <span aria-hidden="true" data-testid="branch-position">
          {version + 1} / {versions}
        </span>
        <span className="sr-only">
          Version {version + 1} of {versions}
        </span>
      </span>
      <button
        type="button"
        className="version-step"
        aria-label="Next version"
        aria-disabled={atEnd}
        onClick={() => step(version + 1)}
        data-testid="branch-next"
      >
        <ChevronRightIcon />
      </button>
      {burrUrl && (
        <a
          className="version-burr-link"
          href={burrUrl}
          target="_blank"
          rel="noopener"
          title={`Burr app ${mark.app_id}`}
          data-testid="branch-burr-link"
        >
          View in Burr
          <ExternalIcon />
        </a>
      )}
    </div>
  );
}
