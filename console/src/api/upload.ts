import { asProblem, ProblemError, session } from './client';

export interface PhotoProblem {
  file: string;
  index: number;
  code: string;
  detail: string;
}

export interface TrainAccepted {
  version_id: string;
  status: string;
  images: number;
}

/**
 * The training upload, by XMLHttpRequest rather than fetch: only XHR reports upload progress.
 * The form is the one gateway/openapi.json documents for POST /api/v1/versions/train/{payment_id}.
 */
export function uploadTraining(
  paymentId: string,
  form: { photos: File[]; className: string; triggerWord: string },
  idempotencyKey: string,
  onProgress: (fraction: number) => void,
): Promise<TrainAccepted> {
  const body = new FormData();
  // Text fields first: the gateway reads them before the photos stream through.
  body.append('class', form.className);
  if (form.triggerWord) body.append('trigger_word', form.triggerWord);
  for (const photo of form.photos) body.append('images', photo, photo.name);

  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/v1/versions/train/${encodeURIComponent(paymentId)}`);
    const key = session.key();
    if (key) xhr.setRequestHeader('Authorization', `Bearer ${key}`);
    xhr.setRequestHeader('Idempotency-Key', idempotencyKey);
    xhr.responseType = 'json';
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      if (xhr.status === 202) return resolve(xhr.response as TrainAccepted);
      if (xhr.status === 401) window.dispatchEvent(new Event('atelier:unauthorized'));
      reject(new ProblemError(asProblem(xhr.response, xhr.status)));
    };
    xhr.onerror = () => reject(new Error('the upload was interrupted'));
    xhr.send(body);
  });
}
