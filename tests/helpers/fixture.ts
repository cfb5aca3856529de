/** The real Kvrocks checkpoint the tests serve and parse (see tests/fixtures/README.md). */
import { resolve } from "node:path";

export const FIXTURE = resolve(import.meta.dir, "../fixtures/kvrocks-checkpoint");
/** `sha256sum` lines for every file of FIXTURE, paths relative to tests/fixtures/. */
export const FIXTURE_SHA256 = resolve(import.meta.dir, "../fixtures/kvrocks-checkpoint.sha256");
