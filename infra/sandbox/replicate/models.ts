/**
 * Destination models and the versions trainings push to them. A model starts with no version
 * (`latest_version: null`); every successful training adds one, and predictions can only run on
 * versions that exist here.
 */
import { Problems, type InvalidField } from './errors';
import { now, versionId } from './ids';
import type { ModelObject, ModelVersionObject } from './types';

interface ModelEntry {
  owner: string;
  name: string;
  description: string | null;
  visibility: 'public' | 'private';
  hardware: string;
  versions: ModelVersionObject[];
  runCount: number;
}

// Replicate's rule for owner and model names.
const NAME = /^[a-z0-9][a-z0-9._-]*$/;

export class ModelStore {
  private readonly models = new Map<string, ModelEntry>();
  private readonly versions = new Map<string, ModelEntry>();

  create(body: Record<string, unknown>): ModelObject {
    const problems: InvalidField[] = [];
    const text = (field: string, required: boolean): string | undefined => {
      const v = body[field];
      if (v === undefined || v === null) {
        if (required) problems.push({ field, description: `${field} is required`, type: 'required' });
        return undefined;
      }
      if (typeof v !== 'string')
        problems.push({ field, description: 'Invalid type. Expected: string', type: 'invalid_type' });
      return typeof v === 'string' ? v : undefined;
    };
    const owner = text('owner', true);
    const name = text('name', true);
    const visibility = text('visibility', true);
    const hardware = text('hardware', true);
    const description = text('description', false);
    if (name !== undefined && !NAME.test(name)) {
      problems.push({
        field: 'name',
        description:
          'Model names may only contain lowercase letters, digits, dashes, underscores and periods',
      });
    }
    if (owner !== undefined && !NAME.test(owner))
      problems.push({ field: 'owner', description: 'Invalid owner' });
    if (visibility !== undefined && visibility !== 'public' && visibility !== 'private') {
      problems.push({ field: 'visibility', description: 'Must be one of: public, private', type: 'enum' });
    }
    if (problems.length || !owner || !name || !hardware) throw Problems.invalid(problems);
    const key = `${owner}/${name}`;
    if (this.models.has(key)) throw Problems.conflict('A model with that name and owner already exists.');
    const entry: ModelEntry = {
      owner,
      name,
      description: description ?? null,
      visibility: visibility as 'public' | 'private',
      hardware,
      versions: [],
      runCount: 0,
    };
    this.models.set(key, entry);
    return this.view(entry);
  }

  get(owner: string, name: string): ModelObject {
    return this.view(this.entry(owner, name));
  }

  listVersions(owner: string, name: string): ModelVersionObject[] {
    return [...this.entry(owner, name).versions].reverse().map((v) => ({ ...v }));
  }

  getVersion(owner: string, name: string, id: string): ModelVersionObject {
    const version = this.entry(owner, name).versions.find((v) => v.id === id);
    if (!version) throw Problems.notFound();
    return { ...version };
  }

  /**
   * Replicate's models.versions.delete: the version goes (Replicate accepts with 202 and takes a
   * few minutes; here it is at once). Only our own private models' versions can go.
   */
  deleteVersion(owner: string, name: string, id: string): void {
    const entry = this.entry(owner, name);
    const index = entry.versions.findIndex((v) => v.id === id);
    if (index === -1) throw Problems.notFound();
    if (entry.visibility !== 'private')
      throw Problems.conflict('You can only delete versions from private models.');
    entry.versions.splice(index, 1);
    this.versions.delete(id);
  }

  /** Replicate's models.delete: refused while the model still has versions. */
  delete(owner: string, name: string): void {
    const entry = this.entry(owner, name);
    if (entry.visibility !== 'private') throw Problems.conflict('You can only delete private models.');
    if (entry.versions.length)
      throw Problems.conflict('Cannot delete a model that has versions. Delete its versions first.');
    this.models.delete(`${owner}/${name}`);
  }

  /** `owner/name` of every model, for tests that check what is left. */
  names(): string[] {
    return [...this.models.keys()];
  }

  exists(owner: string, name: string): boolean {
    return this.models.has(`${owner}/${name}`);
  }

  /** Adds a new version to an existing model (what a successful training does). */
  pushVersion(owner: string, name: string): ModelVersionObject {
    const entry = this.entry(owner, name);
    const version: ModelVersionObject = {
      id: versionId(),
      created_at: now(),
      cog_version: '0.14.0',
      openapi_schema: null,
    };
    entry.versions.push(version);
    this.versions.set(version.id, entry);
    return { ...version };
  }

  /** `owner/name` of the model a version belongs to, or null for an unknown version. */
  modelOfVersion(id: string): string | null {
    const entry = this.versions.get(id);
    return entry ? `${entry.owner}/${entry.name}` : null;
  }

  latestVersion(owner: string, name: string): string | null {
    return this.entry(owner, name).versions.at(-1)?.id ?? null;
  }

  countRun(model: string): void {
    const entry = this.models.get(model);
    if (entry) entry.runCount++;
  }

  private entry(owner: string, name: string): ModelEntry {
    const entry = this.models.get(`${owner}/${name}`);
    if (!entry) throw Problems.notFound();
    return entry;
  }

  private view(e: ModelEntry): ModelObject {
    const latest = e.versions.at(-1);
    return {
      url: `https://replicate.com/${e.owner}/${e.name}`,
      owner: e.owner,
      name: e.name,
      description: e.description,
      visibility: e.visibility,
      github_url: null,
      paper_url: null,
      license_url: null,
      cover_image_url: null,
      default_example: null,
      run_count: e.runCount,
      latest_version: latest ? { ...latest } : null,
    };
  }
}
