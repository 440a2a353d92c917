/** Image URLs are reused within a short window and always outlive IMAGE_URL_TTL_S (fake clock, fake store). */
import type { ObjectStore } from '../src/domain/ports';
import { UrlSigner } from '../src/domain/url.service';

function setup(imageTtlS: number) {
  let now = Date.UTC(2026, 10, 26, 12, 0, 0);
  const signed: Array<{ key: string; ttlS: number; at: number }> = [];
  const store = {
    presignGet: (key: string, ttlS: number, at = new Date(now)) => {
      signed.push({ key, ttlS, at: at.getTime() });
      return Promise.resolve({
        url: `https://bucket/${key}?date=${at.getTime()}&expires=${ttlS}&n=${signed.length}`,
        expiresAt: new Date(at.getTime() + ttlS * 1000),
      });
    },
    publicUrl: () => undefined,
  } as unknown as ObjectStore;
  const signer = new UrlSigner(store, {
    datasetTtlS: 3600,
    imageTtlS,
    maxKeys: 10,
    clock: { now: () => new Date(now) },
  });
  return { signer, signed, tick: (ms: number) => (now += ms), now: () => now };
}

const validUntil = (url: string) => {
  const q = new URL(url).searchParams;
  return Number(q.get('date')) + Number(q.get('expires')) * 1000;
};

it('hands out the same image URL within a window, each valid for at least the TTL from now', async () => {
  const { signer, signed, tick, now } = setup(3600); // reuse window: 300 s
  const key = 'outputs/a/v/p/0.png';
  const [first] = await signer.sign([key]);
  for (const step of [1_000, 120_000, 150_000]) {
    tick(step);
    const [again] = await signer.sign([key]);
    expect(again).toBe(first);
    expect(validUntil(again!)).toBeGreaterThanOrEqual(now() + 3600_000);
  }
  expect(signed).toHaveLength(1);
  tick(60_000); // past the window: signed anew, as of the new window's start
  const [next] = await signer.sign([key]);
  expect(next).not.toBe(first);
  expect(signed).toHaveLength(2);
  expect(signed[1]!.at % 300_000).toBe(0);
  expect(validUntil(next!)).toBeGreaterThanOrEqual(now() + 3600_000);
});

it('signs dataset URLs fresh every time (customers photos), and the same key twice in one call once', async () => {
  const { signer, signed } = setup(3600);
  const dataset = 'datasets/acc/ver.zip';
  const image = 'outputs/a/v/p/1.png';
  const urls = await signer.sign([dataset, image, dataset, image]);
  expect(urls[3]).toBe(urls[1]);
  expect(signed.filter((s) => s.key === dataset)).toHaveLength(2);
});

it('never asks the store for more than the 7 days SigV4 allows: no reuse window at the maximum TTL', async () => {
  const week = 7 * 24 * 3600;
  const { signer, signed } = setup(week);
  await signer.sign(['outputs/a/v/p/0.png']);
  await signer.sign(['outputs/a/v/p/0.png']);
  expect(signed.map((s) => s.ttlS)).toEqual([week, week]);
});
