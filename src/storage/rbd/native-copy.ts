// The librbd module (native/src/rbd-copy.cc): where it is loaded from and its TypeScript shape.
// Loaded on first use only, so hosts and tests that never restore to a new domain never load
// librbd.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface NativeCopyRequest {
  readonly confPath: string;
  readonly clientId: string;
  readonly keyringPath: string;
  /** rados_osd_op_timeout, rados_mon_op_timeout and client_mount_timeout, in seconds. */
  readonly opTimeoutSeconds?: number;
  readonly pool: string;
  readonly namespace?: string;
  readonly image: string;
  /** The snapshot's id (`rbd snap ls --all`): group snapshots' members have no usable name. */
  readonly snapId: number;
  readonly destPool: string;
  readonly destNamespace?: string;
  /** Created by the copy; fails with errno 17 when it exists. */
  readonly destImage: string;
  /** Image metadata written last, when every byte is copied. */
  readonly markerKey?: string;
  readonly markerValue?: string;
}

export interface NativeCopyResult {
  /** Size of the snapshot (and of the new image), bytes. */
  readonly size: number;
  /** Bytes read and written: the allocated objects only. */
  readonly bytesCopied: number;
  readonly extents: number;
  readonly elapsedMs: number;
}

/** A rejection of copySnapshot: `errno` is positive, `operation` says which step failed. */
export interface NativeCopyError extends Error {
  readonly errno: number;
  readonly operation: string;
}

export interface NativeRbd {
  copySnapshot(request: NativeCopyRequest): Promise<NativeCopyResult>;
}

const MODULE = join("native", "build", "Release", "vmsnap_rbd.node");
let loaded: NativeRbd | undefined;

/** The module, loaded once; found by walking up from this file like the libvirt addon. */
export function loadNativeRbd(): NativeRbd {
  if (loaded) return loaded;
  const here = dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = dirname(dir)) {
    const candidate = join(dir, MODULE);
    if (existsSync(candidate)) {
      loaded = createRequire(import.meta.url)(candidate) as NativeRbd;
      return loaded;
    }
    if (dirname(dir) === dir) {
      throw new Error(
        `librbd module ${MODULE} not found above ${here}: install librbd-dev and librados-dev, then rebuild the addon`,
      );
    }
  }
}
