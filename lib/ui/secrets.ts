/**
 * Secrets (passwords from flags or KVR_* environment variables): compared in constant time.
 * Both sides are hashed first, so neither where they differ nor their lengths leak.
 */
import { createHash, timingSafeEqual } from "node:crypto";

const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();

/** A checker for `password`: true when an attempt equals it, in constant time. */
export function passwordChecker(password: string): (attempt: string) => boolean {
  const want = digest(password);
  return (attempt) => timingSafeEqual(digest(attempt), want);
}
