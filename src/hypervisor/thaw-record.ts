// A note on the guest of who thawed it and when. A guard that thaws a guest because its
// controller died tells that controller over its connection — gone when the controller was
// killed, and a spawned guard exits right after; an agent killed right after its own thaw never
// writes status. The next agent then finds the guest already thawed and could only say "thawed
// by the time I looked", seconds late. So whoever thaws writes the time into the running
// domain's own <metadata> (live only: it goes with the domain and is gone when the domain
// stops), and whoever finishes the attempt reads it back: status reports when the guest was
// really thawed, and by whom.
//
//   <thaw xmlns="https://vmsnap.io/xmlns/thaw/v1" id="<attempt UID>" at="<epoch ms>"
//         filesystems="2" by="guard"/>
import { XMLParser, XMLValidator } from "fast-xml-parser";
import type { Hypervisor } from "./connection.ts";
import { ModificationImpact } from "./flags.ts";

/** The XML namespace of the element: the key virDomainGetMetadata looks it up by. */
export const THAW_RECORD_URI = "https://vmsnap.io/xmlns/thaw/v1";
const THAW_RECORD_PREFIX = "vmsnap-thaw";

export interface ThawRecord {
  /** The attempt (VMSnapshot or VMRestore UID) whose guard entry fired. */
  readonly id: string;
  /** When the thaw call returned, epoch ms. */
  readonly at: number;
  /** Filesystems the thaw thawed (0: nothing was frozen). */
  readonly filesystems: number;
  readonly by: "agent" | "guard";
}

const ID = /^[A-Za-z0-9-]{1,64}$/;

/** The element for `record`; ids are Kubernetes UIDs, so nothing needs escaping (checked). */
export function thawRecordXml(record: ThawRecord): string {
  if (!ID.test(record.id)) throw new Error(`not an attempt id: ${JSON.stringify(record.id)}`);
  if (!Number.isSafeInteger(record.at) || !Number.isSafeInteger(record.filesystems))
    throw new Error("thaw record times and counts are whole numbers");
  return `<thaw id="${record.id}" at="${record.at}" filesystems="${record.filesystems}" by="${record.by}"/>`;
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "",
  removeNSPrefix: true,
  parseAttributeValue: false,
  processEntities: false,
});

/** The record in an element as virDomainGetMetadata returns it; undefined unless well-formed. */
export function parseThawRecord(xml: string): ThawRecord | undefined {
  if (XMLValidator.validate(xml) !== true) return undefined;
  const thaw = (parser.parse(xml) as Record<string, unknown>).thaw;
  if (typeof thaw !== "object" || thaw === null) return undefined;
  const { id, at, filesystems, by } = thaw as Record<string, unknown>;
  const count = (v: unknown) => (typeof v === "string" && /^\d{1,16}$/.test(v) ? Number(v) : NaN);
  const record = { id, at: count(at), filesystems: count(filesystems), by };
  if (typeof id !== "string" || !ID.test(id) || Number.isNaN(record.at)) return undefined;
  if (Number.isNaN(record.filesystems) || (by !== "agent" && by !== "guard")) return undefined;
  return record as ThawRecord;
}

/** Writes the record on the running domain with this UUID (live definition only). */
export function writeThawRecord(
  hv: Pick<Hypervisor, "setDomainMetadata">,
  uuid: string,
  record: ThawRecord,
  timeoutMs: number,
): Promise<void> {
  return hv.setDomainMetadata(uuid, THAW_RECORD_URI, THAW_RECORD_PREFIX, thawRecordXml(record), {
    flags: ModificationImpact.Live,
    timeoutMs,
  });
}

/** The record on the domain with this UUID if it names attempt `id`; undefined otherwise. */
export async function readThawRecord(
  hv: Pick<Hypervisor, "domainMetadata">,
  uuid: string,
  id: string,
  timeoutMs: number,
): Promise<ThawRecord | undefined> {
  const xml = await hv.domainMetadata(uuid, THAW_RECORD_URI, {
    byUUID: true,
    flags: ModificationImpact.Live,
    timeoutMs,
  });
  const record = xml === undefined ? undefined : parseThawRecord(xml);
  return record?.id === id ? record : undefined;
}

/**
 * The guard's record of its thaw of attempt `id`. A thaw that found nothing frozen (`thawed` 0)
 * still says the guest was thawed by then — an agent killed with its own thaw call in flight
 * leaves no other trace — but never replaces a record the attempt already has: the agent's, of
 * the thaw that really thawed it, is the better one.
 */
export async function recordGuardThaw(
  hv: Pick<Hypervisor, "domainMetadata" | "setDomainMetadata">,
  uuid: string,
  id: string,
  thawed: number,
  timeoutMs: number,
): Promise<void> {
  const at = Date.now();
  if (thawed === 0 && (await readThawRecord(hv, uuid, id, timeoutMs)) !== undefined) return;
  await writeThawRecord(hv, uuid, { id, at, filesystems: thawed, by: "guard" }, timeoutMs);
}
