/**
 * The sequence a RocksDB checkpoint (as a Kvrocks master serves it) resumes from: RocksDB
 * replays the checkpoint's WAL files on open, so it is the larger of the MANIFEST's last
 * sequence and the end of the last WAL batch. A replica continues with PSYNC <that + 1>.
 */
import { readManifestOf } from "./manifest.ts";
import { readWalFiles, type WalSummary } from "./writebatch.ts";

/** Where a checkpoint's sequence comes from. */
export interface CheckpointInfo {
  dir: string;
  /** MANIFEST file name (from CURRENT). */
  manifest: string;
  manifestSequence: number;
  wal: WalSummary[];
  /** max(manifestSequence, last WAL batch's sequence + count − 1). */
  sequence: number;
}

/** Reads CURRENT, the MANIFEST and every `*.log` of `dir`. Throws RocksFormatError on bad files. */
export async function inspectCheckpoint(dir: string): Promise<CheckpointInfo> {
  const m = await readManifestOf(dir);
  const wal = await readWalFiles(dir);
  let sequence = m.lastSequence;
  for (const w of wal) if (w.lastSequence !== null && w.lastSequence > sequence) sequence = w.lastSequence;
  return { dir, manifest: m.file, manifestSequence: m.lastSequence, wal, sequence };
}

/** The checkpoint's last sequence (next PSYNC asks for this + 1). */
export async function checkpointSequence(dir: string): Promise<number> {
  return (await inspectCheckpoint(dir)).sequence;
}
