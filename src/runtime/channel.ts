// A small async queue: the worker's messages are pushed in, one request's generator pulls them out.
export class Channel<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void) | null = null;
  private failWaiting: ((e: Error) => void) | null = null;
  private error: Error | null = null;
  /** the error waits until the items pushed before it have been taken */
  private errorAfterItems = false;

  push(item: T): void {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = this.failWaiting = null;
      w({ value: item, done: false });
    } else this.items.push(item);
  }

  /** Ends the channel with an error: at once (an abort), or with `afterItems` once the items
   * already pushed have been taken (a worker that exits after sending a request's last results
   * must not take them away from a consumer that has not read them yet). An error at once
   * replaces a waiting one; otherwise the first error stands. */
  fail(err: Error, afterItems = false): void {
    if (this.error && !(this.errorAfterItems && !afterItems)) return;
    this.error = err;
    this.errorAfterItems = afterItems;
    if (this.failWaiting) {
      const f = this.failWaiting;
      this.waiting = this.failWaiting = null;
      f(err);
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.error && !(this.errorAfterItems && this.items.length)) return Promise.reject(this.error);
        if (this.items.length) return Promise.resolve({ value: this.items.shift()!, done: false });
        return new Promise((resolve, reject) => {
          this.waiting = resolve;
          this.failWaiting = reject;
        });
      },
    };
  }
}
