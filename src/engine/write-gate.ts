/**
 * The write gate of one process (Engine.exclusiveWrites): every insert holds it shared, a change that
 * must see a table at one instant (attaching a materialized view and snapshotting its parts) holds it
 * exclusively. Both engines use it; across several Pipit copies the catalog adds its own lock around it.
 */
export class WriteGate {
  private writers = 0;
  private gate: Promise<void> | null = null;
  private drained: Array<() => void> = [];

  /** Runs an insert: waits while an exclusive section runs. */
  async shared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    this.writers++;
    try {
      return await fn();
    } finally {
      this.writers--;
      if (this.writers === 0) for (const r of this.drained.splice(0)) r();
    }
  }

  /** Runs `fn` once running inserts have ended, holding new ones back until it ends. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    let release!: () => void;
    this.gate = new Promise<void>((r) => (release = r));
    try {
      if (this.writers > 0) await new Promise<void>((r) => this.drained.push(r));
      return await fn();
    } finally {
      this.gate = null;
      release();
    }
  }
}
