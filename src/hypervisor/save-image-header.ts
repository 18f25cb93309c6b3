// libvirt's QEMU save-image header, written by vmsnap in front of a migration stream QEMU writes
// itself (a background snapshot), so the file is one virDomainRestoreFlags loads like an image
// libvirt saved. Pure: bytes in, bytes out.
//
// Layout, libvirt 9.0 (src/qemu/qemu_saveimage.{h,c}; checked against a `virsh save` image made
// on this machine, see docs/live-memory-facts.md), all integers native-endian (little here):
//   0   magic[16]      "LibvirtQemudPart" while QEMU writes, "LibvirtQemudSave" once complete
//   16  version u32    2
//   20  data_len u32   bytes after the header up to the stream: XML + NUL (+ cookie + NUL) + padding
//   24  was_running u32  1: a restore without VIR_DOMAIN_SAVE_PAUSED starts the vCPUs
//   28  compressed u32 0: raw stream
//   32  cookieOffset u32  offset of the cookie in the data (0: no cookie)
//   36  unused u32[14] zero
//   92  the domain XML, NUL, [cookie, NUL], zero padding (libvirt leaves 64 KiB for XML edits)
//   92 + data_len  QEMU's migration stream ("QEVM")
// libvirt refuses to restore an image whose magic is still the partial one ("save image is
// incomplete"), which is what makes an interrupted write harmless.

export const SAVE_MAGIC = "LibvirtQemudSave";
export const PARTIAL_MAGIC = "LibvirtQemudPart";
export const SAVE_VERSION = 2;
export const HEADER_BYTES = 92;
/** libvirt's own padding after the XML, so the XML can later be edited in place. */
export const XML_PADDING_BYTES = 64 * 1024;

export interface SaveImageHeaderSpec {
  /** The domain XML to restore with: libvirt writes the migratable XML with secure info. */
  readonly xml: string;
  /** libvirt's save cookie (`<cookie>…</cookie>`, the CPU it started with); optional. */
  readonly cookie?: string;
  /** Whether a restore without the PAUSED flag starts the vCPUs. */
  readonly wasRunning: boolean;
}

export interface SaveImageHeader {
  readonly complete: boolean;
  readonly version: number;
  readonly wasRunning: boolean;
  readonly compressed: number;
  readonly xml: string;
  readonly cookie: string | undefined;
  /** File offset where QEMU's migration stream starts. */
  readonly streamOffset: number;
}

/**
 * Header, XML, cookie and padding, with the partial magic: the bytes QEMU's stream must follow.
 * Mark the image complete with `completeMagic()` at offset 0 once QEMU reports it done.
 */
export function partialSaveImageHeader(spec: SaveImageHeaderSpec): Buffer {
  if (spec.xml.includes("\0") || spec.cookie?.includes("\0")) {
    throw new Error("save image header: the XML and the cookie must not contain NUL");
  }
  const xml = Buffer.from(`${spec.xml}\0`, "utf8");
  const cookie = spec.cookie === undefined ? undefined : Buffer.from(`${spec.cookie}\0`, "utf8");
  const used = xml.length + (cookie?.length ?? 0);
  const dataLen = used + XML_PADDING_BYTES;
  const out = Buffer.alloc(HEADER_BYTES + dataLen);
  out.write(PARTIAL_MAGIC, 0, "latin1");
  out.writeUInt32LE(SAVE_VERSION, 16);
  out.writeUInt32LE(dataLen, 20);
  out.writeUInt32LE(spec.wasRunning ? 1 : 0, 24);
  out.writeUInt32LE(0, 28);
  out.writeUInt32LE(cookie ? xml.length : 0, 32);
  xml.copy(out, HEADER_BYTES);
  cookie?.copy(out, HEADER_BYTES + xml.length);
  return out;
}

/** The 16 bytes to write at offset 0 once the stream is complete. */
export function completeMagic(): Buffer {
  return Buffer.from(SAVE_MAGIC, "latin1");
}

/** Reads a header as libvirt 9.0 does; throws on what libvirt would refuse. */
export function parseSaveImageHeader(bytes: Buffer): SaveImageHeader {
  if (bytes.length < HEADER_BYTES) throw new Error("save image header: shorter than 92 bytes");
  const magic = bytes.toString("latin1", 0, 16);
  if (magic !== SAVE_MAGIC && magic !== PARTIAL_MAGIC) {
    throw new Error(`save image header: bad magic ${JSON.stringify(magic)}`);
  }
  const version = bytes.readUInt32LE(16);
  const dataLen = bytes.readUInt32LE(20);
  const cookieOffset = bytes.readUInt32LE(32);
  if (version !== SAVE_VERSION) throw new Error(`save image header: version ${version}, not 2`);
  if (dataLen === 0 || bytes.length < HEADER_BYTES + dataLen) {
    throw new Error(`save image header: data length ${dataLen} does not fit the bytes given`);
  }
  const data = bytes.subarray(HEADER_BYTES, HEADER_BYTES + dataLen);
  const xmlLen = cookieOffset === 0 ? dataLen : cookieOffset;
  const untilNul = (b: Buffer) => {
    const end = b.indexOf(0);
    return b.toString("utf8", 0, end < 0 ? b.length : end);
  };
  return {
    complete: magic === SAVE_MAGIC,
    version,
    wasRunning: bytes.readUInt32LE(24) === 1,
    compressed: bytes.readUInt32LE(28),
    xml: untilNul(data.subarray(0, xmlLen)),
    cookie: cookieOffset === 0 ? undefined : untilNul(data.subarray(cookieOffset)),
    streamOffset: HEADER_BYTES + dataLen,
  };
}
