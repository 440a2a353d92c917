import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, call } from '../api/client';
import { ImageGrid } from './Gallery';
import { ProblemView } from './ProblemView';
import { isRunning, Status } from './Status';

type Body = {
  prompt: string;
  negative_prompt?: string;
  num_outputs: number;
  width?: number;
  height?: number;
  num_inference_steps?: number;
  guidance_scale?: number;
  seed?: number;
};

const number = (value: string) => (value.trim() === '' ? undefined : Number(value));

/** Every parameter POST /api/v1/prompts/create takes; empty optional fields are left to the model. */
export function PromptForm({
  versionId,
  remaining,
  makeKey,
}: {
  versionId: string;
  remaining: number;
  makeKey: () => string;
}) {
  const queries = useQueryClient();
  const [fields, setFields] = useState({
    prompt: '',
    negative_prompt: '',
    num_outputs: '1',
    width: '',
    height: '',
    num_inference_steps: '',
    guidance_scale: '',
    seed: '',
  });
  const [promptId, setPromptId] = useState<string>();
  const set = (name: keyof typeof fields) => (e: { target: { value: string } }) =>
    setFields((f) => ({ ...f, [name]: e.target.value }));

  const create = useMutation({
    mutationFn: (body: Body) =>
      call(
        api.POST('/api/v1/prompts/create/{version_id}', {
          params: { path: { version_id: versionId }, header: { 'idempotency-key': makeKey() } },
          body,
        }),
      ),
    onSuccess: (accepted) => {
      setPromptId(accepted.prompt_id);
      void queries.invalidateQueries({ queryKey: ['version', versionId] });
    },
  });
  const prompt = useQuery({
    queryKey: ['prompt', promptId],
    enabled: Boolean(promptId),
    queryFn: () =>
      call(api.GET('/api/v1/prompts/{prompt_id}', { params: { path: { prompt_id: promptId! } } })),
    refetchInterval: (q) => (q.state.data && !isRunning(q.state.data.status) ? false : 1000),
  });
  const done = prompt.data && !isRunning(prompt.data.status);
  const [settled, setSettled] = useState<string>();
  if (done && settled !== promptId) {
    setSettled(promptId);
    void queries.invalidateQueries({ queryKey: ['version', versionId] });
    void queries.invalidateQueries({ queryKey: ['gallery', versionId] });
  }
  const cancel = useMutation({
    mutationFn: () =>
      call(api.POST('/api/v1/prompts/{prompt_id}/cancel', { params: { path: { prompt_id: promptId! } } })),
    onSettled: () => queries.invalidateQueries({ queryKey: ['prompt', promptId] }),
  });

  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate({
      prompt: fields.prompt,
      ...(fields.negative_prompt.trim() ? { negative_prompt: fields.negative_prompt } : {}),
      num_outputs: Number(fields.num_outputs),
      width: number(fields.width),
      height: number(fields.height),
      num_inference_steps: number(fields.num_inference_steps),
      guidance_scale: number(fields.guidance_scale),
      seed: number(fields.seed),
    });
  };

  return (
    <section className="card" aria-labelledby="prompt-title">
      <h2 id="prompt-title">Generate images</h2>
      <form onSubmit={submit} className="prompt-form">
        <div className="wide">
          <label htmlFor="prompt">Prompt</label>
          <textarea
            id="prompt"
            required
            maxLength={2000}
            rows={3}
            value={fields.prompt}
            onChange={set('prompt')}
          />
        </div>
        <div className="wide">
          <label htmlFor="negative_prompt">Negative prompt</label>
          <textarea
            id="negative_prompt"
            maxLength={2000}
            rows={2}
            value={fields.negative_prompt}
            onChange={set('negative_prompt')}
          />
        </div>
        <div>
          <label htmlFor="num_outputs">Images</label>
          <select id="num_outputs" value={fields.num_outputs} onChange={set('num_outputs')}>
            {[1, 2, 3, 4].map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="width">Width</label>
          <input
            id="width"
            type="number"
            min={256}
            max={2048}
            step={8}
            value={fields.width}
            onChange={set('width')}
          />
        </div>
        <div>
          <label htmlFor="height">Height</label>
          <input
            id="height"
            type="number"
            min={256}
            max={2048}
            step={8}
            value={fields.height}
            onChange={set('height')}
          />
        </div>
        <div>
          <label htmlFor="num_inference_steps">Steps</label>
          <input
            id="num_inference_steps"
            type="number"
            min={1}
            max={100}
            value={fields.num_inference_steps}
            onChange={set('num_inference_steps')}
          />
        </div>
        <div>
          <label htmlFor="guidance_scale">Guidance scale</label>
          <input
            id="guidance_scale"
            type="number"
            min={0}
            max={30}
            step={0.1}
            value={fields.guidance_scale}
            onChange={set('guidance_scale')}
          />
        </div>
        <div>
          <label htmlFor="seed">Seed</label>
          <input
            id="seed"
            type="number"
            min={0}
            max={2147483647}
            value={fields.seed}
            onChange={set('seed')}
          />
        </div>
        <div className="wide actions">
          <button type="submit" disabled={create.isPending || remaining < Number(fields.num_outputs)}>
            Generate
          </button>
          <span className="muted">{remaining} images left</span>
        </div>
      </form>
      <ProblemView error={create.error} />
      {prompt.data && (
        <div className="result" aria-live="polite">
          <p>
            Prompt <Status status={prompt.data.status} />
            {isRunning(prompt.data.status) && (
              <button
                type="button"
                className="secondary"
                onClick={() => cancel.mutate()}
                disabled={cancel.isPending}
              >
                Cancel
              </button>
            )}
          </p>
          {prompt.data.error && <p className="problem">{prompt.data.error}</p>}
          <ImageGrid prompts={[prompt.data]} />
        </div>
      )}
      <ProblemView error={prompt.error ?? cancel.error} />
    </section>
  );
}
