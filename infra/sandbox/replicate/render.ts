/**
 * The "model": draws the prompt onto a gradient with sharp, so a generated image is a real file
 * of the requested size whose content shows which request produced it.
 */
import { createHash } from 'node:crypto';
import sharp from 'sharp';

export type ImageFormat = 'png' | 'jpg' | 'webp';

export const CONTENT_TYPES: Record<ImageFormat, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  webp: 'image/webp',
};

export interface RenderRequest {
  prompt: string;
  width: number;
  height: number;
  /** Which of the `num_outputs` images this is (0-based). */
  index: number;
  seed: number;
  format: ImageFormat;
}

export async function renderImage(r: RenderRequest): Promise<Buffer> {
  const image = sharp(Buffer.from(svg(r)));
  if (r.format === 'jpg') return image.jpeg({ quality: 85 }).toBuffer();
  if (r.format === 'webp') return image.webp({ quality: 85 }).toBuffer();
  return image.png().toBuffer();
}

function svg(r: RenderRequest): string {
  const { width: w, height: h } = r;
  // Colours depend on prompt, seed and index, so each output of one request looks different.
  const digest = createHash('sha256').update(`${r.prompt}|${r.seed}|${r.index}`).digest();
  const hue = (digest[0]! * 360) / 256;
  const hue2 = (hue + 40 + (digest[1]! % 80)) % 360;
  const fontSize = Math.max(12, Math.round(Math.min(w, h) / 18));
  const charsPerLine = Math.max(8, Math.floor((w * 0.86) / (fontSize * 0.56)));
  const maxLines = Math.max(1, Math.floor((h * 0.7) / (fontSize * 1.25)));
  const lines = wrap(r.prompt, charsPerLine, maxLines);
  const top = h / 2 - ((lines.length - 1) * fontSize * 1.25) / 2;
  const text = lines
    .map((line, i) => `<text x="50%" y="${(top + i * fontSize * 1.25).toFixed(1)}">${escapeXml(line)}</text>`)
    .join('');
  const small = Math.max(10, Math.round(fontSize * 0.45));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">
<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
<stop offset="0" stop-color="hsl(${hue.toFixed(0)},55%,38%)"/><stop offset="1" stop-color="hsl(${hue2.toFixed(0)},60%,22%)"/>
</linearGradient></defs>
<rect width="${w}" height="${h}" fill="url(#g)"/>
<g fill="#ffffff" font-family="DejaVu Sans, sans-serif" font-size="${fontSize}" text-anchor="middle" dominant-baseline="middle">${text}</g>
<text x="${small}" y="${h - small}" fill="#ffffff" fill-opacity="0.7" font-family="DejaVu Sans Mono, monospace" font-size="${small}">replicate sandbox · ${w}×${h} · #${r.index + 1} · seed ${r.seed}</text>
</svg>`;
}

function wrap(text: string, width: number, maxLines: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const candidate = line ? `${line} ${word}` : word;
    if (candidate.length <= width) line = candidate;
    else {
      if (line) lines.push(line);
      line = word.length > width ? `${word.slice(0, width - 1)}…` : word;
    }
  }
  if (line) lines.push(line);
  if (lines.length > maxLines) {
    lines.length = maxLines;
    lines[maxLines - 1] = `${lines[maxLines - 1]!.slice(0, Math.max(1, width - 1))}…`;
  }
  return lines.length ? lines : ['(empty prompt)'];
}

function escapeXml(s: string): string {
  // Control characters other than tab and newlines are not allowed in XML at all, escaped or not.
  const allowed = [...s].filter((ch) => ch >= ' ' || ch === '\t' || ch === '\n' || ch === '\r').join('');
  return allowed.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
