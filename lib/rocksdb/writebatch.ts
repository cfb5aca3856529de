/**
 * RocksDB WriteBatch: 8-byte LE sequence, 4-byte LE count, then records (a type byte and its
 * fields, keys and values varint32-length-prefixed). This is what a Kvrocks master streams after
 * `PSYNC` → `+OK`, and what each record of a WAL (`*.log`) file holds.
 */
import { readFile, readdir } from "node:fs/promises";
import { basename, join } from "node:path";
import { Builder, Cursor, DecodeError, RocksFormatError } from "./codec.ts";
import { readLogRecords } from "./log.ts";

export const WRITE_BATCH_HEADER_SIZE = 12;

/** Record types (RocksDB db/dbformat.h ValueType) that can appear in a WriteBatch. */
export const BatchType = {
  Deletion: 0x0,
  Value: 0x1,
  Merge: 0x2,
  LogData: 0x3,
  ColumnFamilyDeletion: 0x4,
  ColumnFamilyValue: 0x5,
  ColumnFamilyMerge: 0x6,
  SingleDeletion: 0x7,
  ColumnFamilySingleDeletion: 0x8,
  BeginPrepareXID: 0x9,
  EndPrepareXID: 0xa,
  CommitXID: 0xb,
  RollbackXID: 0xc,
  Noop: 0xd,
  ColumnFamilyRangeDeletion: 0xe,
  RangeDeletion: 0xf,
  ColumnFamilyBlobIndex: 0x10,
  BlobIndex: 0x11,
  BeginPersistedPrepareXID: 0x12,
  BeginUnprepareXID: 0x13,
  DeletionWithTimestamp: 0x14,
  CommitXIDAndTimestamp: 0x15,
  WideColumnEntity: 0x16,
  ColumnFamilyWideColumnEntity: 0x17,
  ValuePreferredSeqno: 0x18,
  ColumnFamilyValuePreferredSeqno: 0x19,
} as const;

/** Record types that carry a column family id before their key. */
const CF_TYPES: ReadonlySet<number> = new Set([
  BatchType.ColumnFamilyValue,
  BatchType.ColumnFamilyMerge,
  BatchType.ColumnFamilyBlobIndex,
  BatchType.ColumnFamilyWideColumnEntity,
  BatchType.ColumnFamilyValuePreferredSeqno,
  BatchType.ColumnFamilyRangeDeletion,
  BatchType.ColumnFamilyDeletion,
  BatchType.ColumnFamilySingleDeletion,
]);

/** Sequence and count from a WriteBatch header. */
export interface WriteBatchHeader {
  sequence: number;
  count: number;
}

/** Parses the 12-byte header. Throws DecodeError if fewer than 12 bytes. */
export function parseWriteBatchHeader(batch: Uint8Array): WriteBatchHeader {
  if (batch.length < WRITE_BATCH_HEADER_SIZE)
    throw new DecodeError(0, `WriteBatch too short: ${batch.length} bytes, the header alone is ${WRITE_BATCH_HEADER_SIZE}`);
  const c = new Cursor(batch);
  const sequence = c.u64le("sequence");
  const count = c.u32le("count");
  return { sequence, count };
}

/** Last sequence a batch uses: sequence + count − 1 (sequence − 1 for an empty batch). */
export function batchLastSequence(h: WriteBatchHeader): number {
  return h.sequence + h.count - 1;
}

/** One key/value for encodePutBatch. `cf` is the column family id (0/absent = default). */
export interface PutRecord {
  key: Uint8Array | string;
  value: Uint8Array | string;
  cf?: number;
}

/**
 * Encodes a WriteBatch of Put records (type 0x1, or 0x5 with a column family id) starting at
 * `sequence`; the count is the number of puts, so the next batch starts at sequence + count.
 */
export function encodePutBatch(sequence: number, puts: PutRecord[]): Buffer {
  const b = new Builder().u64le(sequence).u32le(puts.length);
  for (const p of puts) {
    if (p.cf) b.byte(BatchType.ColumnFamilyValue).varint(p.cf);
    else b.byte(BatchType.Value);
    b.slice(p.key).slice(p.value);
  }
  return b.finish();
}

/** One decoded WriteBatch record. */
export interface BatchRecord {
  type: number;
  /** Column family id (0 = default). */
  cf: number;
  /** Key (or begin key of a range deletion, or the blob of LogData, or the XID). */
  key?: Uint8Array;
  /** Value (or end key of a range deletion). */
  value?: Uint8Array;
}

/** A decoded WriteBatch. */
export interface DecodedWriteBatch extends WriteBatchHeader {
  records: BatchRecord[];
}

/**
 * Decodes a WriteBatch and checks that the records that consume sequence numbers match the
 * header's count. Throws DecodeError (position in the batch) for malformed input.
 */
export function decodeWriteBatch(batch: Uint8Array): DecodedWriteBatch {
  const h = parseWriteBatchHeader(batch);
  const c = new Cursor(batch, WRITE_BATCH_HEADER_SIZE);
  const records: BatchRecord[] = [];
  let counted = 0;
  const T = BatchType;
  while (c.remaining > 0) {
    const at = c.pos;
    const type = c.bytes(1, "record type")[0];
    const r: BatchRecord = { type, cf: 0 };
    if (CF_TYPES.has(type)) r.cf = c.varint32("column family id");
    switch (type) {
      case T.ColumnFamilyValue:
      case T.ColumnFamilyMerge:
      case T.ColumnFamilyBlobIndex:
      case T.ColumnFamilyWideColumnEntity:
      case T.ColumnFamilyValuePreferredSeqno:
      case T.ColumnFamilyRangeDeletion:
      case T.Value:
      case T.Merge:
      case T.BlobIndex:
      case T.WideColumnEntity:
      case T.ValuePreferredSeqno:
      case T.RangeDeletion:
        r.key = c.slice("key");
        r.value = c.slice("value");
        counted++;
        break;
      case T.ColumnFamilyDeletion:
      case T.ColumnFamilySingleDeletion:
      case T.Deletion:
      case T.SingleDeletion:
      case T.DeletionWithTimestamp:
        r.key = c.slice("key");
        counted++;
        break;
      case T.LogData:
        r.key = c.slice("log data");
        break;
      case T.BeginPrepareXID:
      case T.BeginPersistedPrepareXID:
      case T.BeginUnprepareXID:
      case T.Noop:
        break;
      case T.EndPrepareXID:
      case T.CommitXID:
      case T.RollbackXID:
        r.key = c.slice("xid");
        break;
      case T.CommitXIDAndTimestamp:
        r.value = c.slice("commit timestamp");
        r.key = c.slice("xid");
        break;
      default:
        throw new DecodeError(at, `unknown WriteBatch record type 0x${type.toString(16)}`);
    }
    records.push(r);
  }
  if (counted !== h.count) throw new DecodeError(8, `WriteBatch header count ${h.count} but ${counted} counted records`);
  return { ...h, records };
}

/** Summary of one WAL file: the batches' sequence range. */
export interface WalSummary {
  file: string;
  batches: number;
  /** Sequence of the first batch (null: no batches). */
  firstSequence: number | null;
  /** Last sequence used by the last batch: its sequence + count − 1 (null: no batches). */
  lastSequence: number | null;
}

/** Reads the WriteBatch headers of WAL bytes (log format). `file` is named in errors. */
export function readWal(data: Uint8Array, file = "WAL", logNumber?: number): WalSummary {
  const s: WalSummary = { file, batches: 0, firstSequence: null, lastSequence: null };
  for (const rec of readLogRecords(data, { file, logNumber })) {
    let h: WriteBatchHeader;
    try {
      h = parseWriteBatchHeader(rec.data);
    } catch (err) {
      if (err instanceof DecodeError) throw new RocksFormatError(file, rec.offset, `bad WriteBatch in the record at this offset: ${err.message}`);
      throw err;
    }
    if (s.firstSequence === null) s.firstSequence = h.sequence;
    const last = batchLastSequence(h);
    s.lastSequence = s.lastSequence === null ? last : Math.max(s.lastSequence, last);
    s.batches++;
  }
  return s;
}

/** Reads one WAL file from disk (its log number comes from the name, e.g. 000014.log → 14). */
export async function readWalFile(path: string): Promise<WalSummary> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    throw new RocksFormatError(path, null, `cannot read WAL file (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  const m = /^(\d+)\.log$/.exec(basename(path));
  return readWal(data, path, m ? Number(m[1]) : undefined);
}

/** Every `*.log` WAL file of a directory, in file-number order. */
export async function readWalFiles(dir: string): Promise<WalSummary[]> {
  const names = (await readdir(dir)).filter((n) => /^\d+\.log$/.test(n)).sort((a, b) => Number(a.slice(0, -4)) - Number(b.slice(0, -4)));
  const out: WalSummary[] = [];
  for (const n of names) out.push(await readWalFile(join(dir, n)));
  return out;
}
