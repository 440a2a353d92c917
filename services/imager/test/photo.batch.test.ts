import {
  checkPhotos,
  type CheckPhotosOptions,
  DEFAULT_PHOTO_LIMITS,
  type IncomingPhoto,
} from '../src/domain';
import { jpeg } from './support/images';
import { inspect } from './support/photos';

async function* arriving(photos: IncomingPhoto[]): AsyncGenerator<IncomingPhoto> {
  for (const photo of photos) yield photo;
}

async function goodPhotos(count: number, firstSeed = 1): Promise<IncomingPhoto[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, index) => ({
      index,
      file: `p${index}.jpg`,
      bytes: await jpeg(520, 520, firstSeed + index),
    })),
  );
}

/** Wraps the real inspector and records how many inspections overlap. */
function instrumented(): {
  inspect: NonNullable<CheckPhotosOptions['inspect']>;
  maxRunning: () => number;
  calls: number[];
} {
  let running = 0;
  let maxRunning = 0;
  const calls: number[] = [];
  return {
    calls,
    maxRunning: () => maxRunning,
    inspect: async (photo, limits) => {
      calls.push(photo.index);
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      try {
        return await inspect(photo, limits);
      } finally {
        running -= 1;
      }
    },
  };
}

describe('checkPhotos', () => {
  it('passes a clean upload and returns the photos in index order', async () => {
    const photos = await goodPhotos(5);
    const result = await checkPhotos(arriving(photos), { inspect });
    expect(result.problems).toEqual([]);
    expect(result.photos.map((photo) => photo.index)).toEqual([0, 1, 2, 3, 4]);
    expect(
      result.photos.every((photo) => photo.jpeg.subarray(0, 3).equals(Buffer.from([0xff, 0xd8, 0xff]))),
    ).toBe(true);
  });

  it('reports every problem of every file together, with their indexes', async () => {
    const [first, ...others] = await goodPhotos(4);
    const whole = await jpeg(900, 700, 99);
    const upload: IncomingPhoto[] = [
      { index: 0, file: 'a.jpg', bytes: first!.bytes },
      { index: 1, file: 'notes.jpg', bytes: Buffer.from('just text\n'.repeat(50)) },
      { index: 2, file: 'small.jpg', bytes: await jpeg(300, 300, 42) },
      { index: 3, file: 'cut.jpg', bytes: whole.subarray(0, Math.floor(whole.length / 2)) },
      { index: 4, file: 'b.jpg', bytes: others[0]!.bytes },
      { index: 5, file: 'again.jpg', bytes: Buffer.from(first!.bytes) },
      { index: 6, file: 'c.jpg', bytes: others[1]!.bytes },
    ];
    const result = await checkPhotos(arriving(upload), { inspect });
    expect(result.problems).toEqual([
      { index: 1, file: 'notes.jpg', code: 'unsupported_type', detail: expect.any(String) },
      {
        index: 2,
        file: 'small.jpg',
        code: 'too_small',
        detail: '300×300 px; both sides must be at least 512 px',
      },
      { index: 3, file: 'cut.jpg', code: 'undecodable', detail: expect.any(String) },
      { index: 5, file: 'again.jpg', code: 'duplicate', detail: 'same content as photo 1 (a.jpg)' },
    ]);
    expect(result.photos.map((photo) => photo.index)).toEqual([0, 4, 6]);
  });

  it('does not decode a duplicate again', async () => {
    const photos = await goodPhotos(5);
    const probe = instrumented();
    const upload = [...photos, { index: 5, file: 'copy.jpg', bytes: photos[2]!.bytes }];
    const result = await checkPhotos(arriving(upload), { inspect: probe.inspect });
    expect(result.problems).toEqual([
      expect.objectContaining({ index: 5, code: 'duplicate', detail: 'same content as photo 3 (p2.jpg)' }),
    ]);
    expect(probe.calls).toEqual([0, 1, 2, 3, 4]);
  });

  it('keeps inspections and held originals within the concurrency bound', async () => {
    const photos = await goodPhotos(8);
    const probe = instrumented();
    let pulled = 0;
    let maxHeld = 0;
    let settled = 0;
    async function* source(): AsyncGenerator<IncomingPhoto> {
      for (const photo of photos) {
        pulled += 1;
        maxHeld = Math.max(maxHeld, pulled - settled);
        yield photo;
      }
    }
    const result = await checkPhotos(source(), {
      concurrency: 3,
      inspect: async (photo, limits) => {
        try {
          return await probe.inspect(photo, limits);
        } finally {
          settled += 1;
        }
      },
    });
    expect(result.problems).toEqual([]);
    expect(result.photos).toHaveLength(8);
    expect(probe.maxRunning()).toBe(3); // reached, so the bound is what limits it
    expect(maxHeld).toBeLessThanOrEqual(3);
  });

  it('reports too few photos at the position of the first missing one', async () => {
    const result = await checkPhotos(arriving(await goodPhotos(3)), { inspect });
    expect(result.problems).toEqual([
      { index: 3, file: '', code: 'too_few_images', detail: '3 photos; at least 5 are needed' },
    ]);
  });

  it('reports too many photos once, on the first one past the limit, and checks only the allowed ones', async () => {
    const probe = instrumented();
    const limits = { ...DEFAULT_PHOTO_LIMITS, minCount: 1, maxCount: 3 };
    const result = await checkPhotos(arriving(await goodPhotos(5)), { limits, inspect: probe.inspect });
    expect(result.problems).toEqual([
      {
        index: 3,
        file: 'p3.jpg',
        code: 'too_many_images',
        detail: '5 photos; at most 3 are allowed (only the first 3 were checked)',
      },
    ]);
    expect(probe.calls).toEqual([0, 1, 2]);
  });

  it('reports the total size once, on the photo that crosses the limit', async () => {
    const photos = await goodPhotos(5);
    const firstTwo = photos[0]!.bytes.length + photos[1]!.bytes.length;
    const limits = { ...DEFAULT_PHOTO_LIMITS, maxTotalBytes: firstTwo + 1 };
    const result = await checkPhotos(photos, { limits, inspect });
    expect(result.problems).toEqual([expect.objectContaining({ index: 2, code: 'total_too_large' })]);
  });

  it('rethrows a source failure only after running inspections have finished', async () => {
    const photos = await goodPhotos(3);
    const probe = instrumented();
    let running = 0;
    async function* failing(): AsyncGenerator<IncomingPhoto> {
      yield photos[0]!;
      yield photos[1]!;
      throw new Error('client went away');
    }
    const outcome = checkPhotos(failing(), {
      inspect: async (photo, limits) => {
        running += 1;
        try {
          return await probe.inspect(photo, limits);
        } finally {
          running -= 1;
        }
      },
    });
    await expect(outcome).rejects.toThrow('client went away');
    expect(running).toBe(0);
    expect(probe.calls).toEqual([0, 1]);
  });

  it('stops pulling and closes the source when an inspection throws', async () => {
    const photos = await goodPhotos(6);
    let closed = false;
    let pulled = 0;
    async function* source(): AsyncGenerator<IncomingPhoto> {
      try {
        for (const photo of photos) {
          pulled += 1;
          yield photo;
        }
      } finally {
        closed = true;
      }
    }
    const outcome = checkPhotos(source(), {
      concurrency: 1,
      inspect: async (photo, limits) => {
        if (photo.index === 1) throw new Error('bug');
        return inspect(photo, limits);
      },
    });
    await expect(outcome).rejects.toThrow('bug');
    expect(closed).toBe(true);
    expect(pulled).toBe(2);
  });

  it('refuses a concurrency that is not a positive integer', async () => {
    await expect(checkPhotos([], { concurrency: 0, inspect })).rejects.toThrow(RangeError);
  });
});
