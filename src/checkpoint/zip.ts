// The subset of ZIP that PyTorch's `torch.save` uses: stored (uncompressed) entries whose data starts
// on a 64-byte boundary (padding in an "FB" local extra field), data descriptors, and ZIP64 records.
// The reader trusts nothing: every offset and size is checked against the file and each other, only
// stored entries are accepted (so a compression bomb cannot expand), and entry data may not overlap.
import type { FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { CheckpointError } from './errors.js';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_DESCRIPTOR = 0x08074b50;
const U32_MAX = 0xffffffff;

/** PyTorch aligns every record's data to this many bytes (`kFieldAlignment`). */
export const FIELD_ALIGNMENT = 64;

export interface ZipEntry {
  name: string;
  /** Absolute file offset of the entry's data. */
  dataOffset: number;
  size: number;
  crc32: number;
}

export interface ZipLimits {
  /** Largest central directory accepted (bytes). */
  maxCentralDirectoryBytes: number;
  maxEntries: number;
}

export const DEFAULT_ZIP_LIMITS: ZipLimits = { maxCentralDirectoryBytes: 64 << 20, maxEntries: 1_000_000 };

async function readAt(fh: FileHandle, offset: number, length: number, path: string): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
    if (bytesRead === 0) throw new CheckpointError('CNM_ERR_PT_FORMAT', `unexpected end of file reading ${length} bytes at offset ${offset}`, path);
    done += bytesRead;
  }
  return buf;
}

function u64(buf: Buffer, at: number, what: string, path: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CheckpointError('CNM_ERR_PT_FORMAT', `${what} ${v} is absurdly large`, path);
  return Number(v);
}

/** Reads and validates the central directory of a stored-only zip archive. */
export async function readZipDirectory(fh: FileHandle, fileSize: number, path: string, limits: ZipLimits = DEFAULT_ZIP_LIMITS): Promise<ZipEntry[]> {
  const bad = (why: string): never => {
    throw new CheckpointError('CNM_ERR_PT_FORMAT', `not a valid torch zip archive: ${why}`, path);
  };
  if (fileSize < 22) bad(`file is only ${fileSize} bytes`);
  const tailLen = Math.min(fileSize, 22 + 0xffff + 20);
  const tail = await readAt(fh, fileSize - tailLen, tailLen, path);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === SIG_EOCD && i + 22 + tail.readUInt16LE(i + 20) === tail.length) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) bad('no end-of-central-directory record (truncated?)');
  let entries = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (tail.readUInt16LE(eocd + 4) !== 0 || tail.readUInt16LE(eocd + 6) !== 0) bad('multi-disk archives are not supported');
  const eocdAbs = fileSize - tailLen + eocd;
  // ZIP64: a locator sits right before the EOCD; torch always writes one.
  let cdLimit = eocdAbs;
  if (eocd >= 20 && tail.readUInt32LE(eocd - 20) === SIG_ZIP64_LOCATOR) {
    const z64Offset = u64(tail, eocd - 20 + 8, 'ZIP64 record offset', path);
    if (z64Offset + 56 > eocdAbs - 20) bad(`ZIP64 end record offset ${z64Offset} is out of range`);
    const z = await readAt(fh, z64Offset, 56, path);
    if (z.readUInt32LE(0) !== SIG_ZIP64_EOCD) bad('ZIP64 locator points at no ZIP64 end record');
    entries = u64(z, 32, 'entry count', path);
    cdSize = u64(z, 40, 'central directory size', path);
    cdOffset = u64(z, 48, 'central directory offset', path);
    cdLimit = z64Offset;
  }
  if (entries > limits.maxEntries) throw new CheckpointError('CNM_ERR_LIMIT', `archive declares ${entries} entries (limit ${limits.maxEntries})`, path);
  if (cdSize > limits.maxCentralDirectoryBytes) throw new CheckpointError('CNM_ERR_LIMIT', `central directory is ${cdSize} bytes (limit ${limits.maxCentralDirectoryBytes})`, path);
  if (cdOffset + cdSize > cdLimit) bad(`central directory [${cdOffset}, +${cdSize}) runs past its end record`);
  if (entries * 46 > cdSize) bad(`central directory of ${cdSize} bytes cannot hold ${entries} entries`);

  const cd = await readAt(fh, cdOffset, cdSize, path);
  const out: ZipEntry[] = [];
  const names = new Set<string>();
  let p = 0;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (let i = 0; i < entries; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== SIG_CENTRAL) bad(`central directory entry ${i} is malformed`);
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    const crc = cd.readUInt32LE(p + 16);
    let csize = cd.readUInt32LE(p + 20);
    let usize = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    let lho = cd.readUInt32LE(p + 42);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > cd.length) bad(`central directory entry ${i} runs past the directory`);
    let name: string;
    try {
      name = decoder.decode(cd.subarray(p + 46, p + 46 + nameLen));
    } catch {
      return bad(`entry ${i} has a name that is not UTF-8`);
    }
    if (flags & 1) bad(`entry ${name} is encrypted`);
    if (method !== 0) {
      throw new CheckpointError('CNM_ERR_PT_FORMAT', `entry ${name} is compressed (method ${method}); torch checkpoints store entries uncompressed, so this is not one (or a zip bomb)`, path);
    }
    // ZIP64 extended information: present fields follow the order usize, csize, offset.
    let x = p + 46 + nameLen;
    const xEnd = x + extraLen;
    while (x + 4 <= xEnd) {
      const id = cd.readUInt16LE(x);
      const len = cd.readUInt16LE(x + 2);
      if (x + 4 + len > xEnd) bad(`entry ${name} has a malformed extra field`);
      if (id === 1) {
        let q = x + 4;
        const take = (what: string): number => {
          if (q + 8 > x + 4 + len) bad(`entry ${name} lacks the ZIP64 ${what}`);
          const v = u64(cd, q, `ZIP64 ${what}`, path);
          q += 8;
          return v;
        };
        if (usize === U32_MAX) usize = take('size');
        if (csize === U32_MAX) csize = take('compressed size');
        if (lho === U32_MAX) lho = take('header offset');
      }
      x += 4 + len;
    }
    if (csize !== usize) bad(`stored entry ${name} has compressed size ${csize} != size ${usize}`);
    if (names.has(name)) bad(`entry name ${name} appears twice`);
    names.add(name);
    out.push({ name, dataOffset: lho, size: usize, crc32: crc });
    p = end;
  }

  // Local headers: the name must match, and the data must fit before the central directory.
  for (const e of out) {
    const lho = e.dataOffset;
    if (lho + 30 > cdOffset) bad(`entry ${e.name} has its header at ${lho}, past the data area`);
    const h = await readAt(fh, lho, 30, path);
    if (h.readUInt32LE(0) !== SIG_LOCAL) bad(`entry ${e.name} has no local header at offset ${lho}`);
    const nameLen = h.readUInt16LE(26);
    const extraLen = h.readUInt16LE(28);
    if (h.readUInt16LE(8) !== 0) bad(`entry ${e.name} is compressed in its local header`);
    const nm = await readAt(fh, lho + 30, nameLen, path);
    if (nm.toString('utf8') !== e.name) bad(`local header name of ${e.name} does not match the central directory`);
    e.dataOffset = lho + 30 + nameLen + extraLen;
    if (e.dataOffset + e.size > cdOffset) bad(`entry ${e.name} data [${e.dataOffset}, +${e.size}) runs past the data area`);
  }
  // No two entries may share bytes: this bounds the total data by the file size.
  const sorted = [...out].sort((a, b) => a.dataOffset - b.dataOffset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    if (prev.dataOffset + prev.size > sorted[i]!.dataOffset - 30) bad(`entries ${prev.name} and ${sorted[i]!.name} overlap`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writer pieces. Byte layout follows what torch 1.13 (miniz) writes: version fields 0, flags 0x0808
// (data descriptor + UTF-8 names), zero time/date, a data descriptor after the data, and a ZIP64 end
// record + locator before the classic end record even for small archives.

export interface WrittenEntry {
  name: string;
  headerOffset: number;
  size: number;
  crc32: number;
}

/** The local header (+ ZIP64 extra when needed + "FB" padding) for an entry at `cursor`. */
export function localHeader(name: string, cursor: number, size: number, forceZip64 = false): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  const bigSize = forceZip64 || size >= U32_MAX;
  const bigOffset = forceZip64 || cursor >= U32_MAX;
  const z64Len = (bigSize ? 16 : 0) + (bigOffset ? 8 : 0);
  const z64 = z64Len > 0 ? 4 + z64Len : 0;
  // getPadding(): data must start on a 64-byte boundary after header, name, zip64 extra, "FB" + len.
  const start = cursor + 30 + nameBytes.length + z64 + 4;
  const pad = (FIELD_ALIGNMENT - (start % FIELD_ALIGNMENT)) % FIELD_ALIGNMENT;
  const buf = Buffer.alloc(30 + nameBytes.length + z64 + 4 + pad, 0);
  buf.writeUInt32LE(SIG_LOCAL, 0);
  buf.writeUInt16LE(0, 4);
  // miniz writes a data descriptor (flag bit 3) only for non-empty entries.
  buf.writeUInt16LE(size > 0 ? 0x0808 : 0x0800, 6);
  if (bigSize) {
    buf.writeUInt32LE(U32_MAX, 18);
    buf.writeUInt32LE(U32_MAX, 22);
  }
  buf.writeUInt16LE(nameBytes.length, 26);
  buf.writeUInt16LE(z64 + 4 + pad, 28);
  nameBytes.copy(buf, 30);
  let x = 30 + nameBytes.length;
  if (z64 > 0) {
    buf.writeUInt16LE(1, x);
    buf.writeUInt16LE(z64Len, x + 2);
    x += 4;
    if (bigSize) {
      buf.writeBigUInt64LE(BigInt(size), x);
      buf.writeBigUInt64LE(BigInt(size), x + 8);
      x += 16;
    }
    if (bigOffset) {
      buf.writeBigUInt64LE(BigInt(cursor), x);
      x += 8;
    }
  }
  buf.write('FB', x, 'latin1');
  buf.writeUInt16LE(pad, x + 2);
  buf.fill(0x5a, x + 4); // 'Z'
  return buf;
}

export function dataDescriptor(crc: number, size: number, forceZip64 = false): Buffer {
  const big = forceZip64 || size >= U32_MAX;
  const buf = Buffer.alloc(big ? 24 : 16);
  buf.writeUInt32LE(SIG_DESCRIPTOR, 0);
  buf.writeUInt32LE(crc >>> 0, 4);
  if (big) {
    buf.writeBigUInt64LE(BigInt(size), 8);
    buf.writeBigUInt64LE(BigInt(size), 16);
  } else {
    buf.writeUInt32LE(size, 8);
    buf.writeUInt32LE(size, 12);
  }
  return buf;
}

/** Central directory + ZIP64 end record + locator + end record, for entries written at `cdOffset`. */
export function centralDirectory(entries: readonly WrittenEntry[], cdOffset: number, forceZip64 = false): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const nameBytes = Buffer.from(e.name, 'utf8');
    const bigSize = forceZip64 || e.size >= U32_MAX;
    const bigOffset = forceZip64 || e.headerOffset >= U32_MAX;
    const z64Len = (bigSize ? 16 : 0) + (bigOffset ? 8 : 0);
    const extra = z64Len ? 4 + z64Len : 0;
    const b = Buffer.alloc(46 + nameBytes.length + extra, 0);
    b.writeUInt32LE(SIG_CENTRAL, 0);
    b.writeUInt16LE(z64Len ? 45 : 0, 6); // version needed: 4.5 when ZIP64 fields are used
    b.writeUInt16LE(e.size > 0 ? 0x0808 : 0x0800, 8);
    b.writeUInt32LE(e.crc32 >>> 0, 16);
    b.writeUInt32LE(bigSize ? U32_MAX : e.size, 20);
    b.writeUInt32LE(bigSize ? U32_MAX : e.size, 24);
    b.writeUInt16LE(nameBytes.length, 28);
    b.writeUInt16LE(extra, 30);
    b.writeUInt32LE(bigOffset ? U32_MAX : e.headerOffset, 42);
    nameBytes.copy(b, 46);
    let x = 46 + nameBytes.length;
    if (z64Len) {
      b.writeUInt16LE(1, x);
      b.writeUInt16LE(z64Len, x + 2);
      x += 4;
      if (bigSize) {
        b.writeBigUInt64LE(BigInt(e.size), x);
        b.writeBigUInt64LE(BigInt(e.size), x + 8);
        x += 16;
      }
      if (bigOffset) b.writeBigUInt64LE(BigInt(e.headerOffset), x);
    }
    parts.push(b);
  }
  const cdSize = parts.reduce((n, b) => n + b.length, 0);
  const z64At = cdOffset + cdSize;
  const z = Buffer.alloc(56 + 20 + 22, 0);
  z.writeUInt32LE(SIG_ZIP64_EOCD, 0);
  z.writeBigUInt64LE(44n, 4);
  z.writeUInt16LE(0x031e, 12);
  z.writeUInt16LE(0x2d, 14);
  z.writeBigUInt64LE(BigInt(entries.length), 24);
  z.writeBigUInt64LE(BigInt(entries.length), 32);
  z.writeBigUInt64LE(BigInt(cdSize), 40);
  z.writeBigUInt64LE(BigInt(cdOffset), 48);
  z.writeUInt32LE(SIG_ZIP64_LOCATOR, 56);
  z.writeBigUInt64LE(BigInt(z64At), 56 + 8);
  z.writeUInt32LE(1, 56 + 16);
  const e = 76;
  z.writeUInt32LE(SIG_EOCD, e);
  const n16 = entries.length >= 0xffff ? 0xffff : entries.length;
  z.writeUInt16LE(n16, e + 8);
  z.writeUInt16LE(n16, e + 10);
  z.writeUInt32LE(forceZip64 || cdSize >= U32_MAX ? U32_MAX : cdSize, e + 12);
  z.writeUInt32LE(forceZip64 || cdOffset >= U32_MAX ? U32_MAX : cdOffset, e + 16);
  return Buffer.concat([...parts, z]);
}

export { crc32 };
