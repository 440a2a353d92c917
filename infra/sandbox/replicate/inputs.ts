/**
 * Input validation in the spirit of a cog model's schema (an SDXL/Flux-style LoRA): wrong types
 * and out-of-range values are rejected with 422 at create time, as Replicate does, so a caller
 * that sends a number as a string finds out here rather than in production.
 */
import { randomInt } from 'node:crypto';
import { Problems, type InvalidField } from './errors';
import type { ImageFormat } from './render';
import { WEBHOOK_EVENTS, type WebhookEvent } from './types';

export interface ImagePlan {
  prompt: string;
  width: number;
  height: number;
  numOutputs: number;
  seed: number;
  format: ImageFormat;
}

// Flux's aspect_ratio table: about one megapixel, both sides multiples of 16.
const ASPECT_RATIOS: Record<string, [number, number]> = {
  '1:1': [1024, 1024],
  '16:9': [1344, 768],
  '9:16': [768, 1344],
  '21:9': [1536, 640],
  '9:21': [640, 1536],
  '3:2': [1216, 832],
  '2:3': [832, 1216],
  '4:5': [896, 1088],
  '5:4': [1088, 896],
  '3:4': [896, 1152],
  '4:3': [1152, 896],
};

const FORMATS: Record<string, ImageFormat> = { png: 'png', jpg: 'jpg', jpeg: 'jpg', webp: 'webp' };

export function planPrediction(input: Record<string, unknown>): ImagePlan {
  const problems: InvalidField[] = [];
  const int = (name: string, min: number, max: number): number | undefined => {
    const v = input[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      problems.push({
        field: `input.${name}`,
        description: `Invalid type. Expected: integer, given: ${typeName(v)}`,
        type: 'invalid_type',
      });
    } else if (v < min || v > max) {
      problems.push({
        field: `input.${name}`,
        description: `Must be between ${min} and ${max}`,
        type: 'out_of_range',
      });
    } else return v;
    return undefined;
  };
  const num = (name: string, min: number, max: number): void => {
    const v = input[name];
    if (v === undefined || v === null) return;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      problems.push({
        field: `input.${name}`,
        description: `Invalid type. Expected: number, given: ${typeName(v)}`,
        type: 'invalid_type',
      });
    } else if (v < min || v > max) {
      problems.push({
        field: `input.${name}`,
        description: `Must be between ${min} and ${max}`,
        type: 'out_of_range',
      });
    }
  };
  const str = (name: string): string | undefined => {
    const v = input[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    problems.push({
      field: `input.${name}`,
      description: `Invalid type. Expected: string, given: ${typeName(v)}`,
      type: 'invalid_type',
    });
    return undefined;
  };

  const prompt = str('prompt');
  if (input.prompt === undefined)
    problems.push({ field: 'input', description: 'prompt is required', type: 'required' });
  str('negative_prompt');
  const numOutputs = int('num_outputs', 1, 4) ?? 1;
  let width = int('width', 64, 2048) ?? 1024;
  let height = int('height', 64, 2048) ?? 1024;
  int('num_inference_steps', 1, 500);
  num('guidance_scale', 0, 50);
  const seed = int('seed', 0, 2 ** 32 - 1) ?? randomInt(0, 2 ** 31);

  const ratio = str('aspect_ratio');
  if (ratio !== undefined && ratio !== 'custom') {
    const size = ASPECT_RATIOS[ratio];
    if (size) [width, height] = size;
    else
      problems.push({
        field: 'input.aspect_ratio',
        description: `Must be one of: ${[...Object.keys(ASPECT_RATIOS), 'custom'].join(', ')}`,
        type: 'enum',
      });
  }

  const formatName = str('output_format') ?? 'png';
  const format = FORMATS[formatName];
  if (!format)
    problems.push({
      field: 'input.output_format',
      description: 'Must be one of: png, jpg, webp',
      type: 'enum',
    });

  if (problems.length || prompt === undefined || !format) throw Problems.invalid(problems);
  return { prompt, width, height, numOutputs, seed, format };
}

function typeName(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return v === null ? 'null' : typeof v;
}

export interface WebhookSettings {
  webhook?: string;
  webhook_events_filter?: WebhookEvent[];
  /** Events that are sent: the filter, or all four when there is none. */
  events: ReadonlySet<WebhookEvent>;
}

export function webhookSettings(body: Record<string, unknown>): WebhookSettings {
  const problems: InvalidField[] = [];
  const { webhook, webhook_events_filter: filter } = body;
  if (webhook !== undefined && webhook !== null) {
    if (typeof webhook !== 'string' || !/^https?:$/.test(safeProtocol(webhook))) {
      problems.push({ field: 'webhook', description: 'Enter a valid URL.', type: 'invalid_url' });
    }
  }
  if (filter !== undefined && filter !== null) {
    if (!Array.isArray(filter) || filter.some((e) => !WEBHOOK_EVENTS.includes(e as WebhookEvent))) {
      problems.push({
        field: 'webhook_events_filter',
        description: `Each event must be one of: ${WEBHOOK_EVENTS.join(', ')}`,
        type: 'enum',
      });
    }
  }
  if (problems.length) throw Problems.invalid(problems);
  const settings: WebhookSettings = { events: new Set(WEBHOOK_EVENTS) };
  if (typeof webhook === 'string') settings.webhook = webhook;
  if (Array.isArray(filter) && filter.length) {
    settings.webhook_events_filter = [...new Set(filter as WebhookEvent[])];
    settings.events = new Set(settings.webhook_events_filter);
  }
  return settings;
}

function safeProtocol(url: string): string {
  try {
    return new URL(url).protocol;
  } catch {
    return '';
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
