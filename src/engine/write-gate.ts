/**
 * The write gate (Engine.exclusiveWrites): every insert holds it shared, a change that must see a
 * table at one instant (attaching a materialized view and snapshotting its parts) holds it
 * exclusively. Both engines keep one per process; with several copies on one engine, createApp
 * adds the lock that spans them (`acrossCopies`: PostgreSQL advisory locks on the shared catalog),
 * so the domain code asks the same gate in every mode.
 *
 * The gate covers the whole engine, not one data source: an insert into one data source reaches
 * others through materialized views, so a populate must hold back every insert while it snapshots.
 * Shared holders never wait for each other; only the short exclusive sections do.
 */
/**
 * What a shared holder is: an ingest insert (it may take the internal lane's slot kept for inserts)
 * or an INSERT statement (copy jobs, populates: the lane's other slots).
 */
export type WriterKind = 'insert' | 'statement';

export interface WriteLock {
  shared<T>(fn: () => Promise<T>, kind?: WriterKind): Promise<T>;
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

export class WriteGate implements WriteLock {
  private writers = 0;
  private gate: Promise<void> | null = null;
  private drained: Array<() => void> = [];
  /** The lock other copies of the server hold too (none in embedded mode). */
  private outer: WriteLock | null = null;

  /** Also takes `lock` (held across copies) inside this process's gate, in both modes. */
  acrossCopies(lock: WriteLock): void {
    this.outer = lock;
  }

  /** Runs an insert: waits while an exclusive section runs (in this copy or another). */
  async shared<T>(fn: () => Promise<T>, kind: WriterKind = 'insert'): Promise<T> {
    while (this.gate) await this.gate;
    this.writers++;
    try {
      return await (this.outer ? this.outer.shared(fn, kind) : fn());
    } finally {
      this.writers--;
      if (this.writers === 0) for (const r of this.drained.splice(0)) r();
    }
  }

  /** Runs `fn` once running inserts (of every copy) have ended, holding new ones back until it ends. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    let release!: () => void;
    this.gate = new Promise<void>((r) => (release = r));
    try {
      if (this.writers > 0) await new Promise<void>((r) => this.drained.push(r));
      return await (this.outer ? this.outer.exclusive(fn) : fn());
    } finally {
      this.gate = null;
      release();
    }
  }
}
