// Histogram bucket boundaries, in seconds. The controller-runtime and workqueue ones are the
// upstream values exactly, so a dashboard's `histogram_quantile` over a vmsnap controller gives the
// same resolution as over any Go controller; vmsnap's own are fitted to what they measure.

/** controller-runtime's `controller_runtime_reconcile_time_seconds` buckets: 5 ms … 60 s. */
export const RECONCILE_TIME_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
  1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];

/**
 * client-go/controller-runtime workqueue latency buckets: `ExponentialBuckets(10e-9, 10, 12)`,
 * i.e. 10 ns … 1000 s. Computed from powers of ten rather than by repeated multiplication so the
 * `le` labels print as `1e-8`, `0.001`, ... without floating-point noise.
 */
export const WORKQUEUE_DURATION_BUCKETS: readonly number[] = Array.from({ length: 12 }, (_, i) =>
  Number(`1e${i - 8}`),
);

/**
 * The guest's frozen window: 10 ms (a quick RBD group snapshot) to 5 min (the largest allowed
 * `freezeTimeout`). 10 s is a boundary because it is the default `freezeTimeout` and the Windows
 * VSS limit, so "share of freezes within 10 s" is read straight off one bucket.
 */
export const FROZEN_WINDOW_BUCKETS: readonly number[] = [
  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 180, 300,
];

/**
 * vCPU pause while disks and RAM are captured: as short as the freeze, but saving a large guest's
 * memory can take minutes, so the top is 10 min.
 */
export const DOWNTIME_BUCKETS: readonly number[] = [
  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600,
];

/** Time spent in one phase: sub-second for a freeze, up to the whole-snapshot deadline range. */
export const PHASE_DURATION_BUCKETS: readonly number[] = [
  0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800,
];

/** One `rbd` CLI or libvirt snapshot call: tens of ms normally, up to its own timeout. */
export const STORAGE_OPERATION_BUCKETS: readonly number[] = [
  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
];

/**
 * How late a scheduled run was created after its instant: milliseconds when the agent is up (a
 * timer and one API write), up to the 10 min a typical `startingDeadline` allows after an outage.
 */
export const SCHEDULE_LATENESS_BUCKETS: readonly number[] = [
  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
];
