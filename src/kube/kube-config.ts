// The controller's KubeConfig: @kubernetes/client-node 2.0.x builds a new undici Agent for
// every API request (KubeConfig.applySecurityAuthentication), so every GET, PATCH and Event
// opened its own TCP connection and did a full TLS handshake. Measured with the throughput
// benchmark: about half of the controller's CPU per snapshot. This subclass hands every request
// of one cluster and user the same Agent, whose pool keeps connections alive between requests.
//
// The library reads the TLS material afresh for each request (CA and client-certificate files,
// certificates an exec plugin returns). A reused Agent would keep the old material, so it is
// renewed after `renewAfterMs`: rotated credentials take effect within that time, as they do
// with client-go's periodic certificate reload. Headers (bearer tokens, re-read from their file
// by the library) are still set per request.
import { KubeConfig, type RequestContext } from "@kubernetes/client-node";

type Dispatcher = NonNullable<ReturnType<RequestContext["getDispatcher"]>>;

export interface ConnectionReuseOptions {
  /** How long one Agent serves before the next request builds a new one. */
  readonly renewAfterMs?: number;
  readonly now?: () => number;
}

export const DEFAULT_RENEW_AFTER_MS = 5 * 60_000;

export class ConnectionReusingKubeConfig extends KubeConfig {
  private shared: { key: string; dispatcher: Dispatcher; since: number } | undefined;
  private readonly renewAfterMs: number;
  private readonly now: () => number;

  constructor(options: ConnectionReuseOptions = {}) {
    super();
    this.renewAfterMs = options.renewAfterMs ?? DEFAULT_RENEW_AFTER_MS;
    this.now = options.now ?? Date.now;
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    // None for plain http without TLS options: fetch's global dispatcher, which pools already.
    const fresh = context.getDispatcher();
    if (fresh === undefined) return;
    const key = `${this.getCurrentCluster()?.name ?? ""}\n${this.getCurrentUser()?.name ?? ""}`;
    const now = this.now();
    const shared = this.shared;
    if (shared && shared.key === key && now - shared.since < this.renewAfterMs) {
      // The fresh Agent never connected: nothing to close, it is simply dropped.
      context.setDispatcher(shared.dispatcher);
      return;
    }
    this.shared = { key, dispatcher: fresh, since: now };
    // Requests still running on the old Agent finish; then its connections close.
    shared?.dispatcher.close().catch(() => undefined);
  }

  /**
   * Drops the shared Agent at once, for a connection that looks dead (a silent watch): requests
   * still on it fail and are retried by their callers; the next request connects afresh.
   */
  dropConnections(): void {
    const shared = this.shared;
    this.shared = undefined;
    shared?.dispatcher.destroy().catch(() => undefined);
  }

  /** Closes the shared Agent's idle connections (at shutdown; in-flight requests finish). */
  async closeConnections(): Promise<void> {
    const shared = this.shared;
    this.shared = undefined;
    await shared?.dispatcher.close();
  }
}
