import { AppError } from '@atelier/kit';
import {
  costMicros,
  decodeCursor,
  encodeCursor,
  outcomeOf,
  outputUrls,
  pageSize,
  parsePrediction,
  toModelInput,
  validateParams,
  versionIdOf,
} from '../src/domain/prompt.rules';
import type { PromptParams } from '../src/domain/prompt.model';

const base: PromptParams = { prompt: 'a photo of TOK dog', negativePrompt: '', numOutputs: 1 };

describe('toModelInput', () => {
  it('maps every parameter to the model input under its name', () => {
    expect(
      toModelInput({
        prompt: 'p',
        negativePrompt: 'blurry',
        numOutputs: 4,
        width: 768,
        height: 512,
        numInferenceSteps: 30,
        guidanceScale: 3.5,
        seed: 42,
      }),
    ).toEqual({
      prompt: 'p',
      negative_prompt: 'blurry',
      num_outputs: 4,
      aspect_ratio: 'custom',
      width: 768,
      height: 512,
      num_inference_steps: 30,
      guidance_scale: 3.5,
      seed: 42,
    });
  });

  it('leaves unset parameters to the model and fills the missing side of a size', () => {
    expect(toModelInput(base)).toEqual({ prompt: base.prompt, num_outputs: 1 });
    expect(toModelInput({ ...base, width: 512 })).toEqual({
      prompt: base.prompt,
      num_outputs: 1,
      aspect_ratio: 'custom',
      width: 512,
      height: 1024,
    });
    // seed 0 and guidance 0 are values, not absences.
    expect(toModelInput({ ...base, seed: 0, guidanceScale: 0 })).toEqual({
      prompt: base.prompt,
      num_outputs: 1,
      seed: 0,
      guidance_scale: 0,
    });
  });
});

describe('validateParams', () => {
  it('lists every problem in one invalid_argument', () => {
    let caught: unknown;
    try {
      validateParams({
        prompt: '  ',
        negativePrompt: '',
        numOutputs: 5,
        width: 100,
        height: 513,
        numInferenceSteps: 0,
        guidanceScale: 31,
        seed: -1,
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(AppError);
    const e = caught as AppError;
    expect(e.code).toBe('invalid_argument');
    expect((e.extra?.errors as string[]).length).toBe(7);
  });

  it('accepts the limits and trims the prompt', () => {
    expect(
      validateParams({
        ...base,
        prompt: ' x ',
        numOutputs: 4,
        width: 2048,
        height: 256,
        numInferenceSteps: 100,
        guidanceScale: 30,
        seed: 2_147_483_647,
      }).prompt,
    ).toBe('x');
  });
});

describe('cursor', () => {
  it('round-trips (created_at to the microsecond, id) and refuses anything else', () => {
    const c = { createdKey: '2026-11-22T21:30:52.123456Z', id: '0b7f9c1e-4a2d-4c1b-9f0e-2d3c4b5a6e7f' };
    expect(decodeCursor(encodeCursor(c))).toEqual(c);
    expect(decodeCursor('')).toBeUndefined();
    for (const bad of [
      'nope',
      Buffer.from('[1,2]').toString('base64url'),
      Buffer.from(JSON.stringify(["2026-01-01'; DROP", c.id])).toString('base64url'),
    ]) {
      expect(() => decodeCursor(bad)).toThrow(/cursor/);
    }
  });
});

describe('predictions', () => {
  it('reads outcomes, outputs and predict_time from a Replicate prediction', () => {
    const p = parsePrediction({
      id: 'abc',
      status: 'succeeded',
      output: ['http://x/1.png', 'http://x/2.png'],
      metrics: { predict_time: 2.5 },
    })!;
    expect(outcomeOf(p)).toEqual({
      status: 'succeeded',
      outputs: ['http://x/1.png', 'http://x/2.png'],
      predictTime: 2.5,
    });
    expect(outcomeOf(parsePrediction({ id: 'a', status: 'failed', error: 'CUDA out of memory' })!)).toEqual(
      expect.objectContaining({
        status: 'failed',
        error: 'CUDA out of memory',
        predictTime: null,
        reason: 'replicate',
      }),
    );
    expect(outcomeOf(parsePrediction({ id: 'a', status: 'processing' })!)).toBeUndefined();
    expect(parsePrediction({ id: 'a', status: 'weird' })).toBeUndefined();
    expect(outputUrls('http://x/1.png')).toEqual(['http://x/1.png']);
    expect(outputUrls(null)).toEqual([]);
  });

  it('estimates cost from predict_time and the configured price', () => {
    expect(costMicros(2.5, 1400)).toBe(3500);
    expect(costMicros(null, 1400)).toBeNull();
  });

  it('runs on the bare version id', () => {
    expect(versionIdOf('atelier/model-1:abc123')).toBe('abc123');
    expect(versionIdOf('abc123')).toBe('abc123');
  });

  it('caps the page size at 100', () => {
    expect(pageSize(0)).toBe(20);
    expect(pageSize(100)).toBe(100);
    expect(() => pageSize(101)).toThrow(/limit/);
  });
});
