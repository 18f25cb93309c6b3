// A real libvirtd for end-to-end tests: the entry point the tests import. `useLibvirtd()` brings
// the machine's shared daemon up (or joins it), removes leftovers of crashed runs, and arranges,
// once per test process, that this run's domains and secrets are removed and the daemon is
// released at the end of the run (see test/support/libvirt/daemon.ts for who stops it).
//
//   const libvirt = await useLibvirtd();
//   const name = uniqueDomainName("boot");
//   await createDomain(name, xml);
import { onTeardown } from "../teardown.ts";
import { type LibvirtDaemon, acquireDaemon, releaseDaemon } from "./daemon.ts";
import { cleanupDomains } from "./domains.ts";
import { cleanupSecrets } from "./secrets.ts";

export type { LibvirtDaemon } from "./daemon.ts";
export { LIBVIRTD_RUN_DIR, daemonAnswers } from "./daemon.ts";
export { SYSTEM_URI, VirshError, libvirtCodeOf, virsh, type VirshOptions } from "./virsh.ts";
export {
  DOMAIN_PREFIX,
  cleanupDomains,
  createDomain,
  defineDomain,
  destroyDomain,
  domainState,
  listDomains,
  removeDomain,
  startDomain,
  undefineDomain,
  uniqueDomainName,
} from "./domains.ts";
export { cleanupSecrets, defineCephSecret, undefineSecret, type CephSecret } from "./secrets.ts";
export { agentCommand, freezeStatus, fsFreeze, fsThaw, type AgentCallOptions } from "./agent.ts";
export { LIBVIRT_PACKAGES, ensurePackages } from "./apt.ts";

let shared: Promise<LibvirtDaemon> | undefined;

/** The shared libvirtd, started or joined once per test process. */
export function useLibvirtd(): Promise<LibvirtDaemon> {
  shared ??= (async () => {
    const daemon = await acquireDaemon();
    // Registered before anything else can fail, so the lease is always given back.
    onTeardown(async () => {
      try {
        await cleanupDomains();
        await cleanupSecrets();
      } finally {
        await releaseDaemon();
      }
    });
    await cleanupDomains();
    await cleanupSecrets();
    return daemon;
  })();
  return shared;
}
