import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import JSZip from 'jszip';
import Replicate from 'replicate';
import sharp from 'sharp';
import { waitFor } from '@atelier/infra/testing';

/**
 * A model version the Replicate sandbox can run predictions on, made the way production makes
 * one: a destination model, then a training (on a zip of one photo, served from a throwaway
 * HTTP server) whose success pushes the version.
 */
export async function sandboxModelVersion(sandbox: {
  baseUrl: string;
  token: string;
}): Promise<{ model: string; version: string; trainingId: string }> {
  const photo = await sharp({ create: { width: 512, height: 512, channels: 3, background: '#7a5' } })
    .jpeg()
    .toBuffer();
  const zip = await new JSZip().file('0.jpg', photo).generateAsync({ type: 'nodebuffer' });
  const server = createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/zip' }).end(zip),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/dataset.zip`;
    const client = new Replicate({ auth: sandbox.token, baseUrl: sandbox.baseUrl });
    const name = `test-${Math.random().toString(36).slice(2, 10)}`;
    await client.models.create('atelier', name, { visibility: 'private', hardware: 'gpu-t4' });
    const training = await client.trainings.create('ostris', 'flux-dev-lora-trainer', 'a'.repeat(64), {
      destination: `atelier/${name}`,
      input: { input_images: url },
    });
    const done = await waitFor(
      async () => {
        const t = await client.trainings.get(training.id);
        if (t.status === 'failed' || t.status === 'canceled')
          throw new Error(`sandbox training ${t.status}: ${String(t.error)}`);
        return t.status === 'succeeded' && t;
      },
      { timeoutMs: 20_000, what: 'the sandbox training to push a version' },
    );
    // `owner/name:version`, as Replicate reports it.
    const pushed = (done.output as { version: string }).version;
    return {
      model: `atelier/${name}`,
      version: pushed.slice(pushed.lastIndexOf(':') + 1),
      trainingId: training.id,
    };
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
