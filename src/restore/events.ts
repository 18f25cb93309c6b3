// What the VMRestore effects report to the machine; each carries the time it happened.
import type {
  Consistency,
  RestoredDiskStatus,
  RestoreFailureReason,
  ThawedBy,
} from "../api/restore-types.ts";

export type RestoreEvent =
  | {
      readonly type: "VALIDATED";
      readonly at: number;
      readonly targetDomain: string;
      readonly targetUUID: string;
      readonly node: string;
      readonly consistency: Consistency;
      readonly restoresMemory: boolean;
      /** The in-place target runs and spec.stopRunningTarget allows stopping it. */
      readonly stopFirst: boolean;
    }
  | { readonly type: "TARGET_STOPPED"; readonly at: number }
  | {
      readonly type: "DISKS_RESTORED";
      readonly at: number;
      readonly disks: readonly RestoredDiskStatus[];
    }
  /** The RAM image is loaded, vCPUs paused; the guest must be thawed by `thawDeadline`. */
  | { readonly type: "MEMORY_RESTORED"; readonly at: number; readonly thawDeadline: number }
  | { readonly type: "RESUMED"; readonly at: number }
  /** The agent confirmed the guest thawed; `filesystems` were frozen (a frozen RAM image). */
  | {
      readonly type: "THAWED";
      readonly at: number;
      readonly filesystems: number;
      /** Guard: the thaw guard had thawed it first (its record on the domain gives `at`). */
      readonly by: ThawedBy;
    }
  | { readonly type: "COMPLETED"; readonly at: number }
  | {
      readonly type: "FAILED";
      readonly at: number;
      readonly reason: RestoreFailureReason;
      readonly message: string;
    }
  /** Lets the machine judge its deadlines. */
  | { readonly type: "TICK"; readonly at: number }
  /** Internal: settles the routing of a state read back from status (step.ts). */
  | { readonly type: "REHYDRATED"; readonly at: number };
