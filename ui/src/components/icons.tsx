/** Small inline icons (no icon font, nothing fetched). Decorative: buttons carry the labels. */
const icon = (size: number, ...paths: string[]) =>
  function Icon() {
    return (
      <svg
        width={size}
        height={size}
        viewBox="0 0 24 24"
        fill="none"
        stroke="currentColor"
        strokeWidth={2}
        strokeLinecap="round"
        strokeLinejoin="round"
        aria-hidden="true"
        focusable="false"
      >
        {paths.map((d) => (
          <path key={d} d={d} />
        ))}
      </svg>
    );
  };

export const PlusIcon = icon(18, "M12 5v14M5 12h14");
export const TrashIcon = icon(16, "M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3");
export const MenuIcon = icon(18, "M4 6h16M4 12h16M4 18h16");
export const CloseIcon = icon(18, "M6 6l12 12M18 6L6 18");
export const SendIcon = icon(18, "M12 19V5M5 12l7-7 7 7");
export const StopIcon = () => (
  <svg width={14} height={14} viewBox="0 0 14 14" aria-hidden="true" focusable="false">
    <rect x="1" y="1" width="12" height="12" rx="2" fill="currentColor" />
  </svg>
);
export const CopyIcon = icon(15, "M11 9h7a2 2 0 0 1 2 2v7a2 2 0 0 1-2 2h-7a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2z", "M5 15V5a2 2 0 0 1 2-2h8");
export const CheckIcon = icon(15, "M5 12l5 5 9-10");
export const ExternalIcon = icon(14, "M14 4h6v6M20 4l-9 9M18 14v5a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1h5");
export const ArrowDownIcon = icon(18, "M12 5v14M5 12l7 7 7-7");
export const RetryIcon = icon(15, "M4 4v6h6M20 20v-6h-6", "M5.5 15a7 7 0 0 0 12.2 2.2M18.5 9A7 7 0 0 0 6.3 6.8");
export const EditIcon = icon(15, "M4 20h4L19 9l-4-4L4 16v4zM13.5 6.5l4 4");
export const ChevronLeftIcon = icon(16, "M15 6l-6 6 6 6");
export const ChevronRightIcon = icon(16, "M9 6l6 6-6 6");
