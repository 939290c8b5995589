/**
 * Numbered, append-only catalog migrations. Never edit a released entry: add a new one.
 */
export interface Migration {
  version: number;
  sql: string;
}

/**
 * A table of workspace resources unique by name: id, workspace, name, creation time and the record
 * as a document. Released migrations use it: its text must never change.
 */
const resourceTable = (table: string) => `
      CREATE TABLE ${table} (id text PRIMARY KEY, workspace_id text NOT NULL, name text NOT NULL,
        created_at timestamptz NOT NULL, doc jsonb NOT NULL, UNIQUE (workspace_id, name))`;

export const migrations: Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE workspaces (id text PRIMARY KEY, name text NOT NULL UNIQUE, created_at timestamptz NOT NULL, doc jsonb NOT NULL);
      CREATE TABLE tokens (id text PRIMARY KEY, workspace_id text, name text NOT NULL, token text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL, doc jsonb NOT NULL);
      CREATE INDEX tokens_ws ON tokens(workspace_id);
      CREATE TABLE datasources (id text PRIMARY KEY, workspace_id text NOT NULL, name text NOT NULL,
        created_at timestamptz NOT NULL, doc jsonb NOT NULL, UNIQUE (workspace_id, name));
      CREATE TABLE jobs (id text PRIMARY KEY, workspace_id text NOT NULL, kind text NOT NULL, status text NOT NULL,
        created_at timestamptz NOT NULL, doc jsonb NOT NULL);
      CREATE INDEX jobs_ws_created ON jobs(workspace_id, created_at DESC);
      CREATE INDEX jobs_status ON jobs(status)`,
  },
  {
    version: 2,
    sql: resourceTable('pipes'),
  },
  {
    version: 3,
    sql: resourceTable('variables'),
  },
  {
    version: 4,
    sql: resourceTable('connections'),
  },
  {
    version: 5,
    sql: `
      CREATE TABLE intents (id text PRIMARY KEY, workspace_id text NOT NULL, kind text NOT NULL,
        created_at timestamptz NOT NULL, doc jsonb NOT NULL)`,
  },
  {
    // Scale-out: versions checked by every update, jobs claimed by any copy under a lease, the
    // schedules' last ticks claimed by compare-and-set, and a notification per change of a cached
    // record so every copy drops what it cached (LISTEN pipit_catalog).
    version: 6,
    sql: `
      ALTER TABLE tokens ADD COLUMN version bigint NOT NULL DEFAULT 1;
      ALTER TABLE datasources ADD COLUMN version bigint NOT NULL DEFAULT 1;
      ALTER TABLE pipes ADD COLUMN version bigint NOT NULL DEFAULT 1;
      ALTER TABLE variables ADD COLUMN version bigint NOT NULL DEFAULT 1;
      ALTER TABLE connections ADD COLUMN version bigint NOT NULL DEFAULT 1;
      ALTER TABLE jobs ADD COLUMN version bigint NOT NULL DEFAULT 1;
      ALTER TABLE jobs ADD COLUMN payload jsonb;
      ALTER TABLE jobs ADD COLUMN locked_by text;
      ALTER TABLE jobs ADD COLUMN locked_until timestamptz;
      CREATE INDEX jobs_waiting ON jobs(created_at) WHERE status = 'waiting';
      CREATE TABLE schedule_ticks (pipe_id text PRIMARY KEY, workspace_id text NOT NULL, origin text NOT NULL, last_tick timestamptz NOT NULL);
      CREATE FUNCTION pipit_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE r jsonb;
      BEGIN
        IF TG_OP = 'DELETE' THEN r := to_jsonb(OLD); ELSE r := to_jsonb(NEW); END IF;
        PERFORM pg_notify('pipit_catalog', json_build_object('t', TG_TABLE_NAME, 'w', r->>'workspace_id', 'id', r->>'id', 's', r->>'status')::text);
        RETURN NULL;
      END $$;
      CREATE TRIGGER workspaces_notify AFTER INSERT OR UPDATE OR DELETE ON workspaces FOR EACH ROW EXECUTE FUNCTION pipit_notify_change();
      CREATE TRIGGER tokens_notify AFTER INSERT OR UPDATE OR DELETE ON tokens FOR EACH ROW EXECUTE FUNCTION pipit_notify_change();
      CREATE TRIGGER datasources_notify AFTER INSERT OR UPDATE OR DELETE ON datasources FOR EACH ROW EXECUTE FUNCTION pipit_notify_change();
      CREATE TRIGGER pipes_notify AFTER INSERT OR UPDATE OR DELETE ON pipes FOR EACH ROW EXECUTE FUNCTION pipit_notify_change();
      CREATE TRIGGER variables_notify AFTER INSERT OR UPDATE OR DELETE ON variables FOR EACH ROW EXECUTE FUNCTION pipit_notify_change();
      CREATE TRIGGER connections_notify AFTER INSERT OR UPDATE OR DELETE ON connections FOR EACH ROW EXECUTE FUNCTION pipit_notify_change();
      CREATE TRIGGER jobs_insert_notify AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION pipit_notify_change();
      CREATE TRIGGER jobs_status_notify AFTER UPDATE ON jobs FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION pipit_notify_change()`,
  },
  {
    // Intents held like jobs: the copy running a change renews its lease; only an intent whose
    // copy died (lease lapsed) is rolled forward or back by another copy.
    version: 7,
    sql: `
      ALTER TABLE intents ADD COLUMN locked_by text;
      ALTER TABLE intents ADD COLUMN locked_until timestamptz`,
  },
];
