// How the backend reaches Ceph: the same three things a QEMU or a kubelet plugin needs (conf,
// cephx id, keyring), plus the timeouts that make every call fail fast instead of hanging.

export interface RbdConfig {
  /** ceph.conf with the monitors (`mon_host`). */
  readonly confPath: string;
  /** cephx user without the `client.` prefix, e.g. `vmsnap`. Needs caps `profile rbd`. */
  readonly clientId: string;
  readonly keyringPath: string;
  /**
   * Seconds Ceph may take per operation, passed as `--rados-osd-op-timeout`,
   * `--rados-mon-op-timeout` and `--client-mount-timeout` (a dead mon is only caught by the last).
   * Without them `rbd` waits for minutes when an OSD is down. Default 10.
   */
  readonly opTimeoutSeconds?: number;
  /**
   * Milliseconds after which the `rbd` process is killed whatever it is doing (one command may
   * chain several Ceph operations). Default: 3 × opTimeoutSeconds + 5 s.
   */
  readonly processTimeoutMs?: number;
  /** The `rbd` executable; default `rbd` from PATH. */
  readonly rbdPath?: string;
}

export const DEFAULT_OP_TIMEOUT_SECONDS = 10;

export function opTimeoutSeconds(config: RbdConfig): number {
  return config.opTimeoutSeconds ?? DEFAULT_OP_TIMEOUT_SECONDS;
}

export function processTimeoutMs(config: RbdConfig): number {
  return config.processTimeoutMs ?? opTimeoutSeconds(config) * 3_000 + 5_000;
}
