import {
  VERSION_STATUSES,
  canTransition,
  destinationModel,
  isReady,
  parseTraining,
  planTransition,
  trainedVersionId,
  trainingSeconds,
  type VersionStatus,
} from '../src/domain/version.rules';

const now = new Date('2025-01-01T12:00:00Z');
const opts = { now, pricePerSecondMicros: 1000 };
const TERMINAL: VersionStatus[] = ['succeeded', 'failed', 'canceled'];

describe('transitions', () => {
  it('only ever move forwards: starting → processing → one terminal state', () => {
    const allowed = VERSION_STATUSES.flatMap((from) =>
      VERSION_STATUSES.filter((to) => canTransition(from, to)).map((to) => `${from}→${to}`),
    );
    expect(allowed.sort()).toEqual(
      [
        'starting→processing',
        'starting→succeeded',
        'starting→failed',
        'starting→canceled',
        'processing→succeeded',
        'processing→failed',
        'processing→canceled',
      ].sort(),
    );
  });

  it('ignore a report that would move backwards, repeat the state, or replace a terminal state', () => {
    for (const from of TERMINAL) {
      for (const to of VERSION_STATUSES)
        expect(planTransition({ status: from, started_at: now }, { status: to }, opts)).toBeNull();
    }
    expect(
      planTransition({ status: 'processing', started_at: now }, { status: 'starting' }, opts),
    ).toBeNull();
    expect(
      planTransition({ status: 'processing', started_at: now }, { status: 'processing' }, opts),
    ).toBeNull();
  });

  it('take Replicate timestamps, predict_time, cost and the pushed version id on success', () => {
    const started = new Date('2025-01-01T11:00:00Z');
    const completed = new Date('2025-01-01T11:20:00Z');
    const patch = planTransition(
      { status: 'processing', started_at: null },
      {
        status: 'succeeded',
        startedAt: started,
        completedAt: completed,
        predictTime: 1200.5,
        outputVersion: 'atelier/v-x:abcdef0123456789',
      },
      opts,
    );
    expect(patch).toEqual({
      status: 'succeeded',
      started_at: started,
      completed_at: completed,
      error: null,
      predict_time: 1200.5,
      cost_micros: 1_200_500,
      replicate_version: 'abcdef0123456789',
    });
  });

  it('keep the first started_at, fall back to now for missed steps, and give a failure a message', () => {
    const first = new Date('2025-01-01T10:00:00Z');
    expect(
      planTransition({ status: 'processing', started_at: first }, { status: 'failed', startedAt: now }, opts),
    ).toEqual(
      expect.objectContaining({
        started_at: first,
        completed_at: now,
        error: 'training failed at Replicate',
        predict_time: null,
        cost_micros: null,
      }),
    );
    expect(planTransition({ status: 'starting', started_at: null }, { status: 'processing' }, opts)).toEqual(
      expect.objectContaining({ status: 'processing', started_at: now, completed_at: null }),
    );
    expect(
      planTransition(
        { status: 'starting', started_at: null },
        { status: 'failed', error: 'CUDA out of memory' },
        opts,
      )?.error,
    ).toBe('CUDA out of memory');
    expect(
      planTransition({ status: 'processing', started_at: now }, { status: 'canceled', error: 'x' }, opts)
        ?.error,
    ).toBeNull();
  });

  it('never record a version id or a negative/NaN time from a malformed report', () => {
    const patch = planTransition(
      { status: 'processing', started_at: now },
      { status: 'succeeded', predictTime: Number.NaN, outputVersion: 'no version here!' },
      opts,
    );
    expect(patch).toEqual(
      expect.objectContaining({ predict_time: null, cost_micros: null, replicate_version: null }),
    );
    expect(trainedVersionId(undefined)).toBeNull();
    expect(trainedVersionId('abc12345')).toBe('abc12345');
  });
});

describe('version facts', () => {
  it('is ready only when succeeded and pushed', () => {
    expect(isReady({ status: 'succeeded', pushed_at: now })).toBe(true);
    expect(isReady({ status: 'succeeded', pushed_at: null })).toBe(false);
    expect(isReady({ status: 'processing', pushed_at: null })).toBe(false);
  });

  it('counts training seconds from predict_time, else from the timestamps', () => {
    expect(trainingSeconds({ predict_time: 12.5, started_at: null, completed_at: null })).toBe(12.5);
    expect(
      trainingSeconds({ predict_time: null, started_at: new Date(0), completed_at: new Date(90_000) }),
    ).toBe(90);
    expect(trainingSeconds({ predict_time: null, started_at: new Date(0), completed_at: null })).toBeNull();
  });

  it('names one valid Replicate model per version', () => {
    const model = destinationModel('atelier', '0B7F9C1E-4A2D-4C1B-9F0E-2D3C4B5A6E7F');
    expect(model).toBe('atelier/v-0b7f9c1e-4a2d-4c1b-9f0e-2d3c4b5a6e7f');
    expect(model.split('/')[1]).toMatch(/^[a-z0-9][a-z0-9._-]*$/);
  });

  it('reads Replicate training objects and refuses anything else', () => {
    expect(
      parseTraining({
        id: 't1',
        status: 'succeeded',
        started_at: '2025-01-01T00:00:00Z',
        completed_at: null,
        error: null,
        metrics: { predict_time: 3 },
        output: { version: 'a/b:c1234567' },
      }),
    ).toEqual({
      id: 't1',
      status: 'succeeded',
      startedAt: new Date('2025-01-01T00:00:00Z'),
      completedAt: null,
      error: null,
      predictTime: 3,
      outputVersion: 'a/b:c1234567',
    });
    expect(parseTraining({ id: 't1', status: 'exploded' })).toBeUndefined();
    expect(parseTraining({ status: 'succeeded' })).toBeUndefined();
    expect(parseTraining('nope')).toBeUndefined();
  });
});
