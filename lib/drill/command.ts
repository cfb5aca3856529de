/** kvr drill — not built yet. */
import type { Output } from "../ui/output.ts";
import { EXIT } from "../ui/output.ts";

export async function run(_opts: Record<string, unknown>, out: Output): Promise<number> {
  out.error("kvr drill is not built yet in this version.");
  return EXIT.USAGE;
}
