/**
 * Runs a reconcile pass one at a time; a request while one runs queues at most
 * one more, so a burst of change events costs one extra pass, not one each.
 * A pass that throws is reported to `onError` and does not stop later passes.
 */
export class CoalescedPasses {
  private chain: Promise<void> = Promise.resolve();
  private queued = false;

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Resolves when the pass this request joined has finished. */
  schedule(): Promise<void> {
    if (this.queued) return this.chain;
    this.queued = true;
    this.chain = this.chain.then(() => {
      this.queued = false;
      return this.pass().catch(this.onError);
    });
    return this.chain;
  }
}
