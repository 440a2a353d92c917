import { useState } from 'react';

/** A signing secret the API shows once: visible until dismissed, never kept anywhere. */
export function SecretOnce({ title, secret, onDone }: { title: string; secret: string; onDone: () => void }) {
  const [copied, setCopied] = useState<'yes' | 'no'>();
  const copy = () =>
    navigator.clipboard
      .writeText(secret)
      .then(() => setCopied('yes'))
      // The clipboard needs a secure context; over plain http the user selects the text instead.
      .catch(() => setCopied('no'));
  return (
    <section className="card secret" aria-labelledby="secret-title" role="status">
      <h2 id="secret-title">{title}</h2>
      <p>Copy this signing secret now: it is shown only once.</p>
      <p className="mono" data-testid="secret">
        {secret}
      </p>
      <div className="actions">
        <button type="button" onClick={copy}>
          Copy secret
        </button>
        <button type="button" className="secondary" onClick={onDone}>
          I have saved it
        </button>
        {copied === 'yes' && <span>Copied.</span>}
        {copied === 'no' && <span>Could not copy: select the text and copy it.</span>}
      </div>
    </section>
  );
}
