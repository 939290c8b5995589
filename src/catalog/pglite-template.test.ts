/**
 * The install-time catalog template: a new data directory's catalog is a copy of it (no initdb at
 * start), with the migrations applied and nothing of any install in it; a catalog that has files,
 * or a template made by another PGlite or other migrations, is left alone.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPgliteCatalog } from './pglite-catalog.js';
import { buildTemplate, seedFromTemplate, templateUsable } from './pglite-template.js';

let tmp: string;
let template: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-template-'));
  template = path.join(tmp, 'template');
  await buildTemplate(template);
}, 60_000);

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('catalog template', () => {
  it('is an empty, migrated catalog that a new directory is seeded from', async () => {
    expect(templateUsable(template)).toBe(true);
    const dir = path.join(tmp, 'data', 'catalog');
    expect(await seedFromTemplate(dir, template)).toBe(true);
    expect(fs.existsSync(path.join(dir, 'PG_VERSION'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'pipit-template.json'))).toBe(false);
    // No half copy left beside it.
    expect(fs.readdirSync(path.dirname(dir))).toEqual(['catalog']);
    const catalog = await openPgliteCatalog(dir);
    try {
      expect(await catalog.listWorkspaces()).toEqual([]);
    } finally {
      await catalog.close();
    }
    // Reopened: the catalog has files now, so it is not seeded again.
    expect(await seedFromTemplate(dir, template)).toBe(false);
  });

  it('is not used when made by another PGlite or with other migrations', async () => {
    const other = path.join(tmp, 'other');
    fs.cpSync(template, other, { recursive: true });
    fs.writeFileSync(path.join(other, 'pipit-template.json'), JSON.stringify({ key: 'pglite 0.0.1, migrations 0' }));
    expect(templateUsable(other)).toBe(false);
    const dir = path.join(tmp, 'data2', 'catalog');
    expect(await seedFromTemplate(dir, other)).toBe(false);
    expect(fs.existsSync(dir)).toBe(false);
  });
});
