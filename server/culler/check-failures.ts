/**
 * Failed "is a kernel computing?" checks in a row, per server. A failed check is never read as
 * "idle" (a server that is slow to answer is often busy): the culler skips the server that
 * round and culls it only once the failures reach the configured limit in a row.
 */
export class CheckFailures {
  private readonly inARow = new Map<string, number>();

  constructor(private readonly limit: number) {}

  /** Count one failure; true when this one reaches the limit (the server may be culled). */
  fail(name: string): boolean {
    const n = (this.inARow.get(name) ?? 0) + 1;
    this.inARow.set(name, n);
    return n >= this.limit;
  }

  /** How many checks of this server failed in a row so far. */
  count(name: string): number {
    return this.inARow.get(name) ?? 0;
  }

  /** A check answered (or the server was active, or culled): start counting afresh. */
  reset(name: string): void {
    this.inARow.delete(name);
  }

  /** Forget servers that are gone. */
  keepOnly(live: ReadonlySet<string>): void {
    for (const name of this.inARow.keys()) if (!live.has(name)) this.inARow.delete(name);
  }
}
