/** Node addresses as kvr prints them. */

export interface NodeAddr {
  host: string;
  port: number;
}

/** "host:port", or "[v6]:port" for an IPv6 host. */
export const addrText = (a: NodeAddr): string => (a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);
