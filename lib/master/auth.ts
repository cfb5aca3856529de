/** Password check in constant time: both sides hashed to equal length, then timingSafeEqual. */
import { createHash, timingSafeEqual } from "node:crypto";

const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();

/** A checker for `password`; compares without leaking where the strings differ or their length. */
export function passwordChecker(password: string): (attempt: string) => boolean {
  const want = digest(password);
  return (attempt) => timingSafeEqual(digest(attempt), want);
}
