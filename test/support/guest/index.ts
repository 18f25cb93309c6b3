// The tiny test guest: what end-to-end tests import. See guest.ts for the one-call launcher,
// build.ts for the cached kernel/initramfs, domain-xml.ts for the domain it runs in.
export { launchGuest, type Guest, type GuestOptions } from "./guest.ts";
export { guestImage, guestCacheDir, type GuestImage } from "./build.ts";
export {
  guestDomainXml,
  kernelCmdline,
  type AgentMode,
  type DiskSpec,
  type FileDiskSpec,
  type GuestDomainSpec,
  type HookMode,
  type RbdDiskSpec,
} from "./domain-xml.ts";
export { createExt4Qcow2, createExt4Raw } from "./disk.ts";
export {
  hookCalls,
  readConsole,
  sequenceGaps,
  waitForConsole,
  writerFileRecords,
  writerRecords,
  type HookCall,
  type WriterFileRecord,
  type WriterRecord,
} from "./console.ts";
export {
  createRbdGuestDisk,
  keyFromKeyring,
  monitorFromConf,
  type CephForGuest,
  type RbdGuestDiskOptions,
} from "./rbd-disk.ts";
