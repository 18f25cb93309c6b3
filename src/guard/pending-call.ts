// An arm or disarm waiting for the guard's acknowledgement. It settles once: answered, failed,
// or timed out on its own — a caller about to freeze a guest must never wait unbounded.

export class PendingCall {
  readonly promise: Promise<void>;
  private done = false;
  private resolvePromise!: () => void;
  private rejectPromise!: (error: Error) => void;
  private readonly timer: NodeJS.Timeout;

  /** `onTimeout` runs when `timeoutMs` pass unanswered and returns the error to fail with. */
  constructor(timeoutMs: number, onTimeout: (call: PendingCall) => Error) {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolvePromise = resolve;
      this.rejectPromise = reject;
    });
    // Ref'd on purpose: an awaited arm keeps the controller alive until it is answered, although
    // nothing else of the guard does.
    this.timer = setTimeout(() => this.reject(onTimeout(this)), timeoutMs);
  }

  get settled(): boolean {
    return this.done;
  }

  resolve(): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.resolvePromise();
  }

  reject(error: Error): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.rejectPromise(error);
  }
}
