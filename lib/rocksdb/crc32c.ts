/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-8, plus the masking
 * RocksDB applies to checksums it stores next to the data they cover.
 */

const POLY = 0x82f63b78;

/** 8 tables of 256 entries: table k maps a byte to its CRC contribution k bytes further on. */
const T = new Int32Array(8 * 256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
  T[i] = c;
}
for (let i = 0; i < 256; i++) {
  let c = T[i];
  for (let k = 1; k < 8; k++) {
    c = T[c & 0xff] ^ (c >>> 8);
    T[k * 256 + i] = c;
  }
}

/**
 * CRC-32C of `data[start, end)`. `prev` is the CRC of the bytes before (0 for none), so
 * `crc32c(b, crc32c(a))` equals the CRC of `a` followed by `b` (RocksDB's crc32c::Extend).
 */
export function crc32c(data: Uint8Array, prev = 0, start = 0, end = data.length): number {
  let c = ~prev;
  let i = start;
  const n8 = start + ((end - start) & ~7);
  while (i < n8) {
    const a = c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    c =
      T[1792 + (a & 0xff)] ^
      T[1536 + ((a >>> 8) & 0xff)] ^
      T[1280 + ((a >>> 16) & 0xff)] ^
      T[1024 + (a >>> 24)] ^
      T[768 + data[i + 4]] ^
      T[512 + data[i + 5]] ^
      T[256 + data[i + 6]] ^
      T[data[i + 7]];
    i += 8;
  }
  while (i < end) c = T[(c ^ data[i++]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const MASK_DELTA = 0xa282ead8;

/** RocksDB's crc32c::Mask: rotate right by 15 and add a constant (stored checksums). */
export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + MASK_DELTA) >>> 0;
}

/** Inverse of maskCrc. */
export function unmaskCrc(masked: number): number {
  const rot = (masked - MASK_DELTA) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
}
