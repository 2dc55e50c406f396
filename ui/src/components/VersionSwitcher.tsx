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

const STEPS = [
  { by: -1, label: "Previous version", testId: "branch-prev", Icon: ChevronLeftIcon },
  { by: 1, label: "Next version", testId: "branch-next", Icon: ChevronRightIcon },
];

export function VersionSwitcher({ mark: { version, versions, app_id }, locked, onSwitch, burrUrl }: Props) {
  const step = ({ by, label, testId, Icon }: (typeof STEPS)[number]) => {
    const blocked = locked || version + by < 0 || version + by >= versions;
    return (
      <button
        type="button"
        className="version-step"
        aria-label={label}
        aria-disabled={blocked}
        onClick={() => blocked || onSwitch(version + by)}
        data-testid={testId}
      >
        <Icon />
      </button>
    );
  };
  return (
    <div className="versions" role="group" aria-label="Versions" data-testid="branch-switcher">
      {step(STEPS[0]!)}
      <span className="version-position" aria-live="polite">
        <span aria-hidden="true" data-testid="branch-position">
          {version + 1} / {versions}
        </span>
        <span className="sr-only">
          Version {version + 1} of {versions}
        </span>
      </span>
      {step(STEPS[1]!)}
      {burrUrl && (
        <a className="version-burr-link" href={burrUrl} target="_blank" rel="noopener" title={`Burr app ${app_id}`} data-testid="branch-burr-link">
          View in Burr
          <ExternalIcon />
        </a>
      )}
    </div>
  );
}
