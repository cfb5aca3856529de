/** The checkpoint fixture is the one its README describes: every file present, byte for byte. */
import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { FIXTURE, FIXTURE_SHA256 } from "../helpers/fixture.ts";

test("tests/fixtures/kvrocks-checkpoint matches its sha256 list, and holds nothing else", () => {
  const lines = readFileSync(FIXTURE_SHA256, "utf8").trim().split("\n");
  const listed = new Map(lines.map((l) => {
    const [hash, path] = l.split(/\s+/);
    return [basename(path), hash] as const;
  }));
  expect([...listed.keys()].sort()).toEqual(readdirSync(FIXTURE).sort());
  for (const [name, hash] of listed) {
    expect({ name, hash: createHash("sha256").update(readFileSync(join(FIXTURE, name))).digest("hex") }).toEqual({ name, hash });
  }
});
