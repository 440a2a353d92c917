import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { api, call, type Prompt } from '../api/client';
import { ProblemView } from './ProblemView';

const PAGE = 6;

/** Completed prompts, newest first, a page at a time on the API's keyset cursor. */
export function Gallery({ versionId }: { versionId: string }) {
  // The cursors of the pages before this one, so "Newer" walks back without offsets.
  const [cursors, setCursors] = useState<Array<string | undefined>>([undefined]);
  const cursor = cursors[cursors.length - 1];
  const page = useQuery({
    queryKey: ['gallery', versionId, cursor],
    queryFn: () =>
      call(
        api.GET('/api/v1/prompts/list/{version_id}', {
          params: { path: { version_id: versionId }, query: { limit: PAGE, ...(cursor ? { cursor } : {}) } },
        }),
      ),
    placeholderData: keepPreviousData,
  });
  const next = page.data?.next_cursor;
  return (
    <section className="card" aria-labelledby="gallery-title">
      <h2 id="gallery-title">Gallery</h2>
      <ProblemView error={page.error} />
      {page.data && page.data.prompts.length === 0 && <p>No images yet.</p>}
      {page.data && <ImageGrid prompts={page.data.prompts} />}
      <nav className="pager" aria-label="Gallery pages">
        <button
          type="button"
          disabled={cursors.length <= 1}
          onClick={() => setCursors((c) => c.slice(0, -1))}
        >
          Newer
        </button>
        <span>Page {cursors.length}</span>
        <button type="button" disabled={!next} onClick={() => next && setCursors((c) => [...c, next])}>
          Older
        </button>
      </nav>
    </section>
  );
}

export function ImageGrid({ prompts }: { prompts: Prompt[] }) {
  const [open, setOpen] = useState<{ url: string; alt: string; width: number; height: number }>();
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    if (open) dialog.current?.showModal();
  }, [open]);
  return (
    <>
      <ul className="gallery">
        {prompts.flatMap((p) =>
          p.images.map((img, i) => {
            const alt = `${p.prompt} (${i + 1} of ${p.images.length})`;
            return (
              <li key={`${p.prompt_id}-${i}`}>
                <button
                  type="button"
                  className="thumb"
                  onClick={() => setOpen({ url: img.url, alt, width: img.width, height: img.height })}
                >
                  <img src={img.url} alt={alt} width={img.width} height={img.height} loading="lazy" />
                </button>
              </li>
            );
          }),
        )}
      </ul>
      <dialog ref={dialog} className="viewer" onClose={() => setOpen(undefined)} aria-label="Full-size image">
        {open && (
          <>
            <img src={open.url} alt={open.alt} width={open.width} height={open.height} />
            <div className="actions">
              <a className="button" href={open.url} download target="_blank" rel="noreferrer">
                Download
              </a>
              <button type="button" className="secondary" onClick={() => dialog.current?.close()}>
                Close
              </button>
            </div>
          </>
        )}
      </dialog>
    </>
  );
}
