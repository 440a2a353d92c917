import { useEffect, useRef, type ReactNode } from 'react';
import { ProblemView } from './ProblemView';

/**
 * A modal question before something that cannot be undone. Escape or "Keep it" cancels; the
 * confirm button names what it does, so a keyboard user hears it before pressing it.
 */
export function ConfirmDialog({
  open,
  title,
  confirmLabel,
  busy,
  error,
  onConfirm,
  onCancel,
  children,
}: {
  open: boolean;
  title: string;
  confirmLabel: string;
  busy?: boolean;
  error?: unknown;
  onConfirm: () => void;
  onCancel: () => void;
  children: ReactNode;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = dialog.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={dialog} className="confirm" aria-labelledby="confirm-title" onClose={onCancel}>
      {open && (
        <>
          <h2 id="confirm-title">{title}</h2>
          {children}
          <ProblemView error={error} />
          <div className="actions">
            <button type="button" className="danger" onClick={onConfirm} disabled={busy}>
              {busy ? 'Working…' : confirmLabel}
            </button>
            {/* autoFocus: the safe choice has the focus when the dialog opens. */}
            <button type="button" className="secondary" onClick={onCancel} autoFocus>
              Keep it
            </button>
          </div>
        </>
      )}
    </dialog>
  );
}
