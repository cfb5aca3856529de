/**
 * The hash slot of a key as Redis Cluster (and Kvrocks in cluster mode) computes it: CRC16
 * (XMODEM: polynomial 0x1021, initial value 0, no reflection) of the key modulo 16384. When the
 * key holds a hash tag — the bytes between the first `{` and the first `}` after it, when not
 * empty — only the tag is hashed, so `{user1000}.following` and `{user1000}.followers` share a
 * slot. Pure: no sockets.
 */
import { CLUSTER_SLOTS } from "./topology.ts";

const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

/** CRC16-XMODEM of `data` (crc16("123456789") = 0x31C3). */
export function crc16(data: Uint8Array): number {
  let crc = 0;
  for (let i = 0; i < data.length; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ data[i]) & 0xff];
  return crc;
}

/** The bytes of `key` that are hashed: its hash tag when it has a non-empty one, else all of it. */
export function hashTag(key: Uint8Array): Uint8Array {
  const open = key.indexOf(0x7b); // {
  if (open < 0) return key;
  const close = key.indexOf(0x7d, open + 1); // }
  if (close < 0 || close === open + 1) return key;
  return key.subarray(open + 1, close);
}

/** The cluster slot (0–16383) of `key` (a string is hashed as UTF-8). */
export function keySlot(key: string | Uint8Array): number {
  const bytes = typeof key === "string" ? Buffer.from(key, "utf8") : key;
  return crc16(hashTag(bytes)) % CLUSTER_SLOTS;
}

/** True when `slot` lies in one of `ranges` ([a, b] inclusive). */
export function slotIn(slot: number, ranges: ReadonlyArray<readonly [number, number]>): boolean {
  return ranges.some(([a, b]) => slot >= a && slot <= b);
}
