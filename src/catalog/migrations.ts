/**
 * Numbered, append-only catalog migrations. Never edit a released entry: add a new one.
 */
export interface Migration {
  version: number;
  sql: string;
}

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
    sql: `
      CREATE TABLE pipes (id text PRIMARY KEY, workspace_id text NOT NULL, name text NOT NULL,
        created_at timestamptz NOT NULL, doc jsonb NOT NULL, UNIQUE (workspace_id, name))`,
  },
  {
    version: 3,
    sql: `
      CREATE TABLE variables (id text PRIMARY KEY, workspace_id text NOT NULL, name text NOT NULL,
        created_at timestamptz NOT NULL, doc jsonb NOT NULL, UNIQUE (workspace_id, name))`,
  },
  {
    version: 4,
    sql: `
      CREATE TABLE connections (id text PRIMARY KEY, workspace_id text NOT NULL, name text NOT NULL,
        created_at timestamptz NOT NULL, doc jsonb NOT NULL, UNIQUE (workspace_id, name))`,
  },
  {
    version: 5,
    sql: `
      CREATE TABLE intents (id text PRIMARY KEY, workspace_id text NOT NULL, kind text NOT NULL,
        created_at timestamptz NOT NULL, doc jsonb NOT NULL)`,
  },
];
