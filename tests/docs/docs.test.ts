/**
 * The repository stands alone: every `docs/protocol.md §N` cited in the code, tests, benchmarks
 * and README names a section that exists, README links to it resolve, and nothing points at
 * protocol notes or fixtures outside the repository.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const DOC = readFileSync(join(ROOT, "docs/protocol.md"), "utf8");

function sources(): string[] {
  const out: string[] = [join(ROOT, "README.md"), join(ROOT, "cli.ts")];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) {
        if (name !== "fixtures" && name !== "node_modules") walk(p);
      } else if (/\.(ts|md)$/.test(name)) out.push(p);
    }
  };
  for (const d of ["lib", "tests", "bench", "docs"]) walk(join(ROOT, d));
  return out;
}

/** Section numbers with a `## §N` heading in docs/protocol.md. */
const SECTIONS = new Set([...DOC.matchAll(/^## §(\d+) /gm)].map((m) => Number(m[1])));

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function anchor(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .trim()
    .replace(/ /g, "-");
}

test("docs/protocol.md has sections §1 to §8, in order", () => {
  const nums = [...DOC.matchAll(/^## §(\d+) /gm)].map((m) => Number(m[1]));
  expect(nums).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
});

test("every docs/protocol.md §N cited in the repository exists", () => {
  const cited: string[] = [];
  const missing: string[] = [];
  for (const file of sources()) {
    const text = readFileSync(file, "utf8").replace(/\s*\n\s*\*?\s*/g, " ");
    for (const m of text.matchAll(/docs\/protocol\.md\]?(?:\([^)]*\))?\s*((?:§\d+(?:\s*[–-]\s*§?\d+)?(?:,\s*)?)+)/g)) {
      for (const part of m[1].matchAll(/§(\d+)(?:\s*[–-]\s*§?(\d+))?/g)) {
        const a = Number(part[1]);
        const b = part[2] ? Number(part[2]) : a;
        for (let n = a; n <= b; n++) {
          cited.push(`${relative(ROOT, file)} §${n}`);
          if (!SECTIONS.has(n)) missing.push(`${relative(ROOT, file)} §${n}`);
        }
      }
    }
  }
  expect(cited.length).toBeGreaterThan(10);
  expect(missing).toEqual([]);
});

test("README links into docs/protocol.md point at existing headings", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const anchors = new Set([...DOC.matchAll(/^#+ (.+)$/gm)].map((m) => anchor(m[1])));
  const links = [...readme.matchAll(/\]\(docs\/protocol\.md(?:#([^)]+))?\)/g)];
  expect(links.length).toBeGreaterThanOrEqual(3);
  for (const l of links) if (l[1]) expect(anchors.has(l[1])).toBe(true);
});

test("nothing points outside the repository for protocol notes or fixtures", () => {
  const outside = new RegExp(["PROTOCOL", "\\.md"].join("") + "|\\.\\./shared/|shared/fixtures");
  const offenders = sources()
    .filter((f) => f !== import.meta.path)
    .filter((f) => outside.test(readFileSync(f, "utf8")))
    .map((f) => relative(ROOT, f));
  expect(offenders).toEqual([]);
});
