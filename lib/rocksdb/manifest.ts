/**
 * MANIFEST files: a log-format file (log.ts) whose records are VersionEdits. Each edit is a
 * sequence of (varint32 tag, value) fields; kvr needs the last sequence, and skips every other
 * field by its known encoding. Tags with bit 13 set (kTagSafeIgnoreMask) are length-prefixed
 * and may be skipped when unknown; any other unknown tag is an error, as in RocksDB.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Builder, Cursor, DecodeError, RocksFormatError } from "./codec.ts";
import { readLogRecords, writeLogRecords } from "./log.ts";

/** VersionEdit field tags (RocksDB db/version_edit.h). */
export const Tag = {
  Comparator: 1,
  LogNumber: 2,
  NextFileNumber: 3,
  LastSequence: 4,
  CompactCursor: 5,
  DeletedFile: 6,
  NewFile: 7,
  PrevLogNumber: 9,
  MinLogNumberToKeep: 10,
  NewFile2: 100,
  NewFile3: 102,
  NewFile4: 103,
  ColumnFamily: 200,
  ColumnFamilyAdd: 201,
  ColumnFamilyDrop: 202,
  MaxColumnFamily: 203,
  InAtomicGroup: 300,
  BlobFileAddition: 400,
  BlobFileGarbage: 401,
  SafeIgnoreMask: 1 << 13,
  DbId: (1 << 13) + 1,
  BlobFileAdditionDeprecated: (1 << 13) + 2,
  BlobFileGarbageDeprecated: (1 << 13) + 3,
  WalAddition: (1 << 13) + 4,
  WalDeletion: (1 << 13) + 5,
  FullHistoryTsLow: (1 << 13) + 6,
  WalAddition2: (1 << 13) + 7,
  WalDeletion2: (1 << 13) + 8,
  PersistUserDefinedTimestamps: (1 << 13) + 9,
} as const;

/** Custom field tags inside a NewFile4 entry (only the ones kvr interprets). */
const NF_TERMINATE = 1;
const NF_NON_SAFE_IGNORE_MASK = 1 << 6;
const NF_PATH_ID = NF_NON_SAFE_IGNORE_MASK + 1;
/** Blob file addition/garbage custom fields: 0 ends them, bit 6 marks forward-incompatible ones. */
const BLOB_END = 0;
const BLOB_INCOMPATIBLE_MASK = 1 << 6;

/** An SST file added by an edit. Keys are RocksDB internal keys (user key + 8-byte trailer). */
export interface NewFileEntry {
  level: number;
  number: number;
  size: number;
  smallest: Uint8Array;
  largest: Uint8Array;
  smallestSeqno: number;
  largestSeqno: number;
  pathId?: number;
}

/** The fields of one VersionEdit that kvr keeps (others are validated and skipped). */
export interface VersionEdit {
  comparator?: string;
  logNumber?: number;
  prevLogNumber?: number;
  nextFileNumber?: number;
  lastSequence?: number;
  minLogNumberToKeep?: number;
  maxColumnFamily?: number;
  /** Column family the edit applies to (0 = default when absent). */
  columnFamily?: number;
  /** Name of a column family this edit creates (with `columnFamily` as its id). */
  addColumnFamily?: string;
  dropColumnFamily?: boolean;
  /** Remaining edits in an atomic group including this one's successors. */
  inAtomicGroup?: number;
  dbId?: string;
  newFiles: NewFileEntry[];
  deletedFiles: { level: number; number: number }[];
}

function skipBlobCustomFields(c: Cursor, what: string): void {
  for (;;) {
    const tag = c.varint32(`${what} custom field tag`);
    if (tag === BLOB_END) return;
    if (tag & BLOB_INCOMPATIBLE_MASK) throw new DecodeError(c.pos, `${what}: forward-incompatible custom field ${tag} (written by a newer RocksDB)`);
    c.slice(`${what} custom field`);
  }
}

/**
 * Decodes one VersionEdit record. Throws DecodeError (with the position inside the record) for
 * a truncated field or an unknown tag that is not marked safe to ignore.
 */
export function decodeVersionEdit(record: Uint8Array): VersionEdit {
  const c = new Cursor(record);
  const e: VersionEdit = { newFiles: [], deletedFiles: [] };
  while (c.remaining > 0) {
    const tagPos = c.pos;
    const tag = c.varint32("tag");
    switch (tag) {
      case Tag.Comparator:
        e.comparator = Buffer.from(c.slice("comparator name")).toString("latin1");
        break;
      case Tag.LogNumber:
        e.logNumber = c.varint64("log number");
        break;
      case Tag.PrevLogNumber:
        e.prevLogNumber = c.varint64("previous log number");
        break;
      case Tag.NextFileNumber:
        e.nextFileNumber = c.varint64("next file number");
        break;
      case Tag.LastSequence:
        e.lastSequence = c.varint64("last sequence");
        if (!Number.isSafeInteger(e.lastSequence)) throw new DecodeError(tagPos, `last sequence ${e.lastSequence} is beyond 2^53`);
        break;
      case Tag.MinLogNumberToKeep:
        e.minLogNumberToKeep = c.varint64("min log number to keep");
        break;
      case Tag.MaxColumnFamily:
        e.maxColumnFamily = c.varint32("max column family");
        break;
      case Tag.CompactCursor:
        c.varint32("compact cursor level");
        c.slice("compact cursor key");
        break;
      case Tag.DeletedFile: {
        const level = c.varint32("deleted file level");
        const number = c.varint64("deleted file number");
        e.deletedFiles.push({ level, number });
        break;
      }
      case Tag.NewFile:
      case Tag.NewFile2:
      case Tag.NewFile3:
      case Tag.NewFile4: {
        const level = c.varint32("new file level");
        const number = c.varint64("new file number");
        const pathId = tag === Tag.NewFile3 ? c.varint32("new file path id") : undefined;
        const size = c.varint64("new file size");
        const smallest = c.slice("new file smallest key");
        const largest = c.slice("new file largest key");
        let smallestSeqno = 0;
        let largestSeqno = 0;
        if (tag !== Tag.NewFile) {
          smallestSeqno = c.varint64("new file smallest seqno");
          largestSeqno = c.varint64("new file largest seqno");
        }
        const f: NewFileEntry = { level, number, size, smallest, largest, smallestSeqno, largestSeqno };
        if (pathId !== undefined) f.pathId = pathId;
        if (tag === Tag.NewFile4) {
          for (;;) {
            const ct = c.varint32("new file custom field tag");
            if (ct === NF_TERMINATE) break;
            const fieldPos = c.pos;
            const field = c.slice("new file custom field");
            if (ct === NF_PATH_ID) {
              if (field.length !== 1) throw new DecodeError(fieldPos, "new file path id field is not 1 byte");
              f.pathId = field[0];
            } else if (ct & NF_NON_SAFE_IGNORE_MASK) {
              throw new DecodeError(fieldPos, `new file custom field ${ct} is not safe to ignore (written by a newer RocksDB)`);
            }
          }
        }
        e.newFiles.push(f);
        break;
      }
      case Tag.ColumnFamily:
        e.columnFamily = c.varint32("column family id");
        break;
      case Tag.ColumnFamilyAdd:
        e.addColumnFamily = Buffer.from(c.slice("column family name")).toString("latin1");
        break;
      case Tag.ColumnFamilyDrop:
        e.dropColumnFamily = true;
        break;
      case Tag.InAtomicGroup:
        e.inAtomicGroup = c.varint32("atomic group size");
        break;
      case Tag.BlobFileAddition:
        c.varint64("blob file number");
        c.varint64("blob count");
        c.varint64("blob bytes");
        c.slice("blob checksum method");
        c.slice("blob checksum value");
        skipBlobCustomFields(c, "blob file addition");
        break;
      case Tag.BlobFileGarbage:
        c.varint64("blob file number");
        c.varint64("garbage blob count");
        c.varint64("garbage blob bytes");
        skipBlobCustomFields(c, "blob file garbage");
        break;
      case Tag.DbId:
        e.dbId = Buffer.from(c.slice("db id")).toString("latin1");
        break;
      default:
        // Every tag with the safe-ignore bit, known (WAL additions/deletions, full_history_ts_low,
        // deprecated blob records, persist-user-defined-timestamps) or not, is length-prefixed.
        if (tag & Tag.SafeIgnoreMask) c.slice(`field with tag ${tag}`);
        else throw new DecodeError(tagPos, `unknown VersionEdit tag ${tag} (not safe to ignore; written by a newer or incompatible RocksDB)`);
    }
  }
  return e;
}

/** What a MANIFEST says after replaying all its edits. */
export interface ManifestSummary {
  file: string;
  /** The last sequence RocksDB recovers from it (largest seen, as RocksDB's recovery keeps). */
  lastSequence: number;
  logNumber: number;
  prevLogNumber: number;
  nextFileNumber: number;
  minLogNumberToKeep: number;
  comparator: string | null;
  /** Column family id → name, for the families alive at the end. */
  columnFamilies: Map<number, string>;
  /** Live SST files per column family id. */
  liveFiles: Map<number, NewFileEntry[]>;
  edits: number;
}

/**
 * Replays the VersionEdits of MANIFEST bytes. `file` is named in errors. Edits of an atomic
 * group left incomplete at the end are ignored, as RocksDB does.
 */
export function readManifest(data: Uint8Array, file = "MANIFEST"): ManifestSummary {
  const s: ManifestSummary = {
    file,
    lastSequence: 0,
    logNumber: 0,
    prevLogNumber: 0,
    nextFileNumber: 0,
    minLogNumberToKeep: 0,
    comparator: null,
    columnFamilies: new Map([[0, "default"]]),
    liveFiles: new Map(),
    edits: 0,
  };
  let haveLast = false;
  let haveNext = false;
  let haveLog = false;
  let group: VersionEdit[] = [];
  const apply = (e: VersionEdit) => {
    s.edits++;
    const cf = e.columnFamily ?? 0;
    if (e.comparator !== undefined && s.comparator === null) s.comparator = e.comparator;
    if (e.logNumber !== undefined) {
      haveLog = true;
      s.logNumber = Math.max(s.logNumber, e.logNumber);
    }
    if (e.prevLogNumber !== undefined) s.prevLogNumber = e.prevLogNumber;
    if (e.nextFileNumber !== undefined) {
      haveNext = true;
      s.nextFileNumber = e.nextFileNumber;
    }
    if (e.lastSequence !== undefined) {
      haveLast = true;
      s.lastSequence = Math.max(s.lastSequence, e.lastSequence);
    }
    if (e.minLogNumberToKeep !== undefined) s.minLogNumberToKeep = Math.max(s.minLogNumberToKeep, e.minLogNumberToKeep);
    if (e.addColumnFamily !== undefined) s.columnFamilies.set(cf, e.addColumnFamily);
    if (e.dropColumnFamily) {
      s.columnFamilies.delete(cf);
      s.liveFiles.delete(cf);
    }
    if (e.deletedFiles.length || e.newFiles.length) {
      let live = s.liveFiles.get(cf) ?? [];
      if (e.deletedFiles.length) live = live.filter((f) => !e.deletedFiles.some((d) => d.number === f.number && d.level === f.level));
      live.push(...e.newFiles);
      s.liveFiles.set(cf, live);
    }
  };
  for (const rec of readLogRecords(data, { file })) {
    let edit: VersionEdit;
    try {
      edit = decodeVersionEdit(rec.data);
    } catch (err) {
      if (err instanceof DecodeError)
        throw new RocksFormatError(file, rec.offset, `bad VersionEdit in the record at this offset (byte ${err.pos} of it): ${err.message}`);
      throw err;
    }
    if (edit.inAtomicGroup !== undefined) {
      group.push(edit);
      if (edit.inAtomicGroup === 0) {
        group.forEach(apply);
        group = [];
      }
      continue;
    }
    if (group.length) throw new RocksFormatError(file, rec.offset, "edit outside an atomic group before the group was complete (corrupt MANIFEST)");
    apply(edit);
  }
  if (s.edits === 0) throw new RocksFormatError(file, null, "no VersionEdit records: not a MANIFEST, or an empty file");
  const missing = [!haveLast && "last sequence", !haveNext && "next file number", !haveLog && "log number"].filter(Boolean);
  if (missing.length) throw new RocksFormatError(file, null, `no ${missing.join(", ")} entry in the MANIFEST (RocksDB would refuse to open it)`);
  return s;
}

/** Reads `<dir>/CURRENT` and returns the MANIFEST file name it names. */
export async function currentManifestName(dir: string): Promise<string> {
  const path = join(dir, "CURRENT");
  let text: string;
  try {
    text = await readFile(path, "latin1");
  } catch (err) {
    throw new RocksFormatError(path, null, `cannot read CURRENT (${(err as NodeJS.ErrnoException).code ?? err}): not a RocksDB directory or an incomplete checkpoint`);
  }
  const m = /^(MANIFEST-\d+)\n?$/.exec(text);
  if (!m) throw new RocksFormatError(path, null, `CURRENT must hold one line "MANIFEST-<number>", got ${JSON.stringify(text.slice(0, 60))}`);
  return m[1];
}

/** Reads and replays the MANIFEST of a RocksDB directory, following CURRENT. */
export async function readManifestOf(dir: string): Promise<ManifestSummary> {
  const name = await currentManifestName(dir);
  const path = join(dir, name);
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    throw new RocksFormatError(path, null, `cannot read the MANIFEST that CURRENT names (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  return readManifest(data, path);
}

/** The last sequence recorded in the MANIFEST of a RocksDB directory (WAL files not counted). */
export async function readManifestSequence(dir: string): Promise<number> {
  return (await readManifestOf(dir)).lastSequence;
}

/** Encodes one VersionEdit (fields in RocksDB's order). */
export function encodeVersionEdit(e: Partial<VersionEdit>): Buffer {
  const b = new Builder();
  if (e.dbId !== undefined) b.varint(Tag.DbId).slice(e.dbId);
  if (e.comparator !== undefined) b.varint(Tag.Comparator).slice(e.comparator);
  if (e.logNumber !== undefined) b.varint(Tag.LogNumber).varint(e.logNumber);
  if (e.prevLogNumber !== undefined) b.varint(Tag.PrevLogNumber).varint(e.prevLogNumber);
  if (e.nextFileNumber !== undefined) b.varint(Tag.NextFileNumber).varint(e.nextFileNumber);
  if (e.maxColumnFamily !== undefined) b.varint(Tag.MaxColumnFamily).varint(e.maxColumnFamily);
  if (e.minLogNumberToKeep !== undefined) b.varint(Tag.MinLogNumberToKeep).varint(e.minLogNumberToKeep);
  if (e.lastSequence !== undefined) b.varint(Tag.LastSequence).varint(e.lastSequence);
  for (const d of e.deletedFiles ?? []) b.varint(Tag.DeletedFile).varint(d.level).varint(d.number);
  for (const f of e.newFiles ?? []) {
    b.varint(Tag.NewFile4).varint(f.level).varint(f.number).varint(f.size);
    b.slice(f.smallest).slice(f.largest).varint(f.smallestSeqno).varint(f.largestSeqno);
    if (f.pathId) b.varint(NF_PATH_ID).slice(Uint8Array.of(f.pathId));
    b.varint(NF_TERMINATE);
  }
  if (e.columnFamily !== undefined) b.varint(Tag.ColumnFamily).varint(e.columnFamily);
  if (e.addColumnFamily !== undefined) b.varint(Tag.ColumnFamilyAdd).slice(e.addColumnFamily);
  if (e.dropColumnFamily) b.varint(Tag.ColumnFamilyDrop);
  if (e.inAtomicGroup !== undefined) b.varint(Tag.InAtomicGroup).varint(e.inAtomicGroup);
  return b.finish();
}

/** RocksDB internal key: user key + 8-byte LE (sequence << 8 | type), type 1 = value. */
export function internalKey(userKey: Uint8Array | string, sequence: number, type = 1): Buffer {
  const k = typeof userKey === "string" ? Buffer.from(userKey) : Buffer.from(userKey);
  return new Builder().raw(k).u64le(sequence * 256 + type).finish();
}

export interface BuildManifestOptions {
  /** The last sequence to record (RocksDB continues after it). */
  seq: number;
  /** SST files of the default column family. */
  files?: NewFileEntry[];
  /** Extra column families (ids 1, 2, …), e.g. Kvrocks' "metadata", "zset_score", … */
  columnFamilies?: string[];
  /** WAL number recorded (default 0: no WAL to replay). */
  logNumber?: number;
  /** Next file number; default one more than the largest file/log number, at least 2. */
  nextFileNumber?: number;
  comparator?: string;
}

/**
 * Builds MANIFEST bytes that RocksDB opens and that record `seq` as the last sequence: one
 * edit for the default column family (comparator, log number, next file number, last
 * sequence, files), then one edit per extra column family.
 */
export function buildManifest(opts: BuildManifestOptions): Buffer {
  if (!Number.isSafeInteger(opts.seq) || opts.seq < 0) throw new RangeError(`seq must be a non-negative integer, got ${opts.seq}`);
  const files = opts.files ?? [];
  const logNumber = opts.logNumber ?? 0;
  const nextFileNumber = opts.nextFileNumber ?? Math.max(2, logNumber + 1, ...files.map((f) => f.number + 1));
  const comparator = opts.comparator ?? "leveldb.BytewiseComparator";
  const cfs = opts.columnFamilies ?? [];
  const edits: Buffer[] = [
    encodeVersionEdit({
      comparator,
      logNumber,
      prevLogNumber: 0,
      nextFileNumber,
      maxColumnFamily: cfs.length ? cfs.length : undefined,
      lastSequence: opts.seq,
      newFiles: files,
    }),
  ];
  cfs.forEach((name, i) => {
    edits.push(encodeVersionEdit({ columnFamily: i + 1, addColumnFamily: name, comparator, logNumber }));
  });
  return writeLogRecords(edits);
}

/** The CURRENT file content naming `MANIFEST-<number>` (6 digits, as RocksDB writes). */
export function currentFileFor(manifestNumber: number): string {
  return `MANIFEST-${String(manifestNumber).padStart(6, "0")}\n`;
}
