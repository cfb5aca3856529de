/**
 * lib/client — talking to a Kvrocks node as a client: sessions under connect and reply deadlines
 * (AUTH first), INFO parsing, addresses. Shared by setnodes, drill and doctor.
 */
export * from "./addr.ts";
export * from "./info.ts";
export * from "./session.ts";
