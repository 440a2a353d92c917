import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, call, type Version } from '../api/client';
import { navigate } from '../router';
import { ConfirmDialog } from './ConfirmDialog';

/** Deletes a model after a confirmation that names it and says everything that goes with it. */
export function DeleteModel({ version: v }: { version: Version }) {
  const queries = useQueryClient();
  const [confirming, setConfirming] = useState(false);
  const name = v.trigger_word || v.class;
  const remove = useMutation({
    mutationFn: () =>
      call(api.DELETE('/api/v1/versions/{version_id}', { params: { path: { version_id: v.version_id } } })),
    onSuccess: () => {
      // The version answers 410 from now on: drop what was cached of it before leaving its page.
      queries.removeQueries({ queryKey: ['version', v.version_id] });
      queries.removeQueries({ queryKey: ['gallery', v.version_id] });
      void queries.invalidateQueries({ queryKey: ['versions'] });
      void queries.invalidateQueries({ queryKey: ['account'] });
      navigate(`/models?deleted=${encodeURIComponent(name)}`);
    },
  });
  return (
    <section className="card" aria-labelledby="delete-title">
      <h2 id="delete-title">Delete this model</h2>
      <p className="muted">
        Deleting stops a training under way and erases the model, its photos and every image made with it.
      </p>
      <button type="button" className="danger" onClick={() => setConfirming(true)}>
        Delete model
      </button>
      <ConfirmDialog
        open={confirming}
        title={`Delete ${name}?`}
        confirmLabel={`Delete ${name}`}
        busy={remove.isPending}
        error={remove.error}
        onConfirm={() => remove.mutate()}
        onCancel={() => {
          setConfirming(false);
          remove.reset();
        }}
      >
        <p>This deletes, for good:</p>
        <ul>
          <li>
            the model <strong>{name}</strong> ({v.class}), id <span className="mono">{v.version_id}</span>,
            here and at Replicate;
          </li>
          <li>its training photos;</li>
          <li>every image generated with it ({v.images.used} so far) and the prompts that made them;</li>
          <li>its {v.images.remaining} unused image credits.</li>
        </ul>
      </ConfirmDialog>
    </section>
  );
}
