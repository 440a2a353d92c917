import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useMemo, useRef, useState, type DragEvent, type FormEvent } from 'react';
import { api, call, idempotencyKey, ProblemError } from '../api/client';
import { uploadTraining, type PhotoProblem } from '../api/upload';
import { ProblemView } from '../components/ProblemView';
import { navigate } from '../router';

interface Photo {
  id: string;
  file: File;
  url: string;
}

const CLASSES = ['man', 'woman', 'person', 'dog', 'cat', 'product'];

export function TrainScreen({ paymentId }: { paymentId: string }) {
  const payment = useQuery({
    queryKey: ['payment', paymentId],
    queryFn: () =>
      call(api.GET('/api/v1/payments/{payment_id}', { params: { path: { payment_id: paymentId } } })),
  });
  const plans = useQuery({ queryKey: ['plans'], queryFn: () => call(api.GET('/api/v1/plans')) });
  const plan = plans.data?.plans.find((p) => p.id === payment.data?.plan_id);
  const min = plan?.min_images ?? 5;
  const max = plan?.max_images ?? 30;

  const [photos, setPhotos] = useState<Photo[]>([]);
  const [className, setClassName] = useState('');
  const [triggerWord, setTriggerWord] = useState('');
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<unknown>();
  // Problems are tied to the photos that were sent, so removing or adding one clears only its own.
  const [problems, setProblems] = useState<Map<string, PhotoProblem[]>>(new Map());
  const [general, setGeneral] = useState<PhotoProblem[]>([]);
  const [dragging, setDragging] = useState(false);
  const queries = useQueryClient();

  const current = useRef(photos);
  current.current = photos;
  useEffect(() => () => current.current.forEach((p) => URL.revokeObjectURL(p.url)), []);

  const add = (files: FileList | File[]) => {
    const next = [...files].map((file) => ({
      id: crypto.randomUUID(),
      file,
      url: URL.createObjectURL(file),
    }));
    setPhotos((current) => [...current, ...next]);
    setGeneral([]);
  };
  const removePhoto = (id: string) => {
    setPhotos((current) => {
      const gone = current.find((p) => p.id === id);
      if (gone) URL.revokeObjectURL(gone.url);
      return current.filter((p) => p.id !== id);
    });
    setProblems((current) => {
      const next = new Map(current);
      next.delete(id);
      return next;
    });
    setGeneral([]);
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    add(e.dataTransfer.files);
  };

  const countProblem =
    photos.length < min
      ? `Add at least ${min - photos.length} more photo(s).`
      : photos.length > max
        ? `Remove ${photos.length - max} photo(s).`
        : null;
  const problemCount = useMemo(
    () => [...problems.values()].reduce((n, list) => n + list.length, 0),
    [problems],
  );

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(undefined);
    setProblems(new Map());
    setGeneral([]);
    setProgress(0);
    const sent = photos;
    try {
      const accepted = await uploadTraining(
        paymentId,
        { photos: sent.map((p) => p.file), className: className.trim(), triggerWord: triggerWord.trim() },
        idempotencyKey(),
        setProgress,
      );
      void queries.invalidateQueries({ queryKey: ['versions'] });
      void queries.invalidateQueries({ queryKey: ['payment', paymentId] });
      navigate(`/models/${accepted.version_id}`);
    } catch (err) {
      setProgress(null);
      const list =
        err instanceof ProblemError ? (err.problem.errors as PhotoProblem[] | undefined) : undefined;
      if (err instanceof ProblemError && err.problem.status === 422 && list?.length) {
        const byPhoto = new Map<string, PhotoProblem[]>();
        const rest: PhotoProblem[] = [];
        for (const problem of list) {
          const photo = sent[problem.index];
          if (photo && problem.file === photo.file.name)
            byPhoto.set(photo.id, [...(byPhoto.get(photo.id) ?? []), problem]);
          else rest.push(problem);
        }
        setProblems(byPhoto);
        setGeneral(rest);
      }
      setError(err);
    }
  };

  if (payment.error) return <ProblemView error={payment.error} />;
  if (payment.data && (payment.data.status !== 'paid' || payment.data.version_id)) {
    return (
      <>
        <h1>Train a model</h1>
        <p>
          This payment cannot train a model (
          {payment.data.version_id ? 'it already trained one' : `it is ${payment.data.status}`}).
        </p>
      </>
    );
  }

  const uploading = progress !== null;
  return (
    <>
      <h1>Train a model</h1>
      <form onSubmit={submit} className="wizard">
        <section className="card">
          <h2>1. Photos</h2>
          <p>
            {min}–{max} photos of one subject: JPEG, PNG, WebP, HEIC or AVIF, each side at least 512 px.
          </p>
          <div
            className={`dropzone${dragging ? ' dragging' : ''}`}
            onDragOver={(e) => {
              e.preventDefault();
              setDragging(true);
            }}
            onDragLeave={() => setDragging(false)}
            onDrop={onDrop}
          >
            <p>Drop photos here, or</p>
            <input
              id="photos"
              className="visually-hidden"
              type="file"
              multiple
              accept="image/jpeg,image/png,image/webp,image/heic,image/heif,image/avif"
              onChange={(e) => {
                if (e.target.files) add(e.target.files);
                e.target.value = '';
              }}
            />
            <label className="button" htmlFor="photos">
              Choose photos
            </label>
          </div>
          <p aria-live="polite" className={countProblem ? 'hint warn' : 'hint'}>
            {photos.length} photo(s) selected. {countProblem}
          </p>
          {problemCount > 0 && (
            <p className="hint warn" role="status">
              {problemCount} problem(s) on {problems.size} photo(s): remove or replace them.
            </p>
          )}
          <ul className="photos" aria-label="Selected photos">
            {photos.map((photo, i) => {
              const own = problems.get(photo.id);
              return (
                <li key={photo.id} className={own ? 'photo bad' : 'photo'} data-file={photo.file.name}>
                  <img src={photo.url} alt={`Photo ${i + 1}: ${photo.file.name}`} />
                  {own && (
                    <ul className="photo-problems" aria-label={`Problems with ${photo.file.name}`}>
                      {own.map((p) => (
                        <li key={p.code}>
                          <strong>{p.code.replace(/_/g, ' ')}</strong>: {p.detail}
                        </li>
                      ))}
                    </ul>
                  )}
                  <button
                    type="button"
                    className="remove"
                    onClick={() => removePhoto(photo.id)}
                    disabled={uploading}
                  >
                    Remove <span className="visually-hidden">{photo.file.name}</span>
                  </button>
                </li>
              );
            })}
          </ul>
          {general.length > 0 && (
            <ul className="problem" role="alert">
              {general.map((p) => (
                <li key={`${p.code}-${p.index}`}>{p.detail}</li>
              ))}
            </ul>
          )}
        </section>
        <section className="card">
          <h2>2. Subject</h2>
          <label htmlFor="class">Class (what the photos show)</label>
          <input
            id="class"
            list="classes"
            required
            value={className}
            onChange={(e) => setClassName(e.target.value)}
            placeholder="man, woman, dog…"
          />
          <datalist id="classes">
            {CLASSES.map((c) => (
              <option key={c} value={c} />
            ))}
          </datalist>
          <label htmlFor="trigger">Trigger word (optional)</label>
          <input
            id="trigger"
            value={triggerWord}
            onChange={(e) => setTriggerWord(e.target.value)}
            pattern="[A-Za-z0-9_]{2,32}"
            aria-describedby="trigger-hint"
          />
          <p id="trigger-hint" className="hint">
            2–32 letters, digits or _. Use it in prompts to mean your subject.
          </p>
        </section>
        <section className="card">
          <h2>3. Upload and train</h2>
          {uploading && (
            <>
              <label htmlFor="upload-progress">Uploading {Math.round((progress ?? 0) * 100)}%</label>
              <progress id="upload-progress" max={1} value={progress ?? 0} />
            </>
          )}
          <button type="submit" disabled={uploading || Boolean(countProblem) || !className.trim()}>
            {uploading ? 'Uploading…' : `Upload ${photos.length} photo(s) and train`}
          </button>
          <ProblemView error={error} />
        </section>
      </form>
    </>
  );
}
