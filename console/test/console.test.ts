import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import sharp from 'sharp';
import { distinctPhotos, startMesh, waitFor, type Mesh } from '@atelier/infra/testing';

/**
 * The console end to end in Debian's Chromium against the make-dev-shaped mesh: the real gateway
 * serving console/dist (built by `make console`), the real services and both sandboxes.
 * Screenshots go to .atelier/test/screenshots, or to docs/screenshots with SCREENSHOTS=docs
 * (how the README's pictures are refreshed).
 */
const ROOT = path.resolve(__dirname, '..', '..');
const SHOTS =
  process.env.SCREENSHOTS === 'docs'
    ? path.join(ROOT, 'docs', 'screenshots')
    : path.join(ROOT, '.atelier', 'test', 'screenshots');
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let mesh: Mesh;
let key: string;
let context: BrowserContext;
let page: Page;
let userDataDir: string;
let versionId: string;
let runId: string;
const problems: string[] = [];

/** The customer's own server behind a webhook endpoint: records every delivery, answers 200. */
const received: Array<{ id: string; type: string }> = [];
const receiver = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { type: string };
    received.push({ id: String(req.headers['webhook-id']), type: body.type });
    res.end('ok');
  });
});
let hookUrl: string;

beforeAll(async () => {
  if (!fs.existsSync(path.join(ROOT, 'console', 'dist', 'index.html')))
    throw new Error('console/dist is missing: run `make console` first (make test does)');
  fs.mkdirSync(SHOTS, { recursive: true });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/atelier`;
  mesh = await startMesh({
    replicate: { trainingMs: 1500, predictionMs: 200 },
  });
  ({ apiKey: key } = await mesh.createAccount());
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 900 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  // Generous: on a loaded machine an upload of photos through imager takes tens of seconds.
  page.setDefaultTimeout(30_000);
  // An uncaught error in the app fails the run at the end, whatever screen it happened on.
  page.on('pageerror', (err) => problems.push(err.message));
}, 120_000);

afterAll(async () => {
  await context?.close();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  await mesh?.stop();
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
});

const url = (p: string) => `${mesh.gateway.url}/console${p}`;
const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

/** axe-core in the page; a critical violation fails the test and is named. */
async function expectAccessible(screen: string) {
  await page.addScriptTag({ path: require.resolve('axe-core/axe.min.js') });
  const result = await page.evaluate<Array<{ id: string; impact: string; nodes: number }>>(
    'axe.run(document, { resultTypes: ["violations"] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length })))',
  );
  const critical = result.filter((v) => v.impact === 'critical');
  expect({ screen, critical }).toEqual({ screen, critical: [] });
}

/** Names the screen and the widest elements past the right edge, so a failure says where to look. */
async function expectNoHorizontalScroll(screen: string) {
  const wide = await page.evaluate<string[]>(`[...document.querySelectorAll('body *')]
    .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
    .slice(0, 3)
    .map((e) => e.tagName.toLowerCase() + (e.className ? '.' + e.className : ''))`);
  const overflow = await page.evaluate<number>(
    'document.documentElement.scrollWidth - document.documentElement.clientWidth',
  );
  expect({ screen, overflow: overflow > 0 ? wide : [] }).toEqual({ screen, overflow: [] });
}

describe('console', () => {
  it('signs in with the API key from the keyboard, keeping it out of the URL', async () => {
    await page.goto(url('/'));
    await page.getByLabel('API key').waitFor();
    await expectAccessible('sign in');
    await shot('sign-in');

    // A wrong key shows the problem's title, not a stack.
    await page.getByLabel('API key').fill('atl_not_a_key');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').innerText()).toMatch(/unauthori[sz]ed|api key/i);

    await page.getByLabel('API key').fill(key);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Models' }).waitFor();
    expect(page.url()).not.toContain(key);
    expect(await page.evaluate('sessionStorage.getItem("atelier.apiKey")')).toBe(key);
    expect(await page.evaluate('JSON.stringify(localStorage)')).not.toContain(key);
  });

  it('adds a webhook endpoint and shows its secret once', async () => {
    await page.getByRole('link', { name: 'Webhooks' }).click();
    await page.getByRole('heading', { name: 'Webhooks' }).waitFor();
    await page.getByText('No endpoints yet.').waitFor();
    await expectAccessible('webhooks');

    // The API's refusal shows its title and detail.
    await page.getByLabel('URL').fill('ftp://example.com/hook');
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    const refusal = page.getByRole('alert');
    await refusal.waitFor();
    expect(await refusal.innerText()).toMatch(/https/);

    await page.getByLabel('URL').fill(hookUrl);
    await page.getByLabel('Description').fill('my shop');
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    const secret = await page.getByTestId('secret').innerText();
    expect(secret).toMatch(/^whsec_/);
    await page.locator('li.endpoint', { hasText: hookUrl }).getByText('Enabled').waitFor();
    expect(await page.getByRole('alert').count()).toBe(0);
    await page.getByRole('button', { name: 'I have saved it' }).click();
    await page.getByTestId('secret').waitFor({ state: 'detached' });
    expect(await page.content()).not.toContain(secret);
  });

  it('buys a plan through the Stripe sandbox checkout and comes back to train', async () => {
    await page.getByRole('link', { name: 'Plans' }).click();
    await page.getByRole('button', { name: 'Buy Basic' }).waitFor();
    await expectAccessible('plans');
    await shot('plans');

    await page.getByRole('button', { name: 'Buy Basic' }).click();
    await page.waitForURL((u) => u.origin === new URL(mesh.stripe.url).origin);
    await page.getByRole('button', { name: /^Pay \$/ }).click();
    await page.waitForURL((u) => u.pathname === '/console/checkout/return');
    await page.getByRole('link', { name: 'Train a model' }).waitFor({ timeout: 20_000 });
    await shot('checkout-return');
  });

  it('shows every problem of a bad photo on that photo, then trains once it is removed', async () => {
    await page.getByRole('link', { name: 'Train a model' }).click();
    await page.getByRole('heading', { name: 'Train a model' }).waitFor();
    const good = await distinctPhotos(5);
    const small = await sharp({ create: { width: 200, height: 200, channels: 3, background: '#888' } })
      .jpeg()
      .toBuffer();
    const files = [
      ...good.slice(0, 2),
      { name: 'too-small.jpg', type: 'image/jpeg', data: small },
      ...good.slice(2),
    ].map((f) => ({ name: f.name, mimeType: f.type, buffer: f.data }));
    await page.setInputFiles('#photos', files);
    await page.getByLabel(/^Class/).fill('man');
    await page.getByRole('button', { name: /Upload 6 photo/ }).click();

    const bad = page.locator('li.photo.bad');
    await bad.waitFor();
    expect(await bad.count()).toBe(1);
    expect(await bad.getAttribute('data-file')).toBe('too-small.jpg');
    expect(await bad.locator('.photo-problems').innerText()).toMatch(/512/);
    await expectAccessible('training wizard');
    await shot('train-rejected');

    await page.getByRole('button', { name: 'Remove too-small.jpg' }).click();
    expect(await page.locator('li.photo.bad').count()).toBe(0);
    await page.getByRole('button', { name: /Upload 5 photo/ }).click();
    await page.waitForURL((u) => /^\/console\/models\/[0-9a-f-]{36}$/.test(u.pathname), { timeout: 120_000 });
    versionId = page.url().split('/').pop()!;
    // Live status: the page follows the training to its end without a reload.
    await page.locator('.status', { hasText: 'Ready' }).waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('credits').innerText()).toMatch(/100 of 100 images left/);
  });

  it('runs a prompt with its parameters and shows its images', async () => {
    await page.getByLabel('Prompt', { exact: true }).fill('a photo of a man on a mountain');
    await page.getByLabel('Negative prompt').fill('blurry');
    await page.getByLabel('Images', { exact: true }).selectOption('2');
    await page.getByLabel('Width').fill('512');
    await page.getByLabel('Height').fill('640');
    await page.getByLabel('Steps').fill('20');
    await page.getByLabel('Guidance scale').fill('7.5');
    await page.getByLabel('Seed').fill('42');
    await page.getByRole('button', { name: 'Generate' }).click();
    const result = page.locator('.result .gallery img');
    await waitFor(async () => (await result.count()) === 2, { timeoutMs: 60_000, what: 'two images' });
    expect(await result.first().getAttribute('width')).toBe('512');
    expect(await result.first().getAttribute('height')).toBe('640');
    await page.getByTestId('credits').filter({ hasText: '98 of 100' }).waitFor();

    // The parameters reached the prompt as typed.
    const list = (await (await mesh.api(`/api/v1/prompts/list/${versionId}?limit=1`, { key })).json()) as {
      prompts: Array<{ negative_prompt: string; params: Record<string, unknown> }>;
    };
    expect(list.prompts[0]!.negative_prompt).toBe('blurry');
    expect(list.prompts[0]!.params).toEqual(
      expect.objectContaining({ num_inference_steps: 20, guidance_scale: 7.5, seed: 42 }),
    );
    await expectAccessible('model');
    await shot('model');
  });

  it('pages the gallery on its keyset cursor and opens an image full size', async () => {
    // Six more prompts through the API, so the gallery has a second page (six prompts a page).
    for (let i = 0; i < 6; i++) {
      const res = await mesh.api(`/api/v1/prompts/create/${versionId}`, {
        key,
        method: 'POST',
        headers: { prefer: 'wait=30' },
        json: { prompt: `gallery prompt ${i}`, num_outputs: 1 },
      });
      expect(res.status).toBe(200);
    }
    await page.reload();
    const gallery = page.locator('section[aria-labelledby="gallery-title"]');
    await gallery.locator('img[alt^="gallery prompt 5"]').waitFor();
    expect(await gallery.locator('img[alt^="a photo of a man"]').count()).toBe(0);
    await gallery.getByRole('button', { name: 'Older' }).click();
    await gallery.locator('img[alt^="a photo of a man"]').first().waitFor();
    expect(await gallery.getByRole('button', { name: 'Older' }).isDisabled()).toBe(true);
    await gallery.getByRole('button', { name: 'Newer' }).click();
    await gallery.locator('img[alt^="gallery prompt 5"]').waitFor();
    await shot('gallery');

    await gallery.locator('button.thumb').first().click();
    const viewer = page.getByRole('dialog', { name: 'Full-size image' });
    await viewer.waitFor();
    const download = viewer.getByRole('link', { name: 'Download' });
    const href = await download.getAttribute('href');
    const image = await fetch(href!);
    expect(image.status).toBe(200);
    expect(image.headers.get('content-type')).toMatch(/^image\//);
    await shot('image-viewer');
    await page.keyboard.press('Escape');
    await viewer.waitFor({ state: 'hidden' });
  });

  it('runs a pack on the model with its variables and shows its prompts together', async () => {
    await page.goto(url(`/models/${versionId}`));
    await page.getByRole('link', { name: 'Run an offer or a pack' }).click();
    await page.getByRole('heading', { name: 'Offers and packs' }).waitFor();
    const pack = page.locator('article[data-kind="pack"]', { hasText: '10 professional headshots' });
    await pack.getByRole('button', { name: 'Run 10 professional headshots' }).waitFor();
    // The model comes from the link (?version=), once the ready models are listed.
    await waitFor(async () => (await page.getByLabel('Model').inputValue()) === versionId, {
      what: 'the model chosen',
    });
    await expectAccessible('offers');
    await shot('offers');

    await pack.getByLabel('background').fill('grey');
    await pack.getByLabel('place').fill('a park');
    await pack.getByLabel('painter').fill('Rembrandt');
    await pack.getByRole('button', { name: 'Run 10 professional headshots' }).click();
    await page.waitForURL((u) => /^\/console\/runs\/[0-9a-f-]{36}$/.test(u.pathname));
    runId = page.url().split('/').pop()!;
    await page.getByRole('heading', { name: '10 professional headshots' }).waitFor();
    await page.getByTestId('run-images').filter({ hasText: '10 of 10' }).waitFor({ timeout: 60_000 });
    const prompts = page.locator('.run-prompts > li');
    expect(await prompts.count()).toBe(3);
    expect(await prompts.locator('.status', { hasText: 'Ready' }).count()).toBe(3);
    expect((await prompts.allInnerTexts()).filter((t) => /in the style of Rembrandt/.test(t))).toHaveLength(
      1,
    );
    expect(await page.locator('.run-prompts img').count()).toBe(10);
    await expectAccessible('run');
    await shot('run');
  });

  it('lists my models and payments and shows my credits and usage', async () => {
    await page.getByRole('link', { name: 'Account' }).click();
    await page.getByTestId('account-credits').filter({ hasText: '82 images left' }).waitFor();
    // Usage: 2 + 6 images of prompts and the pack's 10, one training, the Basic plan paid.
    const total = page.getByTestId('usage-total');
    const cells = async (row: Locator) => (await row.locator('th, td').allInnerTexts()).slice(1, 3);
    // Waits for images and trainings to read as expected; on a timeout the diff shows what they read.
    const expectCells = async (row: Locator, expected: string[]) => {
      await waitFor(async () => (await cells(row)).join() === expected.join(), { timeoutMs: 15_000 }).catch(
        () => undefined,
      );
      expect(await cells(row)).toEqual(expected);
    };
    await expectCells(total, ['18', '1']);
    const model = page
      .getByRole('row')
      .filter({ has: page.locator(`a[href="/console/models/${versionId}"]`) });
    expect(await cells(model)).toEqual(['18', '1']);
    // A range of UTC days (yesterday too, should the run straddle midnight) holds it all. (A range
    // with no usage at all answers 500 on main: billing's grand total of an empty range has null sums.)
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    const [from, to] = [day(Date.now() - 86_400_000), day(Date.now())];
    await page.getByLabel('To (UTC day, included)').fill(to);
    await page.getByLabel('From (UTC day)').fill(from);
    await page.getByText(`${from} to ${to}`).waitFor();
    await page.locator('section[aria-labelledby="usage-title"][aria-busy="false"]').waitFor();
    await expectCells(total, ['18', '1']);
    await expectAccessible('account');
    await shot('account');

    await page.getByRole('link', { name: 'Plans' }).click();
    const payments = page.locator('.list .row');
    await payments.first().waitFor();
    expect(await payments.count()).toBe(1);
    expect(await payments.first().innerText()).toMatch(/basic_init/);
    await payments.first().getByRole('link', { name: 'Model' }).click();
    await page.waitForURL((u) => u.pathname === `/console/models/${versionId}`);

    await page.getByRole('link', { name: 'Models', exact: true }).click();
    await page.getByRole('heading', { name: 'Models' }).waitFor();
    await page.locator('.models .status', { hasText: 'Ready' }).waitFor();
    await page.getByLabel('Show').selectOption('failed');
    await page.getByText('No models with this status.').waitFor();
    await page.getByLabel('Show').selectOption('');
    await page.locator('.models .status', { hasText: 'Ready' }).waitFor();
  });

  it('lists the deliveries of my events, redelivers one, rotates the secret and deletes the endpoint', async () => {
    const paid = () => received.filter((r) => r.type === 'payment.paid');
    await waitFor(() => paid().length === 1, { timeoutMs: 30_000, what: 'payment.paid delivered' });
    await page.getByRole('link', { name: 'Webhooks' }).click();
    const delivery = page.locator('li.delivery[data-event-type="payment.paid"]');
    await delivery.getByText('Delivered').waitFor();
    expect(await delivery.innerText()).toMatch(/1 attempt · HTTP 200/);
    expect(await page.locator('li.delivery[data-event-type="prompt.succeeded"]').count()).toBeGreaterThan(0);

    await delivery.getByRole('button', { name: /^Redeliver/ }).click();
    await delivery.getByText('Redelivery scheduled').waitFor();
    // The same event again, under the same webhook-id.
    await waitFor(() => paid().length === 2, { timeoutMs: 30_000, what: 'payment.paid redelivered' });
    expect(paid()[1]!.id).toBe(paid()[0]!.id);
    await delivery.filter({ hasText: '2 attempts' }).getByText('Delivered').waitFor();

    const endpoint = page.locator('li.endpoint', { hasText: hookUrl });
    await endpoint.getByRole('button', { name: /^Rotate secret/ }).click();
    expect(await page.getByTestId('secret').innerText()).toMatch(/^whsec_/);
    await endpoint.getByText('The previous secret also signs until').waitFor();
    await expectAccessible('webhooks with deliveries');
    await shot('webhooks');
    await page.getByRole('button', { name: 'I have saved it' }).click();

    await endpoint.getByRole('button', { name: /^Delete/ }).click();
    const confirm = page.getByRole('dialog', { name: 'Delete this endpoint?' });
    await confirm.waitFor();
    expect(await confirm.innerText()).toContain(hookUrl);
    // Focus starts on the safe choice; Escape keeps the endpoint.
    await page.keyboard.press('Escape');
    await confirm.waitFor({ state: 'hidden' });
    expect(await endpoint.count()).toBe(1);
    await endpoint.getByRole('button', { name: /^Delete/ }).click();
    await confirm.getByRole('button', { name: 'Delete endpoint' }).click();
    await page.getByText('No endpoints yet.').waitFor();
    const left = (await (await mesh.api('/api/v1/webhook-endpoints', { key })).json()) as {
      endpoints: unknown[];
    };
    expect(left.endpoints).toEqual([]);
  });

  it('fits a 375 px wide phone screen', async () => {
    await page.setViewportSize({ width: 375, height: 800 });
    for (const screen of [
      '/models',
      `/models/${versionId}`,
      '/plans',
      '/account',
      '/offers',
      `/runs/${runId}`,
      '/webhooks',
    ]) {
      await page.goto(url(screen));
      await page.locator('h1').waitFor();
      await page.waitForLoadState('networkidle');
      await expectNoHorizontalScroll(screen);
    }
    await page.goto(url('/models'));
    await page.locator('.status', { hasText: 'Ready' }).waitFor();
    await expectAccessible('models');
    await shot('models-phone');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('deletes the model after a confirmation naming it and what goes with it', async () => {
    await page.goto(url(`/models/${versionId}`));
    await page.getByRole('button', { name: 'Delete model' }).click();
    const confirm = page.getByRole('dialog', { name: /^Delete / });
    await confirm.waitFor();
    const text = await confirm.innerText();
    expect(text).toContain(versionId);
    expect(text).toMatch(/18 so far/);
    expect(text).toMatch(/82 unused image credits/);
    await expectAccessible('delete model');
    await shot('delete-model');
    // Escape keeps the model; the safe choice has the focus.
    await page.keyboard.press('Escape');
    await confirm.waitFor({ state: 'hidden' });
    expect(page.url()).toContain(versionId);

    await page.getByRole('button', { name: 'Delete model' }).click();
    await confirm.getByRole('button', { name: /^Delete / }).click();
    await page.waitForURL((u) => u.pathname === '/console/models');
    await page.getByRole('status').filter({ hasText: 'is being deleted' }).waitFor();
    await page.getByText('No models yet.').waitFor();
    const info = await fetch(`${mesh.gateway.url}/api/v1/versions/info/${versionId}`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(info.status).toBe(410);

    // Its old address shows the API's problem, not a stack.
    await page.goto(url(`/models/${versionId}`));
    const problem = page.getByRole('alert');
    await problem.waitFor();
    expect(await problem.innerText()).toMatch(/delet|gone/i);
  });

  it('raised no uncaught error in the page', () => {
    expect(problems).toEqual([]);
  });
});
