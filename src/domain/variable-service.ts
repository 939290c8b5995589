/**
 * Workspace variables (secrets) for `tb_secret()`/`tb_var()` in templates. Values are encrypted at
 * rest with AES-256-GCM under a key never kept in the catalog (see keys.ts), are never
 * returned by any route, and reach the engine only as bound query parameters.
 */
import { type Catalog, type VariableRecord, type Workspace, newNamedRecord, UniqueViolation } from '../catalog/catalog.js';
import { badRequest, notFound } from '../basics/errors.js';
import { checkNameLength } from '../schema/names.js';
import { SecretBox } from './secret-box.js';
import { nowIso } from '../basics/time.js';
import { WorkspaceCache } from '../catalog/workspace-cache.js';

export const MAX_VARIABLES = 100;
export const MAX_VALUE_BYTES = 8 * 1024;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export class VariableService {
  /** workspace id → decrypted values (name → value). */
  private readonly cache: WorkspaceCache<Map<string, { record: VariableRecord; value: string }>>;

  private constructor(
    private readonly catalog: Catalog,
    private readonly box: SecretBox,
  ) {
    this.cache = new WorkspaceCache(catalog, ['variables'], async (wsId) => {
      const m = new Map<string, { record: VariableRecord; value: string }>();
      for (const r of await catalog.listVariables(wsId)) m.set(r.name, { record: r, value: this.decrypt(r.value, `${wsId}/${r.name}`) });
      return m;
    });
  }

  /** Opens the service with its key (see keys.ts). */
  static open(catalog: Catalog, key: Buffer): VariableService {
    return new VariableService(catalog, new SecretBox(key));
  }

  private encrypt(value: string, aad: string): string {
    return this.box.seal(value, aad);
  }

  private decrypt(stored: string, aad: string): string {
    return this.box.open(stored, aad);
  }

  /**
   * Calls `listener` when a workspace's variables change (null: every workspace's), also on this
   * copy's own writes before their notification: queries prepared with the old values are dropped.
   */
  onChange(listener: (workspaceId: string | null) => void): void {
    this.cache.onChange(listener);
  }

  private async load(ws: Workspace): Promise<Map<string, { record: VariableRecord; value: string }>> {
    return this.cache.get(ws.id);
  }

  async list(ws: Workspace): Promise<VariableRecord[]> {
    return [...(await this.load(ws)).values()].map((x) => x.record);
  }

  async get(ws: Workspace, name: string): Promise<VariableRecord | null> {
    return (await this.load(ws)).get(name)?.record ?? null;
  }

  /** Decrypted values for rendering templates. */
  async values(ws: Workspace): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const [name, x] of await this.load(ws)) out[name] = x.value;
    return out;
  }

  private checkValue(value: string | undefined): string {
    if (value === undefined) throw badRequest('missing value');
    if (Buffer.byteLength(value) > MAX_VALUE_BYTES) throw badRequest('Variable maximum size is 8KB');
    return value;
  }

  async create(ws: Workspace, name: string | undefined, value: string | undefined, type: string | undefined, editedBy: string | null): Promise<VariableRecord> {
    if (!name) throw badRequest('missing name');
    if (type !== undefined && type !== 'secret') throw badRequest('Supported variable types are: secret');
    const v = this.checkValue(value);
    checkNameLength(name, 'variable');
    if (!NAME.test(name))
      throw badRequest(`Invalid variable name "${name}". Name must start with a letter or underscore and contain only letters, numbers, and underscores.`);
    const m = await this.load(ws);
    if (m.has(name)) throw badRequest(`Variable "${name}" already exists`);
    if (m.size >= MAX_VARIABLES) throw badRequest(`Maximum number of variables reached (${MAX_VARIABLES})`);
    const record: VariableRecord = { ...newNamedRecord(ws, name), type: 'secret', value: this.encrypt(v, `${ws.id}/${name}`), editedBy };
    try {
      await this.catalog.insertVariable(record);
    } catch (err) {
      if (err instanceof UniqueViolation) throw badRequest(`Variable "${name}" already exists`);
      throw err;
    }
    await this.cache.update(ws.id, (m) => m.set(name, { record, value: v }));
    return record;
  }

  async update(ws: Workspace, name: string, value: string | undefined, type: string | undefined, editedBy: string | null): Promise<VariableRecord> {
    const m = await this.load(ws);
    const cur = m.get(name);
    if (!cur) throw notFound('Variable not found');
    if (type !== undefined) throw badRequest('Variable type cannot be changed');
    const v = this.checkValue(value);
    const record = await this.catalog.updateVariable({ ...cur.record, value: this.encrypt(v, `${ws.id}/${name}`), updatedAt: nowIso(), editedBy });
    await this.cache.update(ws.id, (m) => m.set(name, { record, value: v }));
    return record;
  }

  async delete(ws: Workspace, name: string): Promise<void> {
    const m = await this.load(ws);
    if (!m.has(name)) throw notFound('Variable not found');
    await this.catalog.deleteVariable(ws.id, name);
    await this.cache.update(ws.id, (m) => m.delete(name));
  }
}
