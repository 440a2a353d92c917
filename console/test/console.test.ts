import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
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
const problems: string[] = [];

beforeAll(async () => {
  if (!fs.existsSync(path.join(ROOT, 'console', 'dist', 'index.html')))
    throw new Error('console/dist is missing: run `make console` first (make test does)');
  fs.mkdirSync(SHOTS, { recursive: true });
  mesh = await startMesh({ replicate: { trainingMs: 1500, predictionMs: 200 } });
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
});

const url = (p: string) => `${mesh.gateway.url}/console${p}`;
const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

/** axe-core in the page; a critical violation fails the test and is named. */
async function expectAccessible(screen: string) {
  await page.addScriptTag({ path: require.resolve('axe-core/axe.min.js') });
  const result = (await page.evaluate(
    'axe.run(document, { resultTypes: ["violations"] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length })))',
  )) as Array<{ id: string; impact: string; nodes: number }>;
  const critical = result.filter((v) => v.impact === 'critical');
  expect({ screen, critical }).toEqual({ screen, critical: [] });
}

async function expectNoHorizontalScroll() {
  const overflow = (await page.evaluate(
    'document.documentElement.scrollWidth - document.documentElement.clientWidth',
  )) as number;
  expect(overflow).toBeLessThanOrEqual(0);
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

  it('lists my models and payments and shows my credits over every model', async () => {
    await page.getByRole('link', { name: 'Account' }).click();
    await page.getByTestId('account-credits').filter({ hasText: '92 images left' }).waitFor();
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

  it('fits a 375 px wide phone screen', async () => {
    await page.setViewportSize({ width: 375, height: 800 });
    for (const screen of ['/models', `/models/${versionId}`, '/plans', '/account']) {
      await page.goto(url(screen));
      await page.locator('h1').waitFor();
      await page.waitForLoadState('networkidle');
      await expectNoHorizontalScroll();
    }
    await page.goto(url('/models'));
    await page.locator('.status', { hasText: 'Ready' }).waitFor();
    await expectAccessible('models');
    await shot('models-phone');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('raised no uncaught error in the page', () => {
    expect(problems).toEqual([]);
  });
});
